package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var fdEntries = []entryAt{
	{unix.SYS_DUP, Entry{"dup", sysDup, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_DUP2, Entry{"dup2", sysDup2, Supported, "", []Arg{ArgInt, ArgInt}}},
	{unix.SYS_DUP3, Entry{"dup3", sysDup3, Supported, "", []Arg{ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_FCNTL, Entry{"fcntl", sysFcntl, Partial, "F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL; locks come with the file system", []Arg{ArgInt, ArgInt, ArgHex}}},
}

func sysDup(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return dupFrom(t, a[0], 0, false)
}

// dupFrom installs a new descriptor for fd at the lowest free number >= min.
func dupFrom(t *kernel.Task, fd, min uint64, cloexec bool) (uint64, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	lim, _ := t.ThreadGroup().Limit(unix.RLIMIT_NOFILE)
	if min >= lim.Cur {
		f.DecRef()
		return 0, unix.EINVAL
	}
	nfd, err := t.ThreadGroup().FDs().Install(f, int32(min), cloexec)
	if err != nil {
		f.DecRef()
		return 0, err
	}
	return uint64(nfd), nil
}

func sysDup2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[0] == a[1] {
		f, err := getFile(t, a[0])
		if err != nil {
			return 0, err
		}
		f.DecRef()
		return a[1], nil
	}
	return dupTo(t, a[0], a[1], false)
}

func sysDup3(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[2]&^unix.O_CLOEXEC != 0 || a[0] == a[1] {
		return 0, unix.EINVAL
	}
	return dupTo(t, a[0], a[1], a[2]&unix.O_CLOEXEC != 0)
}

func dupTo(t *kernel.Task, oldfd, newfd uint64, cloexec bool) (uint64, error) {
	f, err := getFile(t, oldfd)
	if err != nil {
		return 0, err
	}
	lim, _ := t.ThreadGroup().Limit(unix.RLIMIT_NOFILE)
	if newfd >= lim.Cur {
		f.DecRef()
		return 0, unix.EBADF
	}
	if err := t.ThreadGroup().FDs().InstallAt(int32(newfd), f, cloexec); err != nil {
		f.DecRef()
		return 0, err
	}
	return newfd, nil
}

func sysFcntl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	fds := t.ThreadGroup().FDs()
	fd := int32(a[0])
	switch int(int32(a[1])) {
	case unix.F_DUPFD:
		return dupFrom(t, a[0], uint64(int32(a[2])), false)
	case unix.F_DUPFD_CLOEXEC:
		return dupFrom(t, a[0], uint64(int32(a[2])), true)
	case unix.F_GETFD:
		on, err := fds.CloseOnExec(fd)
		if err != nil || !on {
			return 0, err
		}
		return unix.FD_CLOEXEC, nil
	case unix.F_SETFD:
		return 0, fds.SetCloseOnExec(fd, a[2]&unix.FD_CLOEXEC != 0)
	case unix.F_GETFL:
		f, err := getFile(t, a[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef()
		return uint64(f.StatusFlags()), nil
	case unix.F_SETFL:
		f, err := getFile(t, a[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef()
		return 0, f.SetStatusFlags(int(int32(a[2])))
	}
	if _, err := fds.CloseOnExec(fd); err != nil {
		return 0, err
	}
	return 0, unix.EINVAL
}
