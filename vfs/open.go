package vfs

import (
	"golang.org/x/sys/unix"
)

// openFlagsMask is Linux's VALID_OPEN_FLAGS, for openat2.
const openFlagsMask = unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | unix.O_TRUNC |
	unix.O_APPEND | unix.O_NONBLOCK | unix.O_SYNC | unix.O_DSYNC | unix.O_ASYNC | unix.O_DIRECT |
	OLargefile | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_NOATIME | unix.O_CLOEXEC | unix.O_PATH |
	unix.O_TMPFILE

// pathFlags are the flags that O_PATH keeps.
const pathFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// OpenAt implements openat(2): dir is the directory file for relative
// paths (nil for AT_FDCWD). Unknown flags are ignored, as Linux does.
// O_CLOEXEC is left for the caller's file descriptor table.
func (v *VFS) OpenAt(ctx *Context, dir *File, path string, flags int, mode uint32) (*File, error) {
	return v.open(ctx, dir, path, flags, mode&0o7777, 0)
}

// OpenAt2 implements openat2(2), which rejects unknown flags.
func (v *VFS) OpenAt2(ctx *Context, dir *File, path string, how *unix.OpenHow) (*File, error) {
	flags := how.Flags
	switch {
	case flags&^uint64(openFlagsMask) != 0, how.Resolve&^uint64(resolveMask) != 0, how.Mode&^0o7777 != 0:
		return nil, unix.EINVAL
	case how.Mode != 0 && flags&(unix.O_CREAT|unix.O_TMPFILE) == 0:
		return nil, unix.EINVAL
	case flags&unix.O_PATH != 0 && flags&^uint64(pathFlags) != 0:
		return nil, unix.EINVAL
	case how.Resolve&unix.RESOLVE_BENEATH != 0 && how.Resolve&unix.RESOLVE_IN_ROOT != 0:
		return nil, unix.EINVAL
	}
	return v.open(ctx, dir, path, int(flags), uint32(how.Mode), how.Resolve)
}

func (v *VFS) open(ctx *Context, dir *File, path string, flags int, mode uint32, resolve uint64) (*File, error) {
	if flags&unix.O_PATH != 0 {
		flags &= pathFlags
	}
	if flags&unix.O_TMPFILE == unix.O_TMPFILE {
		return nil, unix.EOPNOTSUPP
	}
	if flags&unix.O_CREAT != 0 && flags&unix.O_DIRECTORY != 0 {
		return nil, unix.EINVAL
	}
	r := v.resolver(ctx, resolve)
	r.unnamedOK = true
	if flags&unix.O_CREAT == 0 {
		vd, err := r.walkAt(dir, path, flags&unix.O_NOFOLLOW == 0)
		if err == errUnnamedTarget {
			return reopen(ctx, r.target, flags)
		}
		if err != nil {
			return nil, err
		}
		return v.openVD(ctx, vd, flags, false)
	}
	parent, name, slash, err := r.walkParentAt(dir, path)
	if err != nil {
		return nil, err
	}
	return v.openCreate(ctx, r, parent, name, slash, flags, mode)
}

// openCreate handles O_CREAT for name in parent.
func (v *VFS) openCreate(ctx *Context, r *resolver, parent VirtualDentry, name string, slash bool, flags int, mode uint32) (*File, error) {
	if name == "" || name == "." || name == ".." || slash {
		return nil, unix.EISDIR
	}
	if len(name) > unix.NAME_MAX {
		return nil, unix.ENAMETOOLONG
	}
	parent.d.mu.Lock()
	d, err := v.lookupLocked(ctx, parent.d, name)
	switch {
	case err == nil:
		parent.d.mu.Unlock()
		if flags&unix.O_EXCL != 0 {
			return nil, unix.EEXIST
		}
		vd, err := r.followMounts(VirtualDentry{parent.mnt, d})
		if err != nil {
			return nil, err
		}
		if vd.d.typ != unix.S_IFLNK {
			return v.openVD(ctx, vd, flags, false)
		}
		if flags&unix.O_NOFOLLOW != 0 {
			return nil, unix.ELOOP
		}
		return v.openCreateLink(ctx, r, parent, vd, flags, mode)
	case err != unix.ENOENT:
		parent.d.mu.Unlock()
		return nil, err
	}
	vd, err := v.createLocked(ctx, parent, name, &CreateOptions{Mode: unix.S_IFREG | mode&^ctx.Umask&0o7777})
	parent.d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return v.openVD(ctx, vd, flags&^unix.O_TRUNC, true)
}

// openCreateLink follows a symbolic link met by O_CREAT: the link's
// target is opened, or created if it does not exist.
func (v *VFS) openCreateLink(ctx *Context, r *resolver, dir, link VirtualDentry, flags int, mode uint32) (*File, error) {
	if r.flags&unix.RESOLVE_NO_SYMLINKS != 0 {
		return nil, unix.ELOOP
	}
	r.symlinks++
	if r.symlinks > maxSymlinks {
		return nil, unix.ELOOP
	}
	if ml, ok := link.d.inode.(MagicLink); ok {
		vd, magic, err := r.followMagic(link, ml)
		switch {
		case err == errUnnamedTarget:
			return reopen(ctx, r.target, flags)
		case err != nil:
			return nil, err
		case magic:
			return v.openVD(ctx, vd, flags, false)
		}
	}
	target, err := link.d.inode.Readlink(ctx)
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, unix.ENOENT
	}
	parent, name, slash, err := r.walkParent(dir, target)
	if err != nil {
		return nil, err
	}
	return v.openCreate(ctx, r, parent, name, slash, flags, mode)
}

// openVD opens the file at vd. created says that the open made the file,
// which skips the permission checks.
func (v *VFS) openVD(ctx *Context, vd VirtualDentry, flags int, created bool) (*File, error) {
	typ := vd.d.typ
	if flags&unix.O_PATH != 0 {
		if flags&unix.O_DIRECTORY != 0 && typ != unix.S_IFDIR {
			return nil, unix.ENOTDIR
		}
		f := NewFile(nil, flags)
		f.vd = vd
		f.opened()
		return f, nil
	}
	switch {
	case typ == unix.S_IFLNK:
		return nil, unix.ELOOP
	case flags&unix.O_DIRECTORY != 0 && typ != unix.S_IFDIR:
		return nil, unix.ENOTDIR
	case flags&unix.O_CREAT != 0 && typ == unix.S_IFDIR:
		return nil, unix.EISDIR
	}
	var want uint32
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		want = mayRead
	case unix.O_WRONLY:
		want = mayWrite
	default:
		want = mayRead | mayWrite
	}
	if flags&unix.O_TRUNC != 0 {
		want |= mayWrite
	}
	if typ == unix.S_IFDIR && want&mayWrite != 0 {
		return nil, unix.EISDIR
	}
	st, err := vd.d.inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	if !created {
		if want&mayWrite != 0 && vd.mnt.readOnly.Load() && (typ == unix.S_IFREG || typ == unix.S_IFDIR) {
			return nil, unix.EROFS
		}
		if err := ctx.Creds.permission(&st, want); err != nil {
			return nil, err
		}
	}
	if typ != unix.S_IFREG {
		flags &^= unix.O_TRUNC
	}
	var impl FileImpl
	if typ == unix.S_IFCHR || typ == unix.S_IFBLK {
		impl, err = v.openDevice(ctx, typ, unix.Mkdev(st.Rdev_major, st.Rdev_minor), flags)
	} else {
		impl, err = vd.d.inode.Open(ctx, flags)
		if flags&unix.O_TRUNC != 0 {
			vd.d.writes.Add(1)
			if b := vd.d.shared.Load(); b != nil && err == nil {
				b.pages.Truncate(0, func() error { return nil })
			}
			if err == nil {
				v.notify(vd.d, unix.IN_MODIFY)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	f := NewFile(impl, flags|OLargefile)
	f.vd = vd
	f.opened()
	return f, nil
}

// OpenExec opens the file f was opened at (with O_PATH, say) for reading
// by execve(2): that takes execute permission, not read permission, a
// regular file and a mount without MS_NOEXEC (EACCES otherwise; ELOOP for
// a symbolic link).
func (v *VFS) OpenExec(ctx *Context, f *File) (*File, error) {
	vd, ok := f.VirtualDentry()
	if !ok {
		return nil, unix.EACCES
	}
	switch vd.d.typ {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return nil, unix.ELOOP
	default:
		return nil, unix.EACCES
	}
	if v.noExec(vd.mnt) {
		return nil, unix.EACCES
	}
	st, err := vd.d.inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Creds.permission(&st, mayExec); err != nil {
		return nil, err
	}
	return v.openVD(ctx, vd, unix.O_RDONLY, true)
}

// Reopen opens the file f was opened at anew, with flags and the usual
// permission checks, as an open of /proc/self/fd/N or fexecve does. Files
// not reached through a path (pipes, sockets) cannot be reopened (ENOENT).
func (v *VFS) Reopen(ctx *Context, f *File, flags int) (*File, error) {
	vd, ok := f.VirtualDentry()
	if !ok {
		return nil, unix.ENOENT
	}
	return v.openVD(ctx, vd, flags, false)
}
