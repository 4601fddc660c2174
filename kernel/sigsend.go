package kernel

import (
	"golang.org/x/sys/unix"
)

// SendSignal sends a process-directed signal (kill, SIGCHLD, timers): one
// thread that does not block it will take it.
func (tg *ThreadGroup) SendSignal(info SigInfo) error { return tg.send(nil, queuedSignal{info: info}) }

// SendSignal sends a signal to thread t alone (tkill, tgkill, faults).
func (t *Task) SendSignal(info SigInfo) error { return t.tg.send(t, queuedSignal{info: info}) }

func (tg *ThreadGroup) send(target *Task, qs queuedSignal) error {
	sig := qs.info.Signo()
	if sig < 1 || sig > NumSignals {
		return unix.EINVAL
	}
	if sig == int(unix.SIGKILL) {
		tg.Exit(ExitStatus{Signal: unix.SIGKILL})
		return nil
	}
	tg.mu.Lock()
	if tg.exiting {
		tg.mu.Unlock()
		return nil
	}
	continued := false
	switch {
	case sig == int(unix.SIGCONT):
		tg.discardLocked(stopSignals)
		continued = tg.continueLocked()
	case stopSignals.Has(sig):
		tg.discardLocked(SigBit(int(unix.SIGCONT)))
	}
	blocked := tg.blockedLocked(target, sig)
	if tg.ignoredLocked(sig) && !blocked {
		tg.mu.Unlock()
		if continued {
			tg.k.notifyParent(tg, cldCont, int(unix.SIGCONT))
		}
		return nil
	}
	q := &tg.pending
	if target != nil {
		q = &target.pending
	}
	if !q.add(qs) {
		tg.mu.Unlock()
		return unix.EAGAIN
	}
	act := defaultActionOf(sig)
	if !blocked && tg.sigactions[sig].Handler == SigDfl && (act == actTerminate || act == actCore) {
		// A fatal signal ends the whole process at once, even while its
		// threads block in system calls.
		tg.mu.Unlock()
		tg.Exit(ExitStatus{Signal: unix.Signal(sig)})
		return nil
	}
	if w := tg.wakeTargetLocked(target, sig); w != nil {
		w.interruptLocked()
	}
	tg.mu.Unlock()
	tg.signalWaiters.Notify(unix.POLLIN)
	if continued {
		tg.k.notifyParent(tg, cldCont, int(unix.SIGCONT))
	}
	return nil
}

// blockedLocked reports whether sig is blocked where it is headed: by
// target, or by every thread of a process-directed signal. A thread that
// waits for sig (rt_sigtimedwait, signalfd) still blocks it: the signal
// is neither ignored nor fatal, as Linux's real_blocked mask decides, and
// wakeTargetLocked wakes the waiter.
func (tg *ThreadGroup) blockedLocked(target *Task, sig int) bool {
	if target != nil {
		return target.sigmask.Has(sig)
	}
	for _, t := range tg.tasks {
		if !t.sigmask.Has(sig) {
			return false
		}
	}
	return len(tg.tasks) > 0
}

// wakeTargetLocked picks the thread that will take sig: target, or for a
// process-directed signal the main thread if it can, else any that can.
func (tg *ThreadGroup) wakeTargetLocked(target *Task, sig int) *Task {
	wants := func(t *Task) bool { return !t.sigmask.Has(sig) || t.waitingFor.Has(sig) }
	if target != nil {
		if wants(target) {
			return target
		}
		return nil
	}
	if t := tg.tasks[tg.pid]; t != nil && wants(t) {
		return t
	}
	for _, t := range tg.tasks {
		if wants(t) {
			return t
		}
	}
	return nil
}

func (tg *ThreadGroup) discardLocked(s SigSet) {
	tg.pending.discard(s)
	for _, t := range tg.tasks {
		t.pending.discard(s)
	}
}

// interruptLocked makes t notice pending work: its blocking call ends
// (t.Context() is done) and its vCPU leaves guest code.
func (t *Task) interruptLocked() {
	if !t.intrClosed {
		close(t.intr)
		t.intrClosed = true
	}
	if !t.inKernel {
		t.kick()
	}
}

// deliverableLocked is the set of signals t may take now.
func (t *Task) deliverableLocked() SigSet {
	return (t.pending.set | t.tg.pending.set) &^ (t.sigmask &^ Unblockable)
}

// hasWork reports whether t must look at signals or a group stop before it
// returns to user code; when not, it re-arms t's interruption.
func (t *Task) hasWork() bool {
	tg := t.tg
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if t.deliverableLocked() != 0 || tg.stopped || tg.exiting || t.mustExit || t.hasSavedMask {
		return true
	}
	t.rearmLocked()
	return false
}

// rearmLocked is called when nothing is left for t to do before it enters
// the guest: its next blocking call may wait again, and a signal from now
// on must kick its vCPU.
func (t *Task) rearmLocked() {
	if t.intrClosed && !t.tg.exiting && !t.tg.stopped && !t.mustExit {
		t.intr = make(chan struct{})
		t.intrClosed = false
	}
	t.inKernel = false
}

// SigMask is the calling thread's blocked-signal mask.
func (t *Task) SigMask() SigSet {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	return t.sigmask
}

// SetSigMask replaces the blocked-signal mask (SIGKILL and SIGSTOP cannot
// be blocked). A signal it unblocks is delivered before the system call
// returns.
func (t *Task) SetSigMask(m SigSet) {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	t.setSigMaskLocked(m)
}

func (t *Task) setSigMaskLocked(m SigSet) {
	t.sigmask = m &^ Unblockable
	if t.deliverableLocked() != 0 {
		t.interruptLocked()
	}
}

// SetTemporarySigMask installs m for the duration of a wait (ppoll,
// pselect6, epoll_pwait, rt_sigsuspend); the old mask comes back when the
// system call returns, after a signal handler if one runs (the handler's
// frame records the old mask).
func (t *Task) SetTemporarySigMask(m SigSet) {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	if !t.hasSavedMask {
		t.savedMask, t.hasSavedMask = t.sigmask, true
	}
	t.setSigMaskLocked(m)
}

// PendingSignals is the set of signals pending for t or its process.
func (t *Task) PendingSignals() SigSet {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	return t.pending.set | t.tg.pending.set
}

// TakeSignal removes and returns a pending signal in set (rt_sigtimedwait,
// signalfd), thread-directed ones first.
func (t *Task) TakeSignal(set SigSet) (SigInfo, bool) {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	return t.takeSignalLocked(set)
}

// takeSignalLocked dequeues the next signal in set. The signal of a POSIX
// timer deleted or re-armed since it was queued is dropped, as Linux
// does; a live timer's signal sets what timer_getoverrun reports.
func (t *Task) takeSignalLocked(set SigSet) (SigInfo, bool) {
	for {
		q := &t.pending
		sig := q.first(set)
		if sig == 0 {
			q = &t.tg.pending
			if sig = q.first(set); sig == 0 {
				return SigInfo{}, false
			}
		}
		qs := q.take(sig)
		if t.tg.signalTakenLocked(&qs) {
			return qs.info, true
		}
	}
}

// WaitForSignal blocks until a signal in set is pending (it need not be
// unblocked), t.Context() is done, or done is closed.
func (t *Task) WaitForSignal(set SigSet, done <-chan struct{}) (SigInfo, error) {
	tg := t.tg
	for {
		tg.mu.Lock()
		if info, ok := t.takeSignalLocked(set); ok {
			t.waitingFor = 0
			tg.mu.Unlock()
			return info, nil
		}
		t.waitingFor = set
		intr := t.intr
		tg.mu.Unlock()
		select {
		case <-intr:
			tg.mu.Lock()
			t.waitingFor = 0
			info, ok := t.takeSignalLocked(set)
			tg.mu.Unlock()
			if ok {
				return info, nil
			}
			return SigInfo{}, unix.EINTR
		case <-done:
			tg.mu.Lock()
			t.waitingFor = 0
			tg.mu.Unlock()
			return SigInfo{}, unix.EAGAIN
		}
	}
}

// continueLocked ends a group stop; it reports whether there was one.
func (tg *ThreadGroup) continueLocked() bool {
	if !tg.stopped {
		return false
	}
	tg.stopped = false
	close(tg.continued)
	return true
}
