package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var signalEntries = []entryAt{
	{unix.SYS_RT_SIGACTION, Entry{"rt_sigaction", sysRtSigaction, Partial, "dispositions recorded; handlers are not yet delivered", []Arg{ArgInt, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_RT_SIGPROCMASK, Entry{"rt_sigprocmask", sysRtSigprocmask, Supported, "", []Arg{ArgInt, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_SIGALTSTACK, Entry{"sigaltstack", sysSigaltstack, Supported, "", []Arg{ArgHex, ArgHex}}},
}

const sigsetSize = 8

func validSignal(sig uint64) bool { return sig >= 1 && sig <= 64 }

func sysRtSigaction(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	sig := a[0]
	if a[3] != sigsetSize || !validSignal(sig) {
		return 0, unix.EINVAL
	}
	tg := t.ThreadGroup()
	old := tg.SigAction(int(sig))
	if a[1] != 0 {
		if sig == uint64(unix.SIGKILL) || sig == uint64(unix.SIGSTOP) {
			return 0, unix.EINVAL
		}
		var act kernel.SigAction
		if err := copyInStruct(t, a[1], &act); err != nil {
			return 0, err
		}
		act.Mask &^= 1<<(unix.SIGKILL-1) | 1<<(unix.SIGSTOP-1)
		tg.SetSigAction(int(sig), act)
	}
	if a[2] != 0 {
		return 0, copyOutStruct(t, a[2], &old)
	}
	return 0, nil
}

func sysRtSigprocmask(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[3] != sigsetSize {
		return 0, unix.EINVAL
	}
	old := t.SigMask()
	if a[1] != 0 {
		var set uint64
		if err := copyInStruct(t, a[1], &set); err != nil {
			return 0, err
		}
		switch a[0] {
		case unix.SIG_BLOCK:
			t.SetSigMask(old | set)
		case unix.SIG_UNBLOCK:
			t.SetSigMask(old &^ set)
		case unix.SIG_SETMASK:
			t.SetSigMask(set)
		default:
			return 0, unix.EINVAL
		}
	}
	if a[2] != 0 {
		return 0, copyOutStruct(t, a[2], &old)
	}
	return 0, nil
}

// stackT is the kernel's stack_t.
type stackT struct {
	SP    uint64
	Flags uint32
	_     int32
	Size  uint64
}

func sysSigaltstack(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const (
		ssOnStack     = 1
		ssDisable     = 2
		ssAutoDisarm  = 1 << 31
		minSigStkSize = 2048
	)
	sp, size, flags := t.AltStack()
	old := stackT{SP: sp, Flags: flags, Size: size}
	if sp == 0 && size == 0 {
		old.Flags = ssDisable
	}
	if a[0] != 0 {
		var ss stackT
		if err := copyInStruct(t, a[0], &ss); err != nil {
			return 0, err
		}
		mode := ss.Flags &^ ssAutoDisarm
		switch {
		case mode == ssDisable:
			t.SetAltStack(0, 0, 0)
		case mode != 0 && mode != ssOnStack:
			return 0, unix.EINVAL
		case ss.Size < minSigStkSize:
			return 0, unix.ENOMEM
		default:
			t.SetAltStack(ss.SP, ss.Size, ss.Flags&ssAutoDisarm)
		}
	}
	if a[1] != 0 {
		return 0, copyOutStruct(t, a[1], &old)
	}
	return 0, nil
}
