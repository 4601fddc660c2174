package vfs

import (
	"golang.org/x/sys/unix"
)

// isNormal reports whether name is an ordinary last component, not the
// root, "." or "..".
func isNormal(name string) bool {
	return name != "" && name != "." && name != ".."
}

// createLocked makes name in parent, whose lock is held, after the checks
// of may_create. opts.Mode holds the type and the final permission bits;
// ownership is filled in here.
func (v *VFS) createLocked(ctx *Context, parent VirtualDentry, name string, opts *CreateOptions) (VirtualDentry, error) {
	if parent.mnt.readOnly.Load() {
		return parent, unix.EROFS
	}
	st, err := parent.d.inode.Stat(ctx)
	if err != nil {
		return parent, err
	}
	if err := ctx.Creds.permission(&st, mayWrite|mayExec); err != nil {
		return parent, err
	}
	if parent.d.dead {
		return parent, unix.ENOENT
	}
	opts.UID, opts.GID = ctx.Creds.UID, ctx.Creds.GID
	if st.Mode&unix.S_ISGID != 0 {
		opts.GID = st.Gid
		switch {
		case opts.Mode&unix.S_IFMT == unix.S_IFDIR:
			opts.Mode |= unix.S_ISGID
		case opts.Mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP && !ctx.Creds.inGroupOrCapable(st.Gid):
			// mode_strip_sgid: a set-group-ID executable of a group
			// the creator is not in.
			opts.Mode &^= unix.S_ISGID
		}
	}
	inode, err := parent.d.inode.Create(ctx, name, opts)
	if err != nil {
		return parent, err
	}
	d, err := newDentry(ctx, inode, parent.d, name)
	if err != nil {
		return parent, err
	}
	parent.d.addChild(name, d)
	v.notifyChild(parent.d, unix.IN_CREATE|dirFlag(d), 0, name)
	return VirtualDentry{parent.mnt, d}, nil
}

// create implements the common part of mkdir, mknod and symlink.
func (v *VFS) create(ctx *Context, dir *File, path string, opts *CreateOptions) error {
	parent, name, slash, err := v.resolver(ctx, 0).walkParentAt(dir, path)
	if err != nil {
		return err
	}
	if !isNormal(name) {
		return unix.EEXIST
	}
	if len(name) > unix.NAME_MAX {
		return unix.ENAMETOOLONG
	}
	parent.d.mu.Lock()
	defer parent.d.mu.Unlock()
	if err := v.mustNotExistLocked(ctx, parent, name, slash, opts.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return err
	}
	_, err = v.createLocked(ctx, parent, name, opts)
	return err
}

// mustNotExistLocked checks that name does not exist in parent, whose
// lock is held, and that a trailing slash asks for a directory.
func (v *VFS) mustNotExistLocked(ctx *Context, parent VirtualDentry, name string, slash, dir bool) error {
	_, err := v.lookupLocked(ctx, parent.d, name)
	switch {
	case err == nil:
		return unix.EEXIST
	case err != unix.ENOENT:
		return err
	case slash && !dir:
		return unix.ENOENT
	}
	return nil
}

// MkdirAt implements mkdirat(2).
func (v *VFS) MkdirAt(ctx *Context, dir *File, path string, mode uint32) error {
	return v.create(ctx, dir, path, &CreateOptions{Mode: unix.S_IFDIR | mode&(0o777|unix.S_ISVTX)&^ctx.Umask})
}

// MknodAt implements mknodat(2) for regular files, FIFOs, sockets and (for
// CAP_MKNOD) device nodes.
func (v *VFS) MknodAt(ctx *Context, dir *File, path string, mode uint32, dev uint64) error {
	typ := mode & unix.S_IFMT
	switch typ {
	case 0:
		typ = unix.S_IFREG
	case unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK:
	case unix.S_IFCHR, unix.S_IFBLK:
		if !ctx.Creds.Capable(unix.CAP_MKNOD) {
			return unix.EPERM
		}
	case unix.S_IFDIR:
		return unix.EPERM
	default:
		return unix.EINVAL
	}
	opts := &CreateOptions{Mode: typ | mode&0o7777&^ctx.Umask}
	if typ == unix.S_IFCHR || typ == unix.S_IFBLK {
		opts.Rdev = dev
	}
	return v.create(ctx, dir, path, opts)
}

// SymlinkAt implements symlinkat(2).
func (v *VFS) SymlinkAt(ctx *Context, target string, dir *File, path string) error {
	if target == "" {
		return unix.ENOENT
	}
	if len(target) >= unix.PathMax {
		return unix.ENAMETOOLONG
	}
	return v.create(ctx, dir, path, &CreateOptions{Mode: unix.S_IFLNK | 0o777, Target: target})
}

// ReadlinkAt implements readlinkat(2); an empty path reads the link that
// dir (opened with O_PATH|O_NOFOLLOW) refers to.
func (v *VFS) ReadlinkAt(ctx *Context, dir *File, path string) (string, error) {
	vd, f, err := v.lookupAt(ctx, dir, path, false, path == "")
	if err != nil {
		return "", err
	}
	if f != nil || vd.d.typ != unix.S_IFLNK {
		if path == "" {
			return "", unix.ENOENT
		}
		return "", unix.EINVAL
	}
	return vd.d.inode.Readlink(ctx)
}

// lookupAt resolves path for the *at(2) calls that take
// AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH. With an empty path and
// emptyPath, it returns dir itself: as a location, or as a file when dir
// was not opened through a path (a pipe).
func (v *VFS) lookupAt(ctx *Context, dir *File, path string, follow, emptyPath bool) (VirtualDentry, *File, error) {
	if path == "" && emptyPath {
		switch {
		case dir == nil:
			return ctx.Cwd, nil, nil
		case dir.vd.d == nil:
			return VirtualDentry{}, dir, nil
		}
		return dir.vd, nil, nil
	}
	r := v.resolver(ctx, 0)
	r.unnamedOK = true
	vd, err := r.walkAt(dir, path, follow)
	if err == errUnnamedTarget {
		return VirtualDentry{}, r.target, nil
	}
	return vd, nil, err
}

// LinkAt implements linkat(2) (flags: AT_SYMLINK_FOLLOW, AT_EMPTY_PATH).
func (v *VFS) LinkAt(ctx *Context, olddir *File, oldpath string, newdir *File, newpath string, flags int) error {
	if flags&^(unix.AT_SYMLINK_FOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	if flags&unix.AT_EMPTY_PATH != 0 && !ctx.Creds.Capable(unix.CAP_DAC_READ_SEARCH) {
		return unix.ENOENT
	}
	old, f, err := v.lookupAt(ctx, olddir, oldpath, flags&unix.AT_SYMLINK_FOLLOW != 0, flags&unix.AT_EMPTY_PATH != 0)
	if err != nil {
		return err
	}
	if f != nil {
		return unix.ENOENT
	}
	parent, name, slash, err := v.resolver(ctx, 0).walkParentAt(newdir, newpath)
	if err != nil {
		return err
	}
	if !isNormal(name) {
		return unix.EEXIST
	}
	if len(name) > unix.NAME_MAX {
		return unix.ENAMETOOLONG
	}
	if parent.mnt != old.mnt {
		return unix.EXDEV
	}
	parent.d.mu.Lock()
	defer parent.d.mu.Unlock()
	if err := v.mustNotExistLocked(ctx, parent, name, slash, false); err != nil {
		return err
	}
	if parent.mnt.readOnly.Load() {
		return unix.EROFS
	}
	pst, err := parent.d.inode.Stat(ctx)
	if err != nil {
		return err
	}
	if err := ctx.Creds.permission(&pst, mayWrite|mayExec); err != nil {
		return err
	}
	if old.d.typ == unix.S_IFDIR {
		return unix.EPERM
	}
	if err := v.mayLink(ctx, old); err != nil {
		return err
	}
	if parent.d.dead {
		return unix.ENOENT
	}
	if err := parent.d.inode.Link(ctx, name, old.d.inode); err != nil {
		return err
	}
	v.notifySelf(old.d, unix.IN_ATTRIB)
	v.notifyChild(parent.d, unix.IN_CREATE, 0, name)
	_, err = v.lookupLocked(ctx, parent.d, name)
	return err
}

// mayLink applies protected_hardlinks: only the owner may link a file
// they cannot read and write, or a set-id executable.
func (v *VFS) mayLink(ctx *Context, vd VirtualDentry) error {
	st, err := vd.d.inode.Stat(ctx)
	if err != nil {
		return err
	}
	if ctx.Creds.isOwner(&st) {
		return nil
	}
	mode := uint32(st.Mode)
	if mode&unix.S_IFMT != unix.S_IFREG || mode&unix.S_ISUID != 0 ||
		mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP ||
		ctx.Creds.permission(&st, mayRead|mayWrite) != nil {
		return unix.EPERM
	}
	return nil
}

// mayDelete checks that victim, a child of dir, may be removed or
// replaced by an object of the kind isDir says (may_delete).
func (v *VFS) mayDelete(ctx *Context, dir *Dentry, victim *Dentry, isDir bool) error {
	dst, err := dir.inode.Stat(ctx)
	if err != nil {
		return err
	}
	if err := ctx.Creds.permission(&dst, mayWrite|mayExec); err != nil {
		return err
	}
	if dst.Mode&unix.S_ISVTX != 0 && ctx.Creds.UID != dst.Uid {
		vst, err := victim.inode.Stat(ctx)
		if err != nil {
			return err
		}
		if !ctx.Creds.isOwner(&vst) {
			return unix.EPERM
		}
	}
	switch {
	case isDir && victim.typ != unix.S_IFDIR:
		return unix.ENOTDIR
	case !isDir && victim.typ == unix.S_IFDIR:
		return unix.EISDIR
	case v.isMountPoint(victim):
		return unix.EBUSY
	}
	return nil
}

// UnlinkAt implements unlinkat(2) (flags: AT_REMOVEDIR).
func (v *VFS) UnlinkAt(ctx *Context, dir *File, path string, flags int) error {
	if flags&^unix.AT_REMOVEDIR != 0 {
		return unix.EINVAL
	}
	rmdir := flags&unix.AT_REMOVEDIR != 0
	parent, name, slash, err := v.resolver(ctx, 0).walkParentAt(dir, path)
	if err != nil {
		return err
	}
	switch {
	case rmdir && name == ".":
		return unix.EINVAL
	case rmdir && name == "..":
		return unix.ENOTEMPTY
	case rmdir && name == "":
		return unix.EBUSY
	case !isNormal(name):
		return unix.EISDIR
	case parent.mnt.readOnly.Load():
		return unix.EROFS
	case len(name) > unix.NAME_MAX:
		return unix.ENAMETOOLONG
	}
	parent.d.mu.Lock()
	defer parent.d.mu.Unlock()
	victim, err := v.lookupLocked(ctx, parent.d, name)
	if err != nil {
		return err
	}
	if slash && !rmdir {
		if victim.typ == unix.S_IFDIR {
			return unix.EISDIR
		}
		return unix.ENOTDIR
	}
	if err := v.mayDelete(ctx, parent.d, victim, rmdir); err != nil {
		return err
	}
	v.willLoseLastLink(ctx, victim)
	if err := parent.d.inode.Unlink(ctx, name, rmdir); err != nil {
		return err
	}
	parent.d.removeChildLocked(name, victim)
	if !rmdir {
		v.notifySelf(victim, unix.IN_ATTRIB)
	}
	v.maybeDeleted(victim)
	v.notifyChild(parent.d, unix.IN_DELETE|dirFlag(victim), 0, name)
	return nil
}

// removeChildLocked drops victim, the child name of dir, from the cache
// and marks it dead. dir's lock is held.
func (dir *Dentry) removeChildLocked(name string, victim *Dentry) {
	delete(dir.children, name)
	victim.unlinked.Store(true)
	victim.mu.Lock()
	victim.dead = true
	victim.children = nil
	victim.mu.Unlock()
}
