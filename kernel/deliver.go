package kernel

import (
	"github.com/kvmbox/kvmbox/kvm"
	"golang.org/x/sys/unix"
)

// restartPolicy says what an interrupted system call does after a signal,
// as Linux's -ERESTART* codes do.
type restartPolicy int

const (
	// restartSys: restarted unless a handler without SA_RESTART runs.
	restartSys restartPolicy = iota
	// restartNoHandler: restarted only if no handler runs (poll, sleeps,
	// sigsuspend).
	restartNoHandler
	// restartNever: EINTR whatever happens.
	restartNever
)

func restartPolicyOf(nr uint64) restartPolicy {
	switch nr {
	case unix.SYS_POLL, unix.SYS_PPOLL, unix.SYS_SELECT, unix.SYS_PSELECT6,
		unix.SYS_NANOSLEEP, unix.SYS_CLOCK_NANOSLEEP, unix.SYS_PAUSE, unix.SYS_RT_SIGSUSPEND:
		return restartNoHandler
	case unix.SYS_EPOLL_WAIT, unix.SYS_EPOLL_PWAIT, unix.SYS_EPOLL_PWAIT2, unix.SYS_RT_SIGTIMEDWAIT:
		return restartNever
	}
	return restartSys
}

// syscallReturn describes the system call a return to user code completes.
type syscallReturn struct {
	nr  uint64
	ret uint64
}

// negEINTR is -EINTR as RAX holds it.
const negEINTR = ^uint64(unix.EINTR) + 1

// returnToUser runs before t returns to user code with context r: it waits
// out a group stop, takes pending signals (their default actions, or
// frames for their handlers) and restarts an interrupted system call (sc,
// when there is one). It loads r into the vCPU when it or dirty changed it.
func (t *Task) returnToUser(r *kvm.Regs, sc *syscallReturn, dirty bool) {
	tg := t.tg
	for !t.mustStop() {
		if tg.waitWhileStopped() {
			continue
		}
		tg.mu.Lock()
		info, act, next := t.nextSignalLocked()
		ok := next == signalToHandle
		var oldMask SigSet
		if ok {
			oldMask = t.sigmask
			if t.hasSavedMask {
				oldMask = t.savedMask
				t.hasSavedMask = false
			}
			if act.Flags&SaNoDefer == 0 {
				t.sigmask |= SigBit(info.Signo())
			}
			t.sigmask |= SigSet(act.Mask) &^ Unblockable
			if act.Flags&SaResetHand != 0 {
				tg.sigactions[info.Signo()] = SigAction{}
			}
		}
		tg.mu.Unlock()
		if next == noSignal {
			break
		}
		if next == lookAgain {
			continue
		}
		if sc != nil {
			if sc.ret == negEINTR {
				p := restartPolicyOf(sc.nr)
				if p == restartSys && act.Flags&SaRestart != 0 {
					r.RIP -= 2
					r.RAX = sc.nr
				}
			}
			sc = nil
		}
		if err := t.pushSignalFrame(r, act, &info, oldMask); err != nil {
			tg.Exit(ExitStatus{Signal: unix.SIGSEGV})
			return
		}
		dirty = true
	}
	if sc != nil && sc.ret == negEINTR && restartPolicyOf(sc.nr) != restartNever {
		// Interrupted by a stop, an ignored signal or one that killed
		// nothing: the call starts over, as on Linux.
		r.RIP -= 2
		r.RAX = sc.nr
		dirty = true
	}
	t.restoreSavedMask()
	if dirty && !t.mustStop() {
		if err := t.vcpu.SetUserRegs(tg.mm.Root(), *r); err != nil {
			tg.Exit(ExitStatus{Signal: unix.SIGKILL, Err: err})
		}
	}
}

// nextSignal says what nextSignalLocked found.
type nextSignal int

const (
	noSignal       nextSignal = iota // nothing left to do before user code
	signalToHandle                   // a signal with a handler to run
	lookAgain                        // a default action stopped or ended the process
)

// nextSignalLocked takes the next signal t must handle in user code,
// carrying out the default actions of the others on the way: ignore,
// continue, stop (the caller then waits out the stop) or end the process.
func (t *Task) nextSignalLocked() (SigInfo, SigAction, nextSignal) {
	tg := t.tg
	for {
		info, ok := t.takeSignalLocked(t.deliverableLocked())
		if !ok {
			t.rearmLocked()
			return SigInfo{}, SigAction{}, noSignal
		}
		sig := info.Signo()
		act := tg.sigactions[sig]
		switch act.Handler {
		case SigIgn:
			continue
		case SigDfl:
		default:
			return info, act, signalToHandle
		}
		switch defaultActionOf(sig) {
		case actIgnore, actContinue:
			continue
		case actStop:
			if tg.stopLocked(sig) {
				tg.mu.Unlock()
				tg.k.notifyParent(tg, cldStopped, sig)
				tg.mu.Lock()
			}
			return SigInfo{}, SigAction{}, lookAgain
		default:
			tg.mu.Unlock()
			tg.Exit(ExitStatus{Signal: unix.Signal(sig)})
			tg.mu.Lock()
			return SigInfo{}, SigAction{}, lookAgain
		}
	}
}

// restoreSavedMask puts back the mask a temporary one replaced, once the
// system call that installed it returns without running a handler.
func (t *Task) restoreSavedMask() {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	if t.hasSavedMask {
		t.sigmask, t.hasSavedMask = t.savedMask, false
	}
}

// stopLocked starts a group stop for sig; it reports whether the process
// was running (so the parent must hear of it).
func (tg *ThreadGroup) stopLocked(sig int) bool {
	if tg.stopped || tg.exiting {
		return false
	}
	tg.stopped = true
	tg.stopSignal = sig
	tg.continued = make(chan struct{})
	for _, t := range tg.tasks {
		t.interruptLocked()
	}
	return true
}

// waitWhileStopped blocks while the process is stopped; it reports whether
// it waited.
func (tg *ThreadGroup) waitWhileStopped() bool {
	tg.mu.Lock()
	if !tg.stopped || tg.exiting {
		tg.mu.Unlock()
		return false
	}
	cont := tg.continued
	tg.mu.Unlock()
	select {
	case <-cont:
	case <-tg.ctx.Done():
	}
	return true
}

// mustStop reports whether t's run loop must end: its process is exiting
// or the thread was told to exit.
func (t *Task) mustStop() bool {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	return t.tg.exiting || t.mustExit
}

// kicked handles an exit caused by Kick: deliver what is pending where the
// vCPU stopped, or have the stub stop at its next return to user code.
func (t *Task) kicked() {
	v := t.vcpu
	if !t.hasWork() {
		return
	}
	switch {
	case v.InUserCode():
		r := *v.Regs()
		t.returnToUser(&r, nil, false)
	case v.AtReturn():
		r := v.SyscallUserRegs()
		t.returnToUser(&r, nil, true)
	default:
		v.SetReturnExit(true)
	}
}

// fault turns a CPU exception raised by user code into its signal. A
// signal the thread blocks or ignores cannot be delivered, so its default
// action applies, as Linux's force_sig does.
func (t *Task) fault(e kvm.Exit) {
	info := faultInfo(e)
	sig := info.Signo()
	tg := t.tg
	tg.mu.Lock()
	act := tg.sigactions[sig]
	if act.Handler == SigIgn || t.sigmask.Has(sig) {
		act = SigAction{}
		tg.sigactions[sig] = act
		t.sigmask &^= SigBit(sig)
	}
	if act.Handler == SigDfl {
		tg.mu.Unlock()
		regs := t.vcpu.ExceptionUserRegs(e)
		tg.Exit(ExitStatus{Signal: unix.Signal(sig), Err: t.crashReport(faultDescription(e), unix.Signal(sig), &regs)})
		return
	}
	t.pending.add(queuedSignal{info: info})
	tg.mu.Unlock()
	r := t.vcpu.ExceptionUserRegs(e)
	t.returnToUser(&r, nil, true)
}
