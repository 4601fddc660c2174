package syscalls

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/procfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
	"golang.org/x/sys/unix"
)

var mountEntries = []entryAt{
	{unix.SYS_MOUNT, Entry{"mount", sysMount, Partial, "new tmpfs and proc mounts, bind mounts (MS_BIND, MS_REC), MS_REMOUNT (read-only or read-write, per mount), propagation changes (accepted, no effect); MS_MOVE and other file systems are EINVAL and ENODEV", []Arg{ArgPath, ArgPath, ArgPath, ArgHex, ArgHex}}},
	{unix.SYS_UMOUNT2, Entry{"umount2", sysUmount2, Partial, "MNT_DETACH, UMOUNT_NOFOLLOW; MNT_FORCE is ignored, MNT_EXPIRE is EAGAIN; only mounts on a busy mount are EBUSY, not open files", []Arg{ArgPath, ArgHex}}},
	{unix.SYS_SETHOSTNAME, Entry{"sethostname", sysSethostname, Supported, "the sandbox's own UTS name", []Arg{ArgInBuf, ArgInt}}},
	{unix.SYS_SETDOMAINNAME, Entry{"setdomainname", sysSetdomainname, Supported, "the sandbox's own UTS name", []Arg{ArgInBuf, ArgInt}}},
}

// The mount flags that only change propagation (do_change_type).
const propagationFlags = unix.MS_SHARED | unix.MS_PRIVATE | unix.MS_SLAVE | unix.MS_UNBINDABLE

// mountShownFlags are the flags of a new mount that /proc/mounts shows.
const mountShownFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME |
	unix.MS_NODIRATIME | unix.MS_STRICTATIME

// readMountString reads mount(2)'s source or file-system type: empty for
// a null pointer, EINVAL when longer than a path (strndup_user).
func readMountString(t *kernel.Task, addr uint64) (string, error) {
	if addr == 0 {
		return "", nil
	}
	s, err := t.ThreadGroup().MM().ReadString(addr, unix.PathMax)
	if err == unix.ENAMETOOLONG {
		return "", unix.EINVAL
	}
	return s, err
}

// readMountData reads mount(2)'s data: a string of at most a page less
// its last byte (copy_mount_options).
func readMountData(t *kernel.Task, addr uint64) (string, error) {
	if addr == 0 {
		return "", nil
	}
	const page = 4096
	s, err := t.ThreadGroup().MM().ReadString(addr, page)
	if err != unix.ENAMETOOLONG {
		return s, err
	}
	b := make([]byte, page-1)
	if err := copyIn(t, addr, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// mayMount checks, as Linux does after looking the target up, that the
// caller has CAP_SYS_ADMIN.
func mayMount(t *kernel.Task, v *vfs.VFS, ctx *vfs.Context, target string, follow bool) error {
	flags := 0
	if !follow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	var st unix.Stat_t
	if err := v.StatAt(ctx, nil, target, flags, &st); err != nil {
		return err
	}
	if !creds(t).Capable(unix.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	return nil
}

func sysMount(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	typ, err := readMountString(t, a[2])
	if err != nil {
		return 0, err
	}
	source, err := readMountString(t, a[0])
	if err != nil {
		return 0, err
	}
	data, err := readMountData(t, a[4])
	if err != nil {
		return 0, err
	}
	target, err := readPathArg(t, a[1], false)
	if err != nil {
		return 0, err
	}
	flags := a[3]
	if flags&unix.MS_MGC_MSK == unix.MS_MGC_VAL {
		flags &^= unix.MS_MGC_MSK
	}
	v, ctx := t.Kernel().VFS(), t.FSContext()
	if err := mayMount(t, v, ctx, target, true); err != nil {
		return 0, err
	}
	if flags&unix.MS_NOUSER != 0 {
		return 0, unix.EINVAL
	}
	switch {
	case flags&unix.MS_REMOUNT != 0:
		return 0, v.Remount(ctx, nil, target, uint32(flags&mountShownFlags))
	case flags&unix.MS_BIND != 0:
		if source == "" {
			return 0, unix.EINVAL
		}
		return 0, v.Bind(ctx, nil, source, target, flags&unix.MS_REC != 0)
	case flags&propagationFlags != 0:
		// kvmbox has one mount namespace and no propagation: a change
		// that Linux accepts is accepted and has no effect.
		prop := flags &^ (unix.MS_REC | unix.MS_SILENT)
		if prop&^propagationFlags != 0 || prop&(prop-1) != 0 {
			return 0, unix.EINVAL
		}
		return 0, v.CheckMountRoot(ctx, nil, target)
	case flags&unix.MS_MOVE != 0:
		return 0, unix.EINVAL
	}
	fs, err := newFileSystem(t, typ, data)
	if err != nil {
		return 0, err
	}
	_, err = v.MountCollected(ctx, nil, target, fs, uint32(flags&mountShownFlags), source)
	return 0, err
}

// newFileSystem makes a file system of type typ for mount(2), with the
// options in data: EINVAL without a type, ENODEV for one the sandbox
// cannot mount.
func newFileSystem(t *kernel.Task, typ, data string) (vfs.FileSystem, error) {
	switch typ {
	case "":
		return nil, unix.EINVAL
	case "tmpfs":
		opts, err := tmpfsOptions(t, data)
		if err != nil {
			return nil, err
		}
		return tmpfs.New(opts), nil
	case "proc":
		return procfs.New(t.Kernel().ProcSource()), nil
	}
	return nil, unix.ENODEV
}

// tmpfsOptions parses tmpfs's mount options: size (bytes, with a k, m, g
// or % suffix), nr_blocks, mode, uid and gid; the others Linux knows are
// accepted and ignored, unknown ones are EINVAL.
func tmpfsOptions(t *kernel.Task, data string) (tmpfs.Options, error) {
	opts := tmpfs.Options{Mode: 0o1777}
	for opt := range strings.SplitSeq(data, ",") {
		key, val, _ := strings.Cut(opt, "=")
		var err error
		switch key {
		case "":
		case "size":
			opts.MaxBytes, err = tmpfsSize(t, val)
		case "nr_blocks":
			var n uint64
			n, err = strconv.ParseUint(val, 0, 63)
			opts.MaxBytes = int64(min(n, 1<<50)) * 4096
		case "mode":
			var m uint64
			m, err = strconv.ParseUint(val, 8, 32)
			opts.Mode = uint32(m & 0o7777)
		case "uid", "gid":
			var id uint64
			id, err = strconv.ParseUint(val, 10, 32)
			if err == nil && id == 1<<32-1 {
				err = unix.EINVAL
			}
			if key == "uid" {
				opts.UID = uint32(id)
			} else {
				opts.GID = uint32(id)
			}
		case "nr_inodes", "huge", "mpol", "inode32", "inode64", "noswap", "quota", "usrquota", "grpquota":
		default:
			err = unix.EINVAL
		}
		if err != nil {
			return opts, unix.EINVAL
		}
	}
	return opts, nil
}

// tmpfsSize parses tmpfs's size option (memparse, or a percentage of the
// sandbox's memory); 0 is unlimited.
func tmpfsSize(t *kernel.Task, val string) (int64, error) {
	if p, ok := strings.CutSuffix(val, "%"); ok {
		pct, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return 0, err
		}
		return int64(t.Kernel().Config().MemoryLimit / 100 * min(pct, 1<<20)), nil
	}
	shift := 0
	if n := len(val); n > 0 {
		if i := bytes.IndexByte([]byte("kmgtpe"), val[n-1]|0x20); i >= 0 {
			shift, val = 10*(i+1), val[:n-1]
		}
	}
	n, err := strconv.ParseUint(val, 0, 63)
	if err != nil || n > 1<<(63-shift)-1 {
		return 0, unix.EINVAL
	}
	return int64(n << shift), nil
}

func sysUmount2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := a[1]
	if flags&^(unix.MNT_FORCE|unix.MNT_DETACH|unix.MNT_EXPIRE|unix.UMOUNT_NOFOLLOW) != 0 {
		return 0, unix.EINVAL
	}
	target, err := readPathArg(t, a[0], false)
	if err != nil {
		return 0, err
	}
	follow := flags&unix.UMOUNT_NOFOLLOW == 0
	v, ctx := t.Kernel().VFS(), t.FSContext()
	if err := mayMount(t, v, ctx, target, follow); err != nil {
		return 0, err
	}
	if err := v.CheckMountRoot(ctx, nil, target); err != nil {
		return 0, err
	}
	if flags&unix.MNT_EXPIRE != 0 {
		if flags&(unix.MNT_FORCE|unix.MNT_DETACH) != 0 {
			return 0, unix.EINVAL
		}
		// The first MNT_EXPIRE only marks a mount on Linux.
		return 0, unix.EAGAIN
	}
	return 0, v.Unmount(ctx, nil, target, follow, flags&unix.MNT_DETACH != 0)
}

func sysSethostname(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	name, err := readUTSName(t, a)
	if err == nil {
		t.Kernel().Sysctl().SetHostname(name)
	}
	return 0, err
}

func sysSetdomainname(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	name, err := readUTSName(t, a)
	if err == nil {
		t.Kernel().Sysctl().SetDomainname(name)
	}
	return 0, err
}

// readUTSName reads the name argument of sethostname and setdomainname,
// checked in Linux's order: EPERM, EINVAL, EFAULT. A name holding a NUL
// ends there, as uname shows it.
func readUTSName(t *kernel.Task, a *kernel.SyscallArgs) (string, error) {
	if !creds(t).Capable(unix.CAP_SYS_ADMIN) {
		return "", unix.EPERM
	}
	n := int32(a[1])
	if n < 0 || n > kernel.MaxUTSLen {
		return "", unix.EINVAL
	}
	b := make([]byte, n)
	if err := copyIn(t, a[0], b); err != nil {
		return "", err
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), nil
}
