package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs/eventfd"
	"golang.org/x/sys/unix"
)

func sysEventfd(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return newEventfd(t, uint32(a[0]), 0)
}

func sysEventfd2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return newEventfd(t, uint32(a[0]), int(int32(a[1])))
}

func newEventfd(t *kernel.Task, initval uint32, flags int) (uint64, error) {
	f, err := eventfd.New(initval, flags)
	if err != nil {
		return 0, err
	}
	fd, err := installFD(t, f, 0, flags&unix.EFD_CLOEXEC != 0)
	if err != nil {
		return 0, err
	}
	return uint64(fd), nil
}
