package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

// signalfdNote says where signalfd differs: a read takes the reader's
// signals, but poll readiness has no reader to go by.
const signalfdNote = "readiness for poll reports the creating process's pending signals, not the poller's"

var signalfdEntries = []entryAt{
	{unix.SYS_SIGNALFD, Entry{"signalfd", sysSignalfd, Partial, signalfdNote, []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_SIGNALFD4, Entry{"signalfd4", sysSignalfd4, Partial, signalfdNote, []Arg{ArgInt, ArgHex, ArgInt, ArgHex}}},
}

func sysSignalfd(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return signalfd(t, int32(a[0]), a[1], a[2], 0)
}

func sysSignalfd4(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return signalfd(t, int32(a[0]), a[1], a[2], int(int32(a[3])))
}

// signalfd makes a signalfd (fd -1) or changes the mask of signalfd fd.
func signalfd(t *kernel.Task, fd int32, maskAddr, size uint64, flags int) (uint64, error) {
	mask, err := readSigSet(t, maskAddr, size)
	if err != nil {
		return 0, err
	}
	if flags&^(unix.SFD_CLOEXEC|unix.SFD_NONBLOCK) != 0 {
		return 0, unix.EINVAL
	}
	if fd != -1 {
		f, err := getFile(t, uint64(fd))
		if err != nil {
			return 0, err
		}
		defer f.DecRef()
		s, ok := f.Impl().(*kernel.SignalFD)
		if !ok {
			return 0, unix.EINVAL
		}
		s.SetMask(mask)
		return uint64(fd), nil
	}
	cloexec := flags&unix.SFD_CLOEXEC != 0
	nfd, err := reserveFD(t, cloexec)
	if err != nil {
		return 0, err
	}
	return fillFD(t, nfd, kernel.NewSignalFD(t, mask, flags), cloexec), nil
}
