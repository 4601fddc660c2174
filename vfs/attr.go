package vfs

import (
	"time"

	"golang.org/x/sys/unix"
)

// statxSyncType is Linux's AT_STATX_SYNC_TYPE.
const statxSyncType = unix.AT_STATX_FORCE_SYNC | unix.AT_STATX_DONT_SYNC

// stValid is Linux's ST_VALID statfs flag, which x/sys/unix lacks.
const stValid = 0x20

// statAtFlags are the flags fstatat(2) accepts.
const statAtFlags = unix.AT_SYMLINK_NOFOLLOW | unix.AT_EMPTY_PATH | unix.AT_NO_AUTOMOUNT

// statxAt returns the attributes of path's object.
func (v *VFS) statxAt(ctx *Context, dir *File, path string, flags int) (unix.Statx_t, error) {
	vd, f, err := v.lookupAt(ctx, dir, path, flags&unix.AT_SYMLINK_NOFOLLOW == 0, flags&unix.AT_EMPTY_PATH != 0)
	if err != nil {
		return unix.Statx_t{}, err
	}
	if f != nil {
		return f.Stat(ctx)
	}
	return vd.stat(ctx)
}

// StatAt implements newfstatat(2) (flags: AT_SYMLINK_NOFOLLOW,
// AT_EMPTY_PATH, AT_NO_AUTOMOUNT).
func (v *VFS) StatAt(ctx *Context, dir *File, path string, flags int, st *unix.Stat_t) error {
	if flags&^statAtFlags != 0 {
		return unix.EINVAL
	}
	stx, err := v.statxAt(ctx, dir, path, flags)
	if err != nil {
		return err
	}
	StatFromStatx(st, &stx)
	return nil
}

// StatxAt implements statx(2). Every file system fills in the basic
// fields; mask only selects what is reported as valid, as Linux allows.
func (v *VFS) StatxAt(ctx *Context, dir *File, path string, flags int, mask uint32) (unix.Statx_t, error) {
	switch {
	case flags&^(statAtFlags|statxSyncType) != 0,
		flags&statxSyncType == statxSyncType,
		mask&unix.STATX__RESERVED != 0:
		return unix.Statx_t{}, unix.EINVAL
	}
	return v.statxAt(ctx, dir, path, flags)
}

// StatFromStatx converts statx(2) attributes to the stat(2) layout.
func StatFromStatx(st *unix.Stat_t, x *unix.Statx_t) {
	*st = unix.Stat_t{
		Dev:     unix.Mkdev(x.Dev_major, x.Dev_minor),
		Ino:     x.Ino,
		Nlink:   uint64(x.Nlink),
		Mode:    uint32(x.Mode),
		Uid:     x.Uid,
		Gid:     x.Gid,
		Rdev:    unix.Mkdev(x.Rdev_major, x.Rdev_minor),
		Size:    int64(x.Size),
		Blksize: int64(x.Blksize),
		Blocks:  int64(x.Blocks),
		Atim:    unix.Timespec{Sec: x.Atime.Sec, Nsec: int64(x.Atime.Nsec)},
		Mtim:    unix.Timespec{Sec: x.Mtime.Sec, Nsec: int64(x.Mtime.Nsec)},
		Ctim:    unix.Timespec{Sec: x.Ctime.Sec, Nsec: int64(x.Ctime.Nsec)},
	}
}

// AccessAt implements faccessat2(2) (flags: AT_EACCESS,
// AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH). Without AT_EACCESS the check, path
// walk included, uses the real uid and gid, with the permitted
// capabilities for real uid 0 and none for any other.
func (v *VFS) AccessAt(ctx *Context, dir *File, path string, mode uint32, flags int) error {
	if mode&^(unix.R_OK|unix.W_OK|unix.X_OK) != 0 ||
		flags&^(unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	if flags&unix.AT_EACCESS == 0 {
		creds := *ctx.Creds
		creds.UID, creds.GID = creds.RealUID, creds.RealGID
		creds.Caps = 0
		if creds.RealUID == 0 {
			creds.Caps = creds.Permitted
		}
		c := *ctx
		c.Creds = &creds
		ctx = &c
	}
	vd, f, err := v.lookupAt(ctx, dir, path, flags&unix.AT_SYMLINK_NOFOLLOW == 0, flags&unix.AT_EMPTY_PATH != 0)
	if err != nil || mode == 0 {
		return err
	}
	var st unix.Statx_t
	if f != nil {
		st, err = f.Stat(ctx)
	} else {
		st, err = vd.stat(ctx)
	}
	if err != nil {
		return err
	}
	typ := uint32(st.Mode) & unix.S_IFMT
	if mode&unix.X_OK != 0 && typ == unix.S_IFREG && vd.mnt != nil && v.noExec(vd.mnt) {
		return unix.EACCES
	}
	if mode&unix.W_OK != 0 && vd.mnt != nil && vd.mnt.readOnly.Load() &&
		(typ == unix.S_IFREG || typ == unix.S_IFDIR || typ == unix.S_IFLNK) {
		return unix.EROFS
	}
	return ctx.Creds.permission(&st, mode)
}

// setAttrAt resolves path for chmod, chown and utimensat and checks that
// the mount is writable; it returns the object and its attributes.
func (v *VFS) setAttrAt(ctx *Context, dir *File, path string, flags int) (VirtualDentry, unix.Statx_t, error) {
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return VirtualDentry{}, unix.Statx_t{}, unix.EINVAL
	}
	vd, f, err := v.lookupAt(ctx, dir, path, flags&unix.AT_SYMLINK_NOFOLLOW == 0, flags&unix.AT_EMPTY_PATH != 0)
	if err != nil {
		return vd, unix.Statx_t{}, err
	}
	if f != nil {
		return vd, unix.Statx_t{}, unix.EOPNOTSUPP
	}
	if vd.mnt.readOnly.Load() {
		return vd, unix.Statx_t{}, unix.EROFS
	}
	st, err := vd.stat(ctx)
	return vd, st, err
}

// ChmodAt implements fchmodat2(2) (flags: AT_SYMLINK_NOFOLLOW,
// AT_EMPTY_PATH). fchmod is ChmodAt(ctx, f, "", mode, AT_EMPTY_PATH).
func (v *VFS) ChmodAt(ctx *Context, dir *File, path string, mode uint32, flags int) error {
	vd, st, err := v.setAttrAt(ctx, dir, path, flags)
	if err != nil {
		return err
	}
	if vd.d.typ == unix.S_IFLNK {
		return unix.EOPNOTSUPP
	}
	if !ctx.Creds.isOwner(&st) {
		return unix.EPERM
	}
	mode &= 0o7777
	if !ctx.Creds.inGroupOrCapable(st.Gid) {
		mode &^= unix.S_ISGID
	}
	return v.setStat(ctx, vd, &SetStat{Mask: unix.STATX_MODE, Mode: mode})
}

// ChownAt implements fchownat(2); -1 leaves an ID unchanged.
func (v *VFS) ChownAt(ctx *Context, dir *File, path string, uid, gid int, flags int) error {
	if uid < -1 || gid < -1 || uid > 0xfffffffe || gid > 0xfffffffe {
		return unix.EINVAL
	}
	vd, st, err := v.setAttrAt(ctx, dir, path, flags)
	if err != nil {
		return err
	}
	c := ctx.Creds
	s := &SetStat{}
	if uid != -1 {
		if !c.Capable(unix.CAP_CHOWN) && (c.UID != st.Uid || uint32(uid) != st.Uid) {
			return unix.EPERM
		}
		s.Mask |= unix.STATX_UID
		s.UID = uint32(uid)
	}
	if gid != -1 {
		if !c.Capable(unix.CAP_CHOWN) && (c.UID != st.Uid || uint32(gid) != st.Gid && !c.inGroup(uint32(gid))) {
			return unix.EPERM
		}
		s.Mask |= unix.STATX_GID
		s.GID = uint32(gid)
	}
	mode := uint32(st.Mode)
	if mode&unix.S_IFMT != unix.S_IFDIR && mode&unix.S_IFMT != unix.S_IFLNK {
		kill := mode &^ unix.S_ISUID
		if mode&unix.S_IXGRP != 0 || !c.inGroupOrCapable(st.Gid) {
			kill &^= unix.S_ISGID
		}
		if kill != mode {
			s.Mask |= unix.STATX_MODE
			s.Mode = kill & 0o7777
		}
	}
	return v.setStat(ctx, vd, s)
}

// UtimensAt implements utimensat(2); times nil means both now, and
// UTIME_NOW and UTIME_OMIT work as on Linux.
func (v *VFS) UtimensAt(ctx *Context, dir *File, path string, times *[2]unix.Timespec, flags int) error {
	if times != nil {
		for _, t := range times {
			if t.Nsec != unix.UTIME_NOW && t.Nsec != unix.UTIME_OMIT && (t.Nsec < 0 || t.Nsec >= 1e9) {
				return unix.EINVAL
			}
		}
	}
	vd, st, err := v.setAttrAt(ctx, dir, path, flags)
	if err != nil {
		return err
	}
	now := unix.NsecToTimespec(time.Now().UnixNano())
	s := &SetStat{Mask: unix.STATX_ATIME | unix.STATX_MTIME, Atime: now, Mtime: now}
	explicit := false
	if times != nil {
		for i, t := range times {
			bit := []uint32{unix.STATX_ATIME, unix.STATX_MTIME}[i]
			switch t.Nsec {
			case unix.UTIME_OMIT:
				s.Mask &^= bit
			case unix.UTIME_NOW:
			default:
				explicit = true
				if i == 0 {
					s.Atime = t
				} else {
					s.Mtime = t
				}
			}
		}
		if s.Mask == 0 {
			return nil
		}
	}
	if !ctx.Creds.isOwner(&st) {
		if explicit {
			return unix.EPERM
		}
		if err := ctx.Creds.permission(&st, mayWrite); err != nil {
			return err
		}
	}
	return v.setStat(ctx, vd, s)
}

// TruncateAt implements truncate(2).
func (v *VFS) TruncateAt(ctx *Context, dir *File, path string, length int64) error {
	if length < 0 {
		return unix.EINVAL
	}
	vd, err := v.resolver(ctx, 0).walkAt(dir, path, true)
	if err != nil {
		return err
	}
	switch {
	case vd.d.typ == unix.S_IFDIR:
		return unix.EISDIR
	case vd.d.typ != unix.S_IFREG:
		return unix.EINVAL
	case vd.mnt.readOnly.Load():
		return unix.EROFS
	}
	st, err := vd.stat(ctx)
	if err != nil {
		return err
	}
	if err := ctx.Creds.permission(&st, mayWrite); err != nil {
		return err
	}
	defer vd.d.writes.Add(1)
	if err := vd.d.truncate(ctx, length); err != nil {
		return err
	}
	v.notify(vd.d, unix.IN_MODIFY)
	return nil
}

// StatfsAt implements statfs(2).
func (v *VFS) StatfsAt(ctx *Context, dir *File, path string) (unix.Statfs_t, error) {
	vd, err := v.resolver(ctx, 0).walkAt(dir, path, true)
	if err != nil {
		return unix.Statfs_t{}, err
	}
	return vd.statfs(ctx)
}

func (vd VirtualDentry) statfs(ctx *Context) (unix.Statfs_t, error) {
	st, err := vd.mnt.fs.Statfs(ctx)
	if err != nil {
		return st, err
	}
	st.Flags |= stValid
	if vd.mnt.readOnly.Load() {
		st.Flags |= unix.ST_RDONLY
	}
	return st, nil
}

// Statfs implements fstatfs(2).
func (f *File) Statfs(ctx *Context) (unix.Statfs_t, error) {
	if f.vd.d == nil {
		return unix.Statfs_t{Bsize: pageSize, Frsize: pageSize, Namelen: unix.NAME_MAX, Flags: stValid}, nil
	}
	return f.vd.statfs(ctx)
}
