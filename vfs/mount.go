package vfs

import (
	"slices"

	"golang.org/x/sys/unix"
)

// maxMounts bounds the mount table, as Linux's fs.mount-max (default
// 100000) does: recursive bind mounts can double it with every call.
const maxMounts = 100000

// MountInfo describes one mount, for /proc/<pid>/mounts.
type MountInfo struct {
	// ID and ParentID identify the mount and the one it is mounted on
	// (0 for the namespace's root).
	ID, ParentID int
	Dev          uint64
	FS           FileSystem
	// Source is what mount(2) was given as its source; empty for mounts
	// the embedder made.
	Source string
	// ReadOnly is the current state; Flags are the other MS_* flags the
	// mount was made with (MS_NOSUID, MS_NODEV, MS_NOEXEC, ...).
	ReadOnly bool
	Flags    uint32
	// Root is the directory of the file system that is mounted ("/", or
	// a subdirectory for a bind mount); Target the mount point.
	Root, Target string
}

// Mount attaches fs at path (flags: MountReadOnly). A mount on top of a
// mount point hides the mount below it. As with Linux bind mounts, a
// file system whose root is a directory mounts on a directory, and one
// whose root is a file (hostfs.NewFile) on a non-directory (ENOTDIR
// otherwise). The VFS owns fs from then on: Release releases it.
func (v *VFS) Mount(ctx *Context, dir *File, path string, fs FileSystem, flags uint32) error {
	_, err := v.attachNew(ctx, dir, path, fs, flags, "", true)
	return err
}

// MountCollected mounts fs as Mount does, for a file system that holds
// nothing but memory (tmpfs, procfs): Release leaves it alone, so that
// once it is unmounted and no file of it is open it is garbage. mount(2)
// mounts what it creates this way; a guest that mounts and unmounts in
// a loop accumulates nothing. source is what /proc/mounts shows; flags
// are MS_* flags, of which MS_RDONLY and MS_NOEXEC (execve is EACCES)
// take effect and MS_NOSUID, MS_NODEV and the atime flags are only shown. It returns the
// mount's ID.
func (v *VFS) MountCollected(ctx *Context, dir *File, path string, fs FileSystem, flags uint32, source string) (int, error) {
	return v.attachNew(ctx, dir, path, fs, flags, source, false)
}

func (v *VFS) attachNew(ctx *Context, dir *File, path string, fs FileSystem, flags uint32, source string, owned bool) (int, error) {
	if !ctx.Creds.Capable(unix.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	vd, err := v.resolver(ctx, 0).walkAt(dir, path, true)
	if err != nil {
		return 0, err
	}
	root, err := newDentry(ctx, fs.Root(), nil, "")
	if err != nil {
		return 0, err
	}
	if (vd.d.typ == unix.S_IFDIR) != (root.typ == unix.S_IFDIR) {
		return 0, unix.ENOTDIR
	}
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	if len(v.mounts) >= maxMounts {
		return 0, unix.ENOSPC
	}
	m := v.newMount(fs, root, flags, owned)
	m.source, m.flags = source, flags&^MountReadOnly
	v.graft(m, vd)
	return m.id, nil
}

// graft attaches m at vd. treeMu is held.
func (v *VFS) graft(m *Mount, vd VirtualDentry) {
	m.parent, m.point = vd.mnt, vd.d
	vd.mnt.children = append(vd.mnt.children, m)
	v.mounts[mountKey{vd.mnt, vd.d}] = m
	vd.d.mounts++
}

// Bind implements mount(2) with MS_BIND: the file or directory at source
// becomes visible at target too, with the read-only state of the mount
// it is on. recursive (MS_REC) copies the mounts below source as well.
func (v *VFS) Bind(ctx *Context, dir *File, source, target string, recursive bool) error {
	if !ctx.Creds.Capable(unix.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	dst, err := v.resolver(ctx, 0).walkAt(dir, target, true)
	if err != nil {
		return err
	}
	src, err := v.resolver(ctx, 0).walkAt(dir, source, true)
	if err != nil {
		return err
	}
	if (src.d.typ == unix.S_IFDIR) != (dst.d.typ == unix.S_IFDIR) {
		return unix.ENOTDIR
	}
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	m := v.cloneMount(src.mnt, src.d)
	if recursive {
		if err := v.copySubmounts(src.mnt, src.d, m); err != nil {
			v.detach(m)
			return err
		}
	}
	if len(v.mounts) >= maxMounts {
		v.detach(m)
		return unix.ENOSPC
	}
	v.graft(m, dst)
	return nil
}

// cloneMount makes a new mount of root, a directory on from. treeMu is
// held.
func (v *VFS) cloneMount(from *Mount, root *Dentry) *Mount {
	m := v.mountOf(from.fs, root, from.dev, 0)
	m.readOnly.Store(from.readOnly.Load())
	m.source, m.flags = from.source, from.flags
	return m
}

// copySubmounts gives to, a copy of from at the directory root, copies of
// the mounts below root on from, recursively. treeMu is held.
func (v *VFS) copySubmounts(from *Mount, root *Dentry, to *Mount) error {
	for _, c := range from.children {
		if !isBelow(c.point, root) {
			continue
		}
		if len(v.mounts) >= maxMounts {
			return unix.ENOSPC
		}
		cc := v.cloneMount(c, c.root)
		v.graft(cc, VirtualDentry{to, c.point})
		if err := v.copySubmounts(c, c.root, cc); err != nil {
			return err
		}
	}
	return nil
}

// isBelow reports whether d is root or a descendant of it. treeMu is held.
func isBelow(d, root *Dentry) bool {
	for ; d != nil; d = d.parent {
		if d == root {
			return true
		}
	}
	return false
}

// detach removes m and every mount below it from the namespace. Files
// open on them keep working. treeMu is held.
func (v *VFS) detach(m *Mount) {
	for len(m.children) > 0 {
		v.detach(m.children[len(m.children)-1])
	}
	if p := m.parent; p != nil {
		delete(v.mounts, mountKey{p, m.point})
		m.point.mounts--
		// Searched from the end: detach takes children last first.
		for i := len(p.children) - 1; i >= 0; i-- {
			if p.children[i] == m {
				p.children = slices.Delete(p.children, i, i+1)
				break
			}
		}
		m.parent = nil
	}
}

// Remount implements mount(2) with MS_REMOUNT: the mount whose root is at
// path becomes read-only or read-write as flags' MS_RDONLY says (EINVAL
// when path is not the root of a mount).
func (v *VFS) Remount(ctx *Context, dir *File, path string, flags uint32) error {
	if !ctx.Creds.Capable(unix.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	vd, err := v.mountRootAt(ctx, dir, path, true)
	if err != nil {
		return err
	}
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	vd.mnt.readOnly.Store(flags&MountReadOnly != 0)
	vd.mnt.flags = flags &^ MountReadOnly
	return nil
}

// CheckMountRoot returns EINVAL unless path is the root of a mount, as
// Linux requires of a mount whose propagation changes.
func (v *VFS) CheckMountRoot(ctx *Context, dir *File, path string) error {
	_, err := v.mountRootAt(ctx, dir, path, true)
	return err
}

// noExec says whether m was mounted with MS_NOEXEC: nothing on it may be
// executed (execve, access(X_OK) of a regular file).
func (v *VFS) noExec(m *Mount) bool {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	return m.flags&unix.MS_NOEXEC != 0
}

// mountRootAt walks to path and returns it if it is the root of a mount
// (EINVAL otherwise); follow says whether a final symbolic link is
// followed.
func (v *VFS) mountRootAt(ctx *Context, dir *File, path string, follow bool) (VirtualDentry, error) {
	vd, err := v.resolver(ctx, 0).walkAt(dir, path, follow)
	if err != nil {
		return VirtualDentry{}, err
	}
	if vd.d != vd.mnt.root {
		return VirtualDentry{}, unix.EINVAL
	}
	return vd, nil
}

// Unmount implements umount2(2): it detaches the mount whose root is at
// path (EINVAL when there is none). Without detach (MNT_DETACH) a mount
// with other mounts on it is busy (EBUSY); with it, those go too.
// follow says whether a final symbolic link is followed. Files open on
// an unmounted file system keep working.
func (v *VFS) Unmount(ctx *Context, dir *File, path string, follow, detach bool) error {
	if !ctx.Creds.Capable(unix.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	vd, err := v.mountRootAt(ctx, dir, path, follow)
	if err != nil {
		return err
	}
	v.treeMu.Lock()
	m := vd.mnt
	switch {
	case m.parent == nil && detach:
		v.treeMu.Unlock()
		return unix.EINVAL
	case m.parent == nil, !detach && len(m.children) > 0:
		v.treeMu.Unlock()
		return unix.EBUSY
	}
	detached := v.mountsBelowLocked(m, nil)
	v.detach(m)
	gone := v.unmountedLocked(detached)
	v.treeMu.Unlock()
	v.notifyUnmounted(gone)
	return nil
}

// UnmountRelease detaches the mount whose root is at path and the mounts
// below it, as Unmount with detach does, then releases the file systems
// the VFS owns that no mount shows any more (a host directory's
// descriptors, so that the host can unmount what it served). Files open
// on them keep their own state; lookups through them fail.
func (v *VFS) UnmountRelease(ctx *Context, path string) error {
	if !ctx.Creds.Capable(unix.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	vd, err := v.mountRootAt(ctx, nil, path, false)
	if err != nil {
		return err
	}
	v.treeMu.Lock()
	m := vd.mnt
	if m.parent == nil {
		v.treeMu.Unlock()
		return unix.EINVAL
	}
	detached := v.mountsBelowLocked(m, nil)
	v.detach(m)
	gone := v.unmountedLocked(detached)
	var release []FileSystem
	for _, fs := range gone {
		if i := slices.Index(v.fss, fs); i >= 0 {
			v.fss = slices.Delete(v.fss, i, i+1)
			release = append(release, fs)
		}
	}
	v.treeMu.Unlock()
	v.notifyUnmounted(gone)
	for _, fs := range release {
		fs.Release()
	}
	return nil
}

// mountsBelowLocked appends the file systems of m and the mounts below it
// to fss. treeMu is held.
func (v *VFS) mountsBelowLocked(m *Mount, fss []FileSystem) []FileSystem {
	fss = append(fss, m.fs)
	for _, c := range m.children {
		fss = v.mountsBelowLocked(c, fss)
	}
	return fss
}

// Mounts lists the mounts visible from root, in mount order.
func (v *VFS) Mounts(root VirtualDentry) []MountInfo {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	all := []*Mount{v.root}
	for _, m := range v.mounts {
		all = append(all, m)
	}
	slices.SortFunc(all, func(a, b *Mount) int { return a.id - b.id })
	out := make([]MountInfo, 0, len(all))
	for _, m := range all {
		target, ok := v.pathOfLocked(root, VirtualDentry{m, m.root})
		if !ok {
			continue
		}
		info := MountInfo{ID: m.id, Dev: m.dev, FS: m.fs, Source: m.source, ReadOnly: m.readOnly.Load(), Flags: m.flags,
			Root: fsPath(m.root), Target: target}
		if m.parent != nil {
			info.ParentID = m.parent.id
		}
		out = append(out, info)
	}
	return out
}

// fsPath is the path of d from the root of its file system. treeMu is held.
func fsPath(d *Dentry) string {
	var names []string
	for ; d.parent != nil; d = d.parent {
		names = append(names, d.name)
	}
	return join(names)
}
