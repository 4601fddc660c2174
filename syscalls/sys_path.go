package syscalls

import (
	"strings"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

var pathEntries = []entryAt{
	{unix.SYS_OPEN, Entry{"open", sysOpen, Partial, "O_TMPFILE is EOPNOTSUPP", []Arg{ArgPath, ArgHex, ArgOct}}},
	{unix.SYS_OPENAT, Entry{"openat", sysOpenat, Partial, "O_TMPFILE is EOPNOTSUPP", []Arg{ArgDirFD, ArgPath, ArgHex, ArgOct}}},
	{unix.SYS_OPENAT2, Entry{"openat2", sysOpenat2, Partial, "O_TMPFILE is EOPNOTSUPP; RESOLVE_CACHED is EINVAL", []Arg{ArgDirFD, ArgPath, ArgHex, ArgInt}}},
	{unix.SYS_CREAT, Entry{"creat", sysCreat, Supported, "", []Arg{ArgPath, ArgOct}}},
	{unix.SYS_MKDIR, Entry{"mkdir", sysMkdir, Supported, "", []Arg{ArgPath, ArgOct}}},
	{unix.SYS_MKDIRAT, Entry{"mkdirat", sysMkdirat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgOct}}},
	{unix.SYS_MKNOD, Entry{"mknod", sysMknod, Partial, "regular files, FIFOs and sockets; device nodes are EPERM", []Arg{ArgPath, ArgOct, ArgHex}}},
	{unix.SYS_MKNODAT, Entry{"mknodat", sysMknodat, Partial, "regular files, FIFOs and sockets; device nodes are EPERM", []Arg{ArgDirFD, ArgPath, ArgOct, ArgHex}}},
	{unix.SYS_RMDIR, Entry{"rmdir", sysRmdir, Supported, "", []Arg{ArgPath}}},
	{unix.SYS_UNLINK, Entry{"unlink", sysUnlink, Supported, "", []Arg{ArgPath}}},
	{unix.SYS_UNLINKAT, Entry{"unlinkat", sysUnlinkat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgHex}}},
	{unix.SYS_RENAME, Entry{"rename", sysRename, Supported, "", []Arg{ArgPath, ArgPath}}},
	{unix.SYS_RENAMEAT, Entry{"renameat", sysRenameat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgDirFD, ArgPath}}},
	{unix.SYS_RENAMEAT2, Entry{"renameat2", sysRenameat2, Partial, "RENAME_NOREPLACE and RENAME_EXCHANGE; RENAME_WHITEOUT is EINVAL", []Arg{ArgDirFD, ArgPath, ArgDirFD, ArgPath, ArgHex}}},
	{unix.SYS_LINK, Entry{"link", sysLink, Supported, "", []Arg{ArgPath, ArgPath}}},
	{unix.SYS_LINKAT, Entry{"linkat", sysLinkat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgDirFD, ArgPath, ArgHex}}},
	{unix.SYS_SYMLINK, Entry{"symlink", sysSymlink, Supported, "", []Arg{ArgPath, ArgPath}}},
	{unix.SYS_SYMLINKAT, Entry{"symlinkat", sysSymlinkat, Supported, "", []Arg{ArgPath, ArgDirFD, ArgPath}}},
	{unix.SYS_READLINK, Entry{"readlink", sysReadlink, Partial, "/proc/self/exe is answered before the file system until procfs is mounted", []Arg{ArgPath, ArgOutBuf, ArgInt}}},
	{unix.SYS_READLINKAT, Entry{"readlinkat", sysReadlinkat, Partial, "/proc/self/exe is answered before the file system until procfs is mounted", []Arg{ArgDirFD, ArgPath, ArgOutBuf, ArgInt}}},
	{unix.SYS_CHMOD, Entry{"chmod", sysChmod, Supported, "", []Arg{ArgPath, ArgOct}}},
	{unix.SYS_FCHMOD, Entry{"fchmod", sysFchmod, Supported, "", []Arg{ArgInt, ArgOct}}},
	{unix.SYS_FCHMODAT, Entry{"fchmodat", sysFchmodat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgOct}}},
	{unix.SYS_FCHMODAT2, Entry{"fchmodat2", sysFchmodat2, Supported, "", []Arg{ArgDirFD, ArgPath, ArgOct, ArgHex}}},
	{unix.SYS_CHOWN, Entry{"chown", sysChown, Supported, "", []Arg{ArgPath, ArgInt, ArgInt}}},
	{unix.SYS_FCHOWN, Entry{"fchown", sysFchown, Supported, "", []Arg{ArgInt, ArgInt, ArgInt}}},
	{unix.SYS_LCHOWN, Entry{"lchown", sysLchown, Supported, "", []Arg{ArgPath, ArgInt, ArgInt}}},
	{unix.SYS_FCHOWNAT, Entry{"fchownat", sysFchownat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_TRUNCATE, Entry{"truncate", sysTruncate, Supported, "", []Arg{ArgPath, ArgInt}}},
	{unix.SYS_UTIMENSAT, Entry{"utimensat", sysUtimensat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgHex, ArgHex}}},
	{unix.SYS_UTIMES, Entry{"utimes", sysUtimes, Supported, "", []Arg{ArgPath, ArgHex}}},
	{unix.SYS_UTIME, Entry{"utime", sysUtime, Supported, "", []Arg{ArgPath, ArgHex}}},
	{unix.SYS_FUTIMESAT, Entry{"futimesat", sysFutimesat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgHex}}},
	{unix.SYS_ACCESS, Entry{"access", sysAccess, Supported, "", []Arg{ArgPath, ArgOct}}},
	{unix.SYS_FACCESSAT, Entry{"faccessat", sysFaccessat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgOct}}},
	{unix.SYS_FACCESSAT2, Entry{"faccessat2", sysFaccessat2, Supported, "", []Arg{ArgDirFD, ArgPath, ArgOct, ArgHex}}},
	{unix.SYS_GETCWD, Entry{"getcwd", sysGetcwd, Supported, "", []Arg{ArgHex, ArgInt}}},
	{unix.SYS_CHDIR, Entry{"chdir", sysChdir, Supported, "", []Arg{ArgPath}}},
	{unix.SYS_FCHDIR, Entry{"fchdir", sysFchdir, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_CHROOT, Entry{"chroot", sysChroot, Supported, "", []Arg{ArgPath}}},
	{unix.SYS_UMASK, Entry{"umask", sysUmask, Supported, "", []Arg{ArgOct}}},
	{unix.SYS_STATFS, Entry{"statfs", sysStatfs, Supported, "", []Arg{ArgPath, ArgHex}}},
	{unix.SYS_FSTATFS, Entry{"fstatfs", sysFstatfs, Supported, "", []Arg{ArgInt, ArgHex}}},
}

// readPathArg reads a path argument: EFAULT, ENAMETOOLONG, and ENOENT for
// an empty path unless the call takes AT_EMPTY_PATH.
func readPathArg(t *kernel.Task, addr uint64, allowEmpty bool) (string, error) {
	s, err := t.ThreadGroup().MM().ReadString(addr, unix.PathMax)
	if err != nil {
		return "", err
	}
	if s == "" && !allowEmpty {
		return "", unix.ENOENT
	}
	return s, nil
}

// atDir returns the directory file a relative path of an *at call starts
// from (with a reference), or nil for AT_FDCWD and absolute paths, which
// ignore dirfd.
func atDir(t *kernel.Task, dirfd uint64, path string) (*vfs.File, error) {
	if path != "" && path[0] == '/' || int32(dirfd) == unix.AT_FDCWD {
		return nil, nil
	}
	return getFile(t, dirfd)
}

// pathOp is a path operation of the VFS on a resolved (dir, path) pair.
type pathOp func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error

// atPath reads the path at addr and runs op with its start directory.
func atPath(t *kernel.Task, dirfd, addr uint64, allowEmpty bool, op pathOp) error {
	path, err := readPathArg(t, addr, allowEmpty)
	if err != nil {
		return err
	}
	return atResolved(t, dirfd, path, op)
}

func atResolved(t *kernel.Task, dirfd uint64, path string, op pathOp) error {
	dir, err := atDir(t, dirfd, path)
	if err != nil {
		return err
	}
	if dir != nil {
		defer dir.DecRef()
	}
	return op(t.Kernel().VFS(), t.FSContext(), dir, path)
}

// fdOp runs op on the file at fd itself (fchmod, fchown, futimens), which
// must not be an O_PATH file.
func fdOp(t *kernel.Task, fd uint64, op pathOp) error {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return err
	}
	defer f.DecRef()
	return op(t.Kernel().VFS(), t.FSContext(), f, "")
}

// openFile opens a file into a descriptor reserved first, as Linux does.
func openFile(t *kernel.Task, dirfd, pathAddr uint64, cloexec bool, open func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) (*vfs.File, error)) (uint64, error) {
	path, err := readPathArg(t, pathAddr, false)
	if err != nil {
		return 0, err
	}
	fd, err := reserveFD(t, cloexec)
	if err != nil {
		return 0, err
	}
	var f *vfs.File
	err = atResolved(t, dirfd, path, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		var err error
		f, err = open(v, ctx, dir, path)
		return err
	})
	if err != nil {
		closeReserved(t, fd)
		return 0, err
	}
	return fillFD(t, fd, f, cloexec), nil
}

func openat(t *kernel.Task, dirfd, pathAddr uint64, flags int, mode uint32) (uint64, error) {
	return openFile(t, dirfd, pathAddr, flags&unix.O_CLOEXEC != 0, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) (*vfs.File, error) {
		return v.OpenAt(ctx, dir, path, flags, mode)
	})
}

func sysOpen(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return openat(t, atFDCWD, a[0], int(int32(a[1])), uint32(a[2]))
}

func sysOpenat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return openat(t, a[0], a[1], int(int32(a[2])), uint32(a[3]))
}

func sysCreat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return openat(t, atFDCWD, a[0], unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, uint32(a[1]))
}

func sysOpenat2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	size := a[3]
	switch {
	case size < unix.SizeofOpenHow:
		return 0, unix.EINVAL
	case size > pageSize:
		return 0, unix.E2BIG
	}
	var how unix.OpenHow
	if err := copyInStruct(t, a[2], &how); err != nil {
		return 0, err
	}
	if size > unix.SizeofOpenHow {
		rest := make([]byte, size-unix.SizeofOpenHow)
		if err := copyIn(t, a[2]+unix.SizeofOpenHow, rest); err != nil {
			return 0, err
		}
		for _, b := range rest {
			if b != 0 {
				return 0, unix.E2BIG
			}
		}
	}
	return openFile(t, a[0], a[1], how.Flags&unix.O_CLOEXEC != 0, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) (*vfs.File, error) {
		return v.OpenAt2(ctx, dir, path, &how)
	})
}

const pageSize = 4096

func mkdirat(t *kernel.Task, dirfd, pathAddr uint64, mode uint32) (uint64, error) {
	return 0, atPath(t, dirfd, pathAddr, false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.MkdirAt(ctx, dir, path, mode)
	})
}

func sysMkdir(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return mkdirat(t, atFDCWD, a[0], uint32(a[1]))
}

func sysMkdirat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return mkdirat(t, a[0], a[1], uint32(a[2]))
}

// atFDCWD is AT_FDCWD as a system-call argument.
const atFDCWD = uint64(unix.AT_FDCWD & 0xffffffff)

func mknodat(t *kernel.Task, dirfd, pathAddr uint64, mode uint32, dev uint64) (uint64, error) {
	return 0, atPath(t, dirfd, pathAddr, false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		typ := mode & unix.S_IFMT
		if typ != unix.S_IFCHR && typ != unix.S_IFBLK {
			return v.MknodAt(ctx, dir, path, mode, dev)
		}
		// Device nodes are refused after the checks that come first on
		// Linux: an existing name is EEXIST, a missing directory ENOENT.
		var st unix.Stat_t
		switch err := v.StatAt(ctx, dir, path, unix.AT_SYMLINK_NOFOLLOW, &st); err {
		case nil:
			return unix.EEXIST
		case unix.ENOENT:
			if err := v.StatAt(ctx, dir, parentPath(path), 0, &st); err != nil {
				return err
			}
			return unix.EPERM
		default:
			return err
		}
	})
}

// parentPath is the directory part of path.
func parentPath(path string) string {
	trimmed := strings.TrimRight(path, "/")
	i := strings.LastIndexByte(trimmed, '/')
	switch {
	case i < 0:
		return "."
	case i == 0:
		return "/"
	}
	return trimmed[:i]
}

func sysMknod(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return mknodat(t, atFDCWD, a[0], uint32(a[1]), uint64(uint32(a[2])))
}

func sysMknodat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return mknodat(t, a[0], a[1], uint32(a[2]), uint64(uint32(a[3])))
}

func unlinkat(t *kernel.Task, dirfd, pathAddr uint64, flags int) (uint64, error) {
	return 0, atPath(t, dirfd, pathAddr, false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.UnlinkAt(ctx, dir, path, flags)
	})
}

func sysRmdir(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return unlinkat(t, atFDCWD, a[0], unix.AT_REMOVEDIR)
}

func sysUnlink(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return unlinkat(t, atFDCWD, a[0], 0)
}

func sysUnlinkat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[2]&^unix.AT_REMOVEDIR != 0 {
		return 0, unix.EINVAL
	}
	return unlinkat(t, a[0], a[1], int(a[2]))
}

// twoPaths runs op on two resolved (dir, path) pairs: rename and link.
func twoPaths(t *kernel.Task, olddirfd, oldAddr, newdirfd, newAddr uint64, oldEmpty bool, op func(v *vfs.VFS, ctx *vfs.Context, olddir *vfs.File, oldpath string, newdir *vfs.File, newpath string) error) error {
	oldpath, err := readPathArg(t, oldAddr, oldEmpty)
	if err != nil {
		return err
	}
	newpath, err := readPathArg(t, newAddr, false)
	if err != nil {
		return err
	}
	return atResolved(t, olddirfd, oldpath, func(v *vfs.VFS, ctx *vfs.Context, olddir *vfs.File, oldpath string) error {
		newdir, err := atDir(t, newdirfd, newpath)
		if err != nil {
			return err
		}
		if newdir != nil {
			defer newdir.DecRef()
		}
		return op(v, ctx, olddir, oldpath, newdir, newpath)
	})
}

func renameat(t *kernel.Task, olddirfd, oldAddr, newdirfd, newAddr uint64, flags uint32) (uint64, error) {
	return 0, twoPaths(t, olddirfd, oldAddr, newdirfd, newAddr, false, func(v *vfs.VFS, ctx *vfs.Context, olddir *vfs.File, oldpath string, newdir *vfs.File, newpath string) error {
		return v.RenameAt(ctx, olddir, oldpath, newdir, newpath, flags)
	})
}

func sysRename(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return renameat(t, atFDCWD, a[0], atFDCWD, a[1], 0)
}

func sysRenameat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return renameat(t, a[0], a[1], a[2], a[3], 0)
}

func sysRenameat2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[4] > 0xffffffff {
		return 0, unix.EINVAL
	}
	return renameat(t, a[0], a[1], a[2], a[3], uint32(a[4]))
}

func linkat(t *kernel.Task, olddirfd, oldAddr, newdirfd, newAddr uint64, flags int) (uint64, error) {
	if flags&^(unix.AT_SYMLINK_FOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	return 0, twoPaths(t, olddirfd, oldAddr, newdirfd, newAddr, flags&unix.AT_EMPTY_PATH != 0, func(v *vfs.VFS, ctx *vfs.Context, olddir *vfs.File, oldpath string, newdir *vfs.File, newpath string) error {
		return v.LinkAt(ctx, olddir, oldpath, newdir, newpath, flags)
	})
}

func sysLink(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return linkat(t, atFDCWD, a[0], atFDCWD, a[1], 0)
}

func sysLinkat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return linkat(t, a[0], a[1], a[2], a[3], int(int32(a[4])))
}

func symlinkat(t *kernel.Task, targetAddr, dirfd, pathAddr uint64) (uint64, error) {
	target, err := readPathArg(t, targetAddr, false)
	if err != nil {
		return 0, err
	}
	return 0, atPath(t, dirfd, pathAddr, false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.SymlinkAt(ctx, target, dir, path)
	})
}

func sysSymlink(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return symlinkat(t, a[0], atFDCWD, a[1])
}

func sysSymlinkat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return symlinkat(t, a[0], a[1], a[2])
}

// procSelfExe is answered before the file system while procfs is not
// mounted.
const procSelfExe = "/proc/self/exe"

func readlinkat(t *kernel.Task, dirfd, pathAddr, buf, size uint64) (uint64, error) {
	if int32(size) <= 0 {
		return 0, unix.EINVAL
	}
	path, err := readPathArg(t, pathAddr, true)
	if err != nil {
		return 0, err
	}
	var target string
	if path == procSelfExe {
		target = t.ThreadGroup().Path()
	} else if err := atResolved(t, dirfd, path, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		var err error
		target, err = v.ReadlinkAt(ctx, dir, path)
		return err
	}); err != nil {
		return 0, err
	}
	out := []byte(target)[:min(uint64(len(target)), uint64(uint32(size)))]
	return uint64(len(out)), copyOut(t, buf, out)
}

func sysReadlink(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return readlinkat(t, atFDCWD, a[0], a[1], a[2])
}

func sysReadlinkat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return readlinkat(t, a[0], a[1], a[2], a[3])
}

func chmodat(t *kernel.Task, dirfd, pathAddr uint64, mode uint32, flags int) (uint64, error) {
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	return 0, atPath(t, dirfd, pathAddr, flags&unix.AT_EMPTY_PATH != 0, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.ChmodAt(ctx, dir, path, mode, flags)
	})
}

func sysChmod(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return chmodat(t, atFDCWD, a[0], uint32(a[1]), 0)
}

func sysFchmodat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return chmodat(t, a[0], a[1], uint32(a[2]), 0)
}

func sysFchmodat2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return chmodat(t, a[0], a[1], uint32(a[2]), int(int32(a[3])))
}

func sysFchmod(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, fdOp(t, a[0], func(v *vfs.VFS, ctx *vfs.Context, f *vfs.File, _ string) error {
		return v.ChmodAt(ctx, f, "", uint32(a[1]), unix.AT_EMPTY_PATH)
	})
}

// chownID converts a uid_t or gid_t argument: (uid_t)-1 leaves the ID
// unchanged.
func chownID(v uint64) int {
	if uint32(v) == 0xffffffff {
		return -1
	}
	return int(uint32(v))
}

func chownat(t *kernel.Task, dirfd, pathAddr, uid, gid uint64, flags int) (uint64, error) {
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	return 0, atPath(t, dirfd, pathAddr, flags&unix.AT_EMPTY_PATH != 0, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.ChownAt(ctx, dir, path, chownID(uid), chownID(gid), flags)
	})
}

func sysChown(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return chownat(t, atFDCWD, a[0], a[1], a[2], 0)
}

func sysLchown(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return chownat(t, atFDCWD, a[0], a[1], a[2], unix.AT_SYMLINK_NOFOLLOW)
}

func sysFchownat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return chownat(t, a[0], a[1], a[2], a[3], int(int32(a[4])))
}

func sysFchown(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, fdOp(t, a[0], func(v *vfs.VFS, ctx *vfs.Context, f *vfs.File, _ string) error {
		return v.ChownAt(ctx, f, "", chownID(a[1]), chownID(a[2]), unix.AT_EMPTY_PATH)
	})
}

func sysTruncate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, atPath(t, atFDCWD, a[0], false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		if err := limitPathGrowth(t, v, ctx, dir, path, int64(a[1])); err != nil {
			return err
		}
		return v.TruncateAt(ctx, dir, path, int64(a[1]))
	})
}

// utimes applies times (nil: now) to the object of (dirfd, path), or to
// the file dirfd itself when pathAddr is 0, as utimensat and futimesat
// allow.
func utimes(t *kernel.Task, dirfd, pathAddr uint64, times *[2]unix.Timespec, flags int) error {
	if flags&^(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	if pathAddr == 0 && int32(dirfd) != unix.AT_FDCWD {
		if flags&unix.AT_SYMLINK_NOFOLLOW != 0 {
			return unix.EINVAL
		}
		return fdOp(t, dirfd, func(v *vfs.VFS, ctx *vfs.Context, f *vfs.File, _ string) error {
			return v.UtimensAt(ctx, f, "", times, unix.AT_EMPTY_PATH)
		})
	}
	return atPath(t, dirfd, pathAddr, flags&unix.AT_EMPTY_PATH != 0, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.UtimensAt(ctx, dir, path, times, flags)
	})
}

func sysUtimensat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var times *[2]unix.Timespec
	if a[2] != 0 {
		times = new([2]unix.Timespec)
		if err := copyInStruct(t, a[2], times); err != nil {
			return 0, err
		}
	}
	return 0, utimes(t, a[0], a[1], times, int(int32(a[3])))
}

// timevals reads utimes' struct timeval[2] (nil: now).
func timevals(t *kernel.Task, addr uint64) (*[2]unix.Timespec, error) {
	if addr == 0 {
		return nil, nil
	}
	var tv [2]unix.Timeval
	if err := copyInStruct(t, addr, &tv); err != nil {
		return nil, err
	}
	var ts [2]unix.Timespec
	for i, v := range tv {
		if v.Usec < 0 || v.Usec >= 1e6 {
			return nil, unix.EINVAL
		}
		ts[i] = unix.Timespec{Sec: v.Sec, Nsec: v.Usec * 1000}
	}
	return &ts, nil
}

func sysUtimes(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	times, err := timevals(t, a[1])
	if err != nil {
		return 0, err
	}
	return 0, utimes(t, atFDCWD, a[0], times, 0)
}

func sysFutimesat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	times, err := timevals(t, a[2])
	if err != nil {
		return 0, err
	}
	return 0, utimes(t, a[0], a[1], times, 0)
}

func sysUtime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var times *[2]unix.Timespec
	if a[1] != 0 {
		var ub unix.Utimbuf
		if err := copyInStruct(t, a[1], &ub); err != nil {
			return 0, err
		}
		times = &[2]unix.Timespec{{Sec: ub.Actime}, {Sec: ub.Modtime}}
	}
	return 0, utimes(t, atFDCWD, a[0], times, 0)
}

func accessat(t *kernel.Task, dirfd, pathAddr uint64, mode uint32, flags int) (uint64, error) {
	if mode&^(unix.R_OK|unix.W_OK|unix.X_OK) != 0 ||
		flags&^(unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	return 0, atPath(t, dirfd, pathAddr, flags&unix.AT_EMPTY_PATH != 0, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.AccessAt(ctx, dir, path, mode, flags)
	})
}

func sysAccess(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return accessat(t, atFDCWD, a[0], uint32(a[1]), 0)
}

func sysFaccessat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return accessat(t, a[0], a[1], uint32(a[2]), 0)
}

func sysFaccessat2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return accessat(t, a[0], a[1], uint32(a[2]), int(int32(a[3])))
}

func sysGetcwd(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	cwd, err := t.Kernel().VFS().Getcwd(t.FSContext())
	if err != nil {
		return 0, err
	}
	out := append([]byte(cwd), 0)
	if uint64(len(out)) > uint64(uint32(a[1])) {
		return 0, unix.ERANGE
	}
	return uint64(len(out)), copyOut(t, a[0], out)
}

func sysChdir(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, atPath(t, atFDCWD, a[0], false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		cwd, err := v.Chdir(ctx, dir, path)
		if err != nil {
			return err
		}
		t.ThreadGroup().SetCwd(cwd)
		return nil
	})
}

func sysFchdir(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	cwd, err := t.Kernel().VFS().Chdir(t.FSContext(), f, "")
	if err != nil {
		return 0, err
	}
	t.ThreadGroup().SetCwd(cwd)
	return 0, nil
}

// sysChroot looks the directory up and checks search permission on it
// before the capability, as Linux does: ENOENT, ENOTDIR and EACCES come
// before EPERM. The working directory stays where it is.
func sysChroot(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, atPath(t, atFDCWD, a[0], false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		root, err := v.Chdir(ctx, dir, path)
		if err != nil {
			return err
		}
		if !creds(t).Capable(unix.CAP_SYS_CHROOT) {
			return unix.EPERM
		}
		t.ThreadGroup().SetRoot(root)
		return nil
	})
}

func sysUmask(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().SwapUmask(uint32(a[0]) & 0o777)), nil
}

func sysStatfs(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var st unix.Statfs_t
	err := atPath(t, atFDCWD, a[0], false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		var err error
		st, err = v.StatfsAt(ctx, dir, path)
		return err
	})
	if err != nil {
		return 0, err
	}
	return 0, copyOutStruct(t, a[1], &st)
}

func sysFstatfs(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	st, err := f.Statfs(t.FSContext())
	if err != nil {
		return 0, err
	}
	return 0, copyOutStruct(t, a[1], &st)
}
