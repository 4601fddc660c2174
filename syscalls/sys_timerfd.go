package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs/timerfd"
	"golang.org/x/sys/unix"
)

func sysTimerfdCreate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := int(int32(a[1]))
	f, err := timerfd.New(int32(a[0]), flags)
	if err != nil {
		return 0, err
	}
	fd, err := installFD(t, f, 0, flags&unix.TFD_CLOEXEC != 0)
	if err != nil {
		return 0, err
	}
	return uint64(fd), nil
}

func sysTimerfdSettime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var its unix.ItimerSpec
	if err := copyInStruct(t, a[2], &its); err != nil {
		return 0, err
	}
	flags := int(int32(a[1]))
	value, verr := timespecDuration(its.Value)
	interval, ierr := timespecDuration(its.Interval)
	if flags&^timerfd.SetFlags != 0 || verr != nil || ierr != nil {
		return 0, unix.EINVAL
	}
	f, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	old, err := timerfd.Set(f, timerfd.Spec{Value: value, Interval: interval}, flags&unix.TFD_TIMER_ABSTIME != 0)
	if err != nil {
		return 0, err
	}
	if a[3] != 0 {
		return 0, copyOutStruct(t, a[3], itimerspec(old))
	}
	return 0, nil
}

func sysTimerfdGettime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	cur, err := timerfd.Get(f)
	if err != nil {
		return 0, err
	}
	return 0, copyOutStruct(t, a[1], itimerspec(cur))
}

func itimerspec(s timerfd.Spec) *unix.ItimerSpec {
	return &unix.ItimerSpec{
		Value:    unix.NsecToTimespec(s.Value.Nanoseconds()),
		Interval: unix.NsecToTimespec(s.Interval.Nanoseconds()),
	}
}
