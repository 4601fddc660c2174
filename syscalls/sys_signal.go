package syscalls

import (
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var signalEntries = []entryAt{
	{unix.SYS_RT_SIGACTION, Entry{"rt_sigaction", sysRtSigaction, Supported, "", []Arg{ArgInt, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_RT_SIGPROCMASK, Entry{"rt_sigprocmask", sysRtSigprocmask, Supported, "", []Arg{ArgInt, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_SIGALTSTACK, Entry{"sigaltstack", sysSigaltstack, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_RT_SIGRETURN, Entry{"rt_sigreturn", sysRtSigreturn, Supported, "", nil}},
	{unix.SYS_RT_SIGPENDING, Entry{"rt_sigpending", sysRtSigpending, Supported, "", []Arg{ArgHex, ArgInt}}},
	{unix.SYS_RT_SIGSUSPEND, Entry{"rt_sigsuspend", sysRtSigsuspend, Supported, "", []Arg{ArgHex, ArgInt}}},
	{unix.SYS_PAUSE, Entry{"pause", sysPause, Supported, "", nil}},
	{unix.SYS_RT_SIGTIMEDWAIT, Entry{"rt_sigtimedwait", sysRtSigtimedwait, Supported, "", []Arg{ArgHex, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_KILL, Entry{"kill", sysKill, Supported, "", []Arg{ArgInt, ArgInt}}},
	{unix.SYS_TKILL, Entry{"tkill", sysTkill, Supported, "", []Arg{ArgInt, ArgInt}}},
	{unix.SYS_TGKILL, Entry{"tgkill", sysTgkill, Supported, "", []Arg{ArgInt, ArgInt, ArgInt}}},
	{unix.SYS_RT_SIGQUEUEINFO, Entry{"rt_sigqueueinfo", sysRtSigqueueinfo, Supported, "", []Arg{ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_RT_TGSIGQUEUEINFO, Entry{"rt_tgsigqueueinfo", sysRtTgsigqueueinfo, Supported, "", []Arg{ArgInt, ArgInt, ArgInt, ArgHex}}},
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
			t.SetSigMask(old | kernel.SigSet(set))
		case unix.SIG_UNBLOCK:
			t.SetSigMask(old &^ kernel.SigSet(set))
		case unix.SIG_SETMASK:
			t.SetSigMask(kernel.SigSet(set))
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
	onStack := t.OnAltStack()
	switch {
	case sp == 0 && size == 0:
		old.Flags = ssDisable
	case onStack:
		old.Flags |= ssOnStack
	}
	if a[0] != 0 && onStack {
		return 0, unix.EPERM
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

func sysRtSigreturn(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return 0, t.SigReturn()
}

func readSigSet(t *kernel.Task, addr, size uint64) (kernel.SigSet, error) {
	if size != sigsetSize {
		return 0, unix.EINVAL
	}
	var set uint64
	if err := copyInStruct(t, addr, &set); err != nil {
		return 0, err
	}
	return kernel.SigSet(set), nil
}

func sysRtSigpending(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[1] > sigsetSize {
		return 0, unix.EINVAL
	}
	set := uint64(t.PendingSignals() & t.SigMask())
	return 0, copyOut(t, a[0], bytesOf(&set)[:a[1]])
}

// sysRtSigsuspend waits with a temporary mask until a signal is delivered;
// it always returns EINTR, after the handler.
func sysRtSigsuspend(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	set, err := readSigSet(t, a[0], a[1])
	if err != nil {
		return 0, err
	}
	t.SetTemporarySigMask(set)
	<-t.Context().Done()
	return 0, unix.EINTR
}

func sysPause(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	<-t.Context().Done()
	return 0, unix.EINTR
}

func sysRtSigtimedwait(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	set, err := readSigSet(t, a[0], a[3])
	if err != nil {
		return 0, err
	}
	set &^= kernel.Unblockable
	done := make(chan struct{})
	if a[2] != 0 {
		var ts unix.Timespec
		if err := copyInStruct(t, a[2], &ts); err != nil {
			return 0, err
		}
		if ts.Nsec < 0 || ts.Nsec >= 1e9 || ts.Sec < 0 {
			return 0, unix.EINVAL
		}
		timer := time.AfterFunc(time.Duration(ts.Nano()), func() { close(done) })
		defer timer.Stop()
	}
	info, err := t.WaitForSignal(set, done)
	if err != nil {
		return 0, err
	}
	if a[1] != 0 {
		if err := copyOut(t, a[1], info[:]); err != nil {
			return 0, err
		}
	}
	return uint64(info.Signo()), nil
}

func validSignalOrZero(sig uint64) bool { return sig <= kernel.NumSignals }

func userSigInfo(t *kernel.Task, sig int, code int) kernel.SigInfo {
	info := kernel.NewSigInfo(sig, code)
	info.SetSender(t.ThreadGroup().PID(), t.ThreadGroup().Creds().UID)
	return info
}

// sysKill implements kill(2): a pid (or the id of any thread of the
// process), the caller's group (0), every process but init and the caller
// (-1), or group -pid.
func sysKill(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	pid, sig := int32(a[0]), a[1]
	if !validSignalOrZero(sig) {
		return 0, unix.EINVAL
	}
	k := t.Kernel()
	var targets []*kernel.ThreadGroup
	switch {
	case pid > 0:
		if tg := k.ProcessOf(pid); tg != nil && !tg.Zombie() {
			targets = append(targets, tg)
		} else if tg == nil {
			return 0, unix.ESRCH
		}
	case pid == 0:
		targets = k.ProcessGroupMembers(t.ThreadGroup().ProcessGroup())
	case pid == -1:
		for _, tg := range k.Processes() {
			if tg.PID() != 1 && tg != t.ThreadGroup() && !tg.Zombie() {
				targets = append(targets, tg)
			}
		}
	case pid == -pid: // the most negative pid has no group
		return 0, unix.ESRCH
	default:
		targets = k.ProcessGroupMembers(-pid)
	}
	if len(targets) == 0 && pid <= 0 {
		return 0, unix.ESRCH
	}
	// As Linux: a group succeeds if any member took the signal, and -1
	// passes over the processes the caller may not signal.
	var ok bool
	var last error
	for _, tg := range targets {
		err := t.ThreadGroup().MaySignal(tg, int(sig))
		if err == nil && sig != 0 {
			err = tg.SendSignal(userSigInfo(t, int(sig), kernel.SiUser))
		}
		switch {
		case pid == -1:
			if err != unix.EPERM {
				last = err
			}
		case err == nil:
			ok = true
		default:
			last = err
		}
	}
	if ok {
		return 0, nil
	}
	return 0, last
}

// threadSignal sends sig to thread tid, which must belong to process tgid
// unless tgid is 0 (tkill).
func threadSignal(t *kernel.Task, tgid, tid int32, sig uint64, info *kernel.SigInfo) (uint64, error) {
	if !validSignalOrZero(sig) || tid <= 0 || tgid < 0 {
		return 0, unix.EINVAL
	}
	target := t.Kernel().Thread(tid)
	if target == nil || tgid > 0 && target.ThreadGroup().PID() != tgid {
		return 0, unix.ESRCH
	}
	if err := t.ThreadGroup().MaySignal(target.ThreadGroup(), int(sig)); err != nil {
		return 0, err
	}
	if sig == 0 {
		return 0, nil
	}
	if info == nil {
		i := userSigInfo(t, int(sig), kernel.SiTkill)
		info = &i
	}
	return 0, target.SendSignal(*info)
}

func sysTkill(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return threadSignal(t, 0, int32(a[0]), a[1], nil)
}

func sysTgkill(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if int32(a[0]) <= 0 {
		return 0, unix.EINVAL
	}
	return threadSignal(t, int32(a[0]), int32(a[1]), a[2], nil)
}

// queuedInfo reads a siginfo for rt_sigqueueinfo: a process may not
// pretend to be the kernel or tkill when signalling another.
func queuedInfo(t *kernel.Task, pid int32, sig, addr uint64) (kernel.SigInfo, error) {
	var info kernel.SigInfo
	if err := copyIn(t, addr, info[:]); err != nil {
		return info, err
	}
	if (info.Code() >= 0 || info.Code() == kernel.SiTkill) && pid != t.ThreadGroup().PID() {
		return info, unix.EPERM
	}
	info.SetSigno(int(sig))
	return info, nil
}

func sysRtSigqueueinfo(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	pid, sig := int32(a[0]), a[1]
	if !validSignalOrZero(sig) {
		return 0, unix.EINVAL
	}
	info, err := queuedInfo(t, pid, sig, a[2])
	if err != nil {
		return 0, err
	}
	tg := t.Kernel().ProcessOf(pid)
	if tg == nil || tg.Zombie() {
		return 0, unix.ESRCH
	}
	if err := t.ThreadGroup().MaySignal(tg, int(sig)); err != nil {
		return 0, err
	}
	if sig == 0 {
		return 0, nil
	}
	return 0, tg.SendSignal(info)
}

func sysRtTgsigqueueinfo(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if !validSignalOrZero(a[2]) || int32(a[0]) <= 0 {
		return 0, unix.EINVAL
	}
	info, err := queuedInfo(t, int32(a[0]), a[2], a[3])
	if err != nil {
		return 0, err
	}
	return threadSignal(t, int32(a[0]), int32(a[1]), a[2], &info)
}
