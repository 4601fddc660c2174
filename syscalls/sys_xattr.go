package syscalls

import (
	"strings"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// No kvmbox file system stores extended attributes: every file has none,
// as on a Linux file system mounted without them. Programs ask anyway (ls
// for ACLs and SELinux labels, cp -a, tar, Python's shutil.copystat) and
// treat "none" as normal.
const xattrNote = "no file system stores extended attributes: get and remove are ENODATA, list is empty, set is EOPNOTSUPP"

var xattrEntries = []entryAt{
	{unix.SYS_GETXATTR, Entry{"getxattr", sysGetxattr, Partial, xattrNote, []Arg{ArgPath, ArgPath, ArgHex, ArgInt}}},
	{unix.SYS_LGETXATTR, Entry{"lgetxattr", sysLgetxattr, Partial, xattrNote, []Arg{ArgPath, ArgPath, ArgHex, ArgInt}}},
	{unix.SYS_FGETXATTR, Entry{"fgetxattr", sysFgetxattr, Partial, xattrNote, []Arg{ArgInt, ArgPath, ArgHex, ArgInt}}},
	{unix.SYS_LISTXATTR, Entry{"listxattr", sysListxattr, Partial, xattrNote, []Arg{ArgPath, ArgHex, ArgInt}}},
	{unix.SYS_LLISTXATTR, Entry{"llistxattr", sysLlistxattr, Partial, xattrNote, []Arg{ArgPath, ArgHex, ArgInt}}},
	{unix.SYS_FLISTXATTR, Entry{"flistxattr", sysFlistxattr, Partial, xattrNote, []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_SETXATTR, Entry{"setxattr", sysSetxattr, Partial, xattrNote, []Arg{ArgPath, ArgPath, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_LSETXATTR, Entry{"lsetxattr", sysLsetxattr, Partial, xattrNote, []Arg{ArgPath, ArgPath, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_FSETXATTR, Entry{"fsetxattr", sysFsetxattr, Partial, xattrNote, []Arg{ArgInt, ArgPath, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_REMOVEXATTR, Entry{"removexattr", sysRemovexattr, Partial, xattrNote, []Arg{ArgPath, ArgPath}}},
	{unix.SYS_LREMOVEXATTR, Entry{"lremovexattr", sysLremovexattr, Partial, xattrNote, []Arg{ArgPath, ArgPath}}},
	{unix.SYS_FREMOVEXATTR, Entry{"fremovexattr", sysFremovexattr, Partial, xattrNote, []Arg{ArgInt, ArgPath}}},
}

const (
	xattrNameMax = 255     // XATTR_NAME_MAX
	xattrSizeMax = 1 << 16 // XATTR_SIZE_MAX
)

// xattrNamespaces are the name prefixes Linux knows; a name in none of
// them is EOPNOTSUPP.
var xattrNamespaces = []string{"user.", "trusted.", "security.", "system."}

// xattrName reads an attribute name: ERANGE when empty or longer than
// XATTR_NAME_MAX, EOPNOTSUPP outside the known namespaces.
func xattrName(t *kernel.Task, addr uint64) error {
	name, err := t.ThreadGroup().MM().ReadString(addr, xattrNameMax+1)
	if err == unix.ENAMETOOLONG {
		return unix.ERANGE
	}
	if err != nil {
		return err
	}
	if name == "" {
		return unix.ERANGE
	}
	for _, ns := range xattrNamespaces {
		if strings.HasPrefix(name, ns) && len(name) > len(ns) {
			return nil
		}
	}
	return unix.EOPNOTSUPP
}

// xattrPath checks that the file a path names exists, following a final
// symbolic link unless nofollow.
func xattrPath(t *kernel.Task, addr uint64, nofollow bool) error {
	flags := 0
	if nofollow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	return atPath(t, atFDCWD, addr, false, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		var st unix.Stat_t
		return v.StatAt(ctx, dir, path, flags, &st)
	})
}

// xattrFD checks fd: EBADF when closed or opened with O_PATH.
func xattrFD(t *kernel.Task, fd uint64) error {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return err
	}
	f.DecRef()
	return nil
}

// getxattr answers that the file has no attribute of that name.
func getxattr(t *kernel.Task, nameAddr uint64, checkFile func() error) (uint64, error) {
	if err := checkFile(); err != nil {
		return 0, err
	}
	if err := xattrName(t, nameAddr); err != nil {
		return 0, err
	}
	return 0, unix.ENODATA
}

func sysGetxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return getxattr(t, a[1], func() error { return xattrPath(t, a[0], false) })
}

func sysLgetxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return getxattr(t, a[1], func() error { return xattrPath(t, a[0], true) })
}

func sysFgetxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return getxattr(t, a[1], func() error { return xattrFD(t, a[0]) })
}

// listxattr answers an empty list.
func listxattr(checkFile func() error) (uint64, error) {
	return 0, checkFile()
}

func sysListxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return listxattr(func() error { return xattrPath(t, a[0], false) })
}

func sysLlistxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return listxattr(func() error { return xattrPath(t, a[0], true) })
}

func sysFlistxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return listxattr(func() error { return xattrFD(t, a[0]) })
}

// setxattr validates the call as Linux does, then refuses: no file system
// can store the attribute.
func setxattr(t *kernel.Task, nameAddr, size, flags uint64, checkFile func() error) (uint64, error) {
	if flags&^uint64(unix.XATTR_CREATE|unix.XATTR_REPLACE) != 0 {
		return 0, unix.EINVAL
	}
	if err := xattrName(t, nameAddr); err != nil {
		return 0, err
	}
	if size > xattrSizeMax {
		return 0, unix.E2BIG
	}
	if err := checkFile(); err != nil {
		return 0, err
	}
	return 0, unix.EOPNOTSUPP
}

func sysSetxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return setxattr(t, a[1], a[3], a[4], func() error { return xattrPath(t, a[0], false) })
}

func sysLsetxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return setxattr(t, a[1], a[3], a[4], func() error { return xattrPath(t, a[0], true) })
}

func sysFsetxattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return setxattr(t, a[1], a[3], a[4], func() error { return xattrFD(t, a[0]) })
}

// removexattr answers that there is no attribute to remove.
func removexattr(t *kernel.Task, nameAddr uint64, checkFile func() error) (uint64, error) {
	if err := xattrName(t, nameAddr); err != nil {
		return 0, err
	}
	if err := checkFile(); err != nil {
		return 0, err
	}
	return 0, unix.ENODATA
}

func sysRemovexattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return removexattr(t, a[1], func() error { return xattrPath(t, a[0], false) })
}

func sysLremovexattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return removexattr(t, a[1], func() error { return xattrPath(t, a[0], true) })
}

func sysFremovexattr(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return removexattr(t, a[1], func() error { return xattrFD(t, a[0]) })
}
