package syscalls

import (
	"encoding/binary"
	"io"
	"runtime"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var processEntries = []entryAt{
	{unix.SYS_EXIT, Entry{"exit", sysExit, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_EXIT_GROUP, Entry{"exit_group", sysExitGroup, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_GETPID, Entry{"getpid", sysGetpid, Supported, "", nil}},
	{unix.SYS_GETPPID, Entry{"getppid", sysGetppid, Supported, "", nil}},
	{unix.SYS_GETTID, Entry{"gettid", sysGettid, Supported, "", nil}},
	{unix.SYS_GETUID, Entry{"getuid", sysGetID, Partial, "always 0: root inside the sandbox only", nil}},
	{unix.SYS_GETEUID, Entry{"geteuid", sysGetID, Partial, "always 0", nil}},
	{unix.SYS_GETGID, Entry{"getgid", sysGetID, Partial, "always 0", nil}},
	{unix.SYS_GETEGID, Entry{"getegid", sysGetID, Partial, "always 0", nil}},
	{unix.SYS_ARCH_PRCTL, Entry{"arch_prctl", sysArchPrctl, Partial, "ARCH_SET_FS, ARCH_GET_FS", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_SET_TID_ADDRESS, Entry{"set_tid_address", sysSetTidAddress, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_SET_ROBUST_LIST, Entry{"set_robust_list", sysSetRobustList, Supported, "", []Arg{ArgHex, ArgInt}}},
	{unix.SYS_RSEQ, Entry{"rseq", nil, Unsupported, "ENOSYS: libc falls back", nil}},
	{unix.SYS_PRLIMIT64, Entry{"prlimit64", sysPrlimit, Supported, "", []Arg{ArgInt, ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_GETRLIMIT, Entry{"getrlimit", sysGetrlimit, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_SETRLIMIT, Entry{"setrlimit", sysSetrlimit, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_GETRANDOM, Entry{"getrandom", sysGetrandom, Supported, "", []Arg{ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_UNAME, Entry{"uname", sysUname, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_PRCTL, Entry{"prctl", sysPrctl, Partial, "PR_SET_NAME, PR_GET_NAME; others EINVAL", []Arg{ArgInt, ArgHex, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_SCHED_YIELD, Entry{"sched_yield", sysSchedYield, Supported, "", nil}},
	{unix.SYS_SCHED_GETAFFINITY, Entry{"sched_getaffinity", sysSchedGetaffinity, Supported, "", []Arg{ArgInt, ArgInt, ArgHex}}},
}

// arch_prctl codes (asm/prctl.h).
const (
	archSetFS = 0x1002
	archGetFS = 0x1003
)

func sysExit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	t.ExitThread(int(a[0] & 0xff))
	return 0, nil
}

func sysExitGroup(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	t.ThreadGroup().Exit(kernel.ExitStatus{Code: int(a[0] & 0xff)})
	return 0, nil
}

func sysGetpid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().PID()), nil
}

func sysGetppid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().PPID()), nil
}

func sysGettid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) { return uint64(t.TID()), nil }

func sysGetID(*kernel.Task, *kernel.SyscallArgs) (uint64, error) { return 0, nil }

func sysArchPrctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	switch a[0] {
	case archSetFS:
		if a[1] >= kernel.UserTop {
			return 0, unix.EPERM
		}
		return 0, t.SetFSBase(a[1])
	case archGetFS:
		return 0, copyOutUint64(t, a[1], t.FSBase())
	}
	return 0, unix.EINVAL
}

func sysSetTidAddress(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	t.SetClearChildTID(a[0])
	return uint64(t.TID()), nil
}

func sysSetRobustList(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const robustListHeadSize = 24
	if a[1] != robustListHeadSize {
		return 0, unix.EINVAL
	}
	t.SetRobustList(a[0])
	return 0, nil
}

func prlimit(t *kernel.Task, pid int32, resource int, newAddr, oldAddr uint64) error {
	tg := t.ThreadGroup()
	if pid != 0 && pid != tg.PID() {
		return unix.ESRCH
	}
	old, ok := tg.Limit(resource)
	if !ok {
		return unix.EINVAL
	}
	if newAddr != 0 {
		var l unix.Rlimit
		if err := copyInStruct(t, newAddr, &l); err != nil {
			return err
		}
		if err := tg.SetLimit(resource, l); err != nil {
			return err
		}
	}
	if oldAddr != 0 {
		return copyOutStruct(t, oldAddr, &old)
	}
	return nil
}

func sysPrlimit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, prlimit(t, int32(a[0]), int(int32(a[1])), a[2], a[3])
}

func sysGetrlimit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, prlimit(t, 0, int(int32(a[0])), 0, a[1])
}

func sysSetrlimit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, prlimit(t, 0, int(int32(a[0])), a[1], 0)
}

func sysGetrandom(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const known = unix.GRND_NONBLOCK | unix.GRND_RANDOM | unix.GRND_INSECURE
	flags := a[2]
	if flags&^known != 0 || flags&(unix.GRND_RANDOM|unix.GRND_INSECURE) == unix.GRND_RANDOM|unix.GRND_INSECURE {
		return 0, unix.EINVAL
	}
	const maxGetrandom = 1<<25 - 1
	n := min(a[1], maxGetrandom)
	random := t.Kernel().Config().Random
	return transfer(t, a[0], n, true, func(b []byte) (int, error) {
		return io.ReadFull(random, b)
	})
}

func utsField(dst []byte, s string) {
	copy(dst[:len(dst)-1], s)
}

func sysUname(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var u unix.Utsname
	utsField(u.Sysname[:], "Linux")
	utsField(u.Nodename[:], t.Kernel().Config().Hostname)
	utsField(u.Release[:], kernel.Release)
	utsField(u.Version[:], kernel.Version)
	utsField(u.Machine[:], "x86_64")
	utsField(u.Domainname[:], "(none)")
	return 0, copyOutStruct(t, a[0], &u)
}

func sysSchedYield(*kernel.Task, *kernel.SyscallArgs) (uint64, error) {
	runtime.Gosched()
	return 0, nil
}

func sysSchedGetaffinity(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	pid := int32(a[0])
	if pid != 0 && pid != t.TID() {
		return 0, unix.ESRCH
	}
	cpus := runtime.NumCPU()
	words := (cpus + 63) / 64
	size := uint64(words * 8)
	if a[1] < uint64(cpus+7)/8 || a[1]%8 != 0 {
		return 0, unix.EINVAL
	}
	mask := make([]byte, size)
	for i := 0; i < cpus; i++ {
		w := binary.LittleEndian.Uint64(mask[i/64*8:])
		binary.LittleEndian.PutUint64(mask[i/64*8:], w|1<<(i%64))
	}
	return size, copyOut(t, a[2], mask)
}

func sysPrctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const taskCommLen = 16
	switch a[0] {
	case unix.PR_SET_NAME:
		var name [taskCommLen]byte
		n, _ := t.ThreadGroup().MM().CopyIn(name[:taskCommLen-1], a[1])
		if n == 0 {
			return 0, unix.EFAULT
		}
		t.SetName(name[:n])
		return 0, nil
	case unix.PR_GET_NAME:
		var name [taskCommLen]byte
		copy(name[:taskCommLen-1], t.Name())
		return 0, copyOut(t, a[1], name[:])
	}
	return 0, unix.EINVAL
}
