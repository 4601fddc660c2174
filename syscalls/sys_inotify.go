package syscalls

import (
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs/inotify"
)

// inotifyNote says what inotify sees.
const inotifyNote = "events come from changes made through the sandbox's file systems; changes made on the host under a hostfs mount are not seen. A path that leads to a pipe or socket (/proc/self/fd/N) is ENXIO"

// notifyEntries are the calls of inotify(7).
var notifyEntries = []entryAt{
	{unix.SYS_INOTIFY_INIT, Entry{"inotify_init", sysInotifyInit, Supported, "", nil}},
	{unix.SYS_INOTIFY_INIT1, Entry{"inotify_init1", sysInotifyInit1, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_INOTIFY_ADD_WATCH, Entry{"inotify_add_watch", sysInotifyAddWatch, Partial, inotifyNote, []Arg{ArgInt, ArgPath, ArgHex}}},
	{unix.SYS_INOTIFY_RM_WATCH, Entry{"inotify_rm_watch", sysInotifyRmWatch, Supported, "", []Arg{ArgInt, ArgInt}}},
}

func sysInotifyInit(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return newInotify(t, 0)
}

func sysInotifyInit1(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return newInotify(t, int(int32(a[0])))
}

func newInotify(t *kernel.Task, flags int) (uint64, error) {
	f, err := inotify.New(t.Kernel().VFS(), t.Kernel().Sysctl().Inotify(), creds(t).UID, flags)
	if err != nil {
		return 0, err
	}
	fd, err := installFD(t, f, 0, flags&unix.IN_CLOEXEC != 0)
	if err != nil {
		return 0, err
	}
	return uint64(fd), nil
}

// inotifyBits are the mask bits inotify_add_watch accepts
// (ALL_INOTIFY_BITS); a mask with none of them is EINVAL.
const inotifyBits = unix.IN_ALL_EVENTS | unix.IN_UNMOUNT | unix.IN_Q_OVERFLOW | unix.IN_IGNORED |
	unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK | unix.IN_MASK_ADD |
	unix.IN_MASK_CREATE | unix.IN_ISDIR | unix.IN_ONESHOT

func sysInotifyAddWatch(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	mask := uint32(a[2])
	if mask&inotifyBits == 0 {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	in, ok := inotify.Of(f)
	if !ok || mask&unix.IN_MASK_ADD != 0 && mask&unix.IN_MASK_CREATE != 0 {
		return 0, unix.EINVAL
	}
	path, err := readPathArg(t, a[1], false)
	if err != nil {
		return 0, err
	}
	vd, err := t.Kernel().VFS().WatchPath(t.FSContext(), path, mask&unix.IN_DONT_FOLLOW == 0, mask&unix.IN_ONLYDIR != 0)
	if err != nil {
		return 0, err
	}
	wd, err := in.AddWatch(vd, mask)
	return uint64(wd), err
}

func sysInotifyRmWatch(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	in, ok := inotify.Of(f)
	if !ok {
		return 0, unix.EINVAL
	}
	return 0, in.RemoveWatch(int32(a[1]))
}
