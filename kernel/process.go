package kernel

import (
	"golang.org/x/sys/unix"
)

// The process tree: who waits for whom, who inherits orphans, and what
// wait(2) reports.

// reserveTask counts a new thread against MaxTasks.
func (k *Kernel) reserveTask() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.taskCount >= k.cfg.MaxTasks {
		return unix.EAGAIN
	}
	k.taskCount++
	return nil
}

func (k *Kernel) unreserveTask() {
	k.mu.Lock()
	k.taskCount--
	k.mu.Unlock()
}

// Process returns the live or zombie process pid.
func (k *Kernel) Process(pid int32) *ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.procs[pid]
}

// ProcessOf returns the live or zombie process pid, or the process of
// thread pid, as Linux's pid lookups find a process by any of its ids.
func (k *Kernel) ProcessOf(pid int32) *ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	if tg := k.procs[pid]; tg != nil {
		return tg
	}
	if t := k.tasks[pid]; t != nil {
		return t.tg
	}
	return nil
}

// Thread returns the thread tid.
func (k *Kernel) Thread(tid int32) *Task {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tasks[tid]
}

// Processes returns every live or zombie process.
func (k *Kernel) Processes() []*ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*ThreadGroup, 0, len(k.procs))
	for _, tg := range k.procs {
		out = append(out, tg)
	}
	return out
}

// broadcastLocked wakes the waiters in wait(2) of tg.
func (tg *ThreadGroup) broadcastLocked() {
	close(tg.childEvents)
	tg.childEvents = make(chan struct{})
}

// sigchldHandling is how a parent's SIGCHLD disposition treats children.
func (tg *ThreadGroup) sigchldHandling() (noStop, autoReap bool) {
	a := tg.SigAction(int(unix.SIGCHLD))
	return a.Flags&SaNoCldStop != 0, a.Handler == SigIgn || a.Flags&SaNoCldWait != 0
}

// notifyParent tells tg's parent that tg stopped or continued.
func (k *Kernel) notifyParent(tg *ThreadGroup, code, sig int) {
	k.treeMu.Lock()
	p := tg.parent
	if code == cldStopped {
		tg.stopReport, tg.contReport = sig, false
	} else {
		tg.stopReport, tg.contReport = 0, true
	}
	if p != nil {
		p.broadcastLocked()
	}
	k.treeMu.Unlock()
	if p == nil {
		return
	}
	if noStop, _ := p.sigchldHandling(); noStop {
		return
	}
	info := NewSigInfo(int(unix.SIGCHLD), code)
	info.setChild(tg.pid, int32(sig))
	p.SendSignal(info)
}

// processExited runs once the last thread of tg is gone: its children go
// to a reaper, and tg becomes a zombie for its parent to reap (or goes
// away at once when nobody will).
func (k *Kernel) processExited(tg *ThreadGroup) {
	status := tg.Status()
	k.leaveTerminalAtExit(tg)
	k.treeMu.Lock()
	reaper := k.reaperLocked(tg)
	var orphans []*ThreadGroup
	for c := range tg.children {
		delete(tg.children, c)
		orphans = append(orphans, c)
		c.parent = reaper
		if reaper != nil {
			reaper.children[c] = struct{}{}
		}
	}
	p := tg.parent
	tg.zombie = true
	reap := p == nil
	if p != nil {
		if _, autoReap := p.sigchldHandling(); autoReap && tg.exitSignal == int(unix.SIGCHLD) {
			reap = true
			delete(p.children, tg)
		}
		p.broadcastLocked()
	}
	if reaper != nil && len(orphans) > 0 {
		reaper.broadcastLocked()
	}
	k.treeMu.Unlock()
	for _, c := range orphans {
		c.orphaned(reaper)
	}
	if reap {
		k.forget(tg)
	}
	if p != nil && tg.exitSignal != 0 {
		code, st := cldExited, int32(status.Code)
		if status.Signal != 0 {
			code, st = cldKilled, int32(status.Signal)
		}
		info := NewSigInfo(tg.exitSignal, code)
		info.setChild(tg.pid, st)
		p.SendSignal(info)
	}
	close(tg.exited)
	if tg == k.init {
		k.killDescendants(tg)
	}
}

// orphaned handles a child whose parent died: a zombie goes to its new
// parent's wait or away, a live one gets its death signal if it asked.
func (c *ThreadGroup) orphaned(reaper *ThreadGroup) {
	c.k.treeMu.Lock()
	zombie := c.zombie
	sig := c.pdeathSig
	c.k.treeMu.Unlock()
	switch {
	case zombie && reaper == nil:
		c.k.forget(c)
	case zombie:
		info := NewSigInfo(int(unix.SIGCHLD), cldExited)
		info.setChild(c.pid, int32(c.Status().Code))
		reaper.SendSignal(info)
	case sig != 0:
		info := NewSigInfo(sig, SiUser)
		c.SendSignal(info)
	}
}

// reaperLocked is who inherits tg's children: the nearest ancestor that
// asked to (PR_SET_CHILD_SUBREAPER), else init while it lives.
func (k *Kernel) reaperLocked(tg *ThreadGroup) *ThreadGroup {
	for a := tg.parent; a != nil; a = a.parent {
		if a.subreaper && !a.zombie {
			return a
		}
	}
	if k.init != nil && k.init != tg && !k.init.zombie {
		return k.init
	}
	return nil
}

// forget removes a reaped process from the kernel's tables.
func (k *Kernel) forget(tg *ThreadGroup) {
	k.mu.Lock()
	delete(k.procs, tg.pid)
	k.mu.Unlock()
}

// killDescendants ends every process below init once init is gone, as
// Linux does to a PID namespace.
func (k *Kernel) killDescendants(init *ThreadGroup) {
	for _, tg := range k.Processes() {
		if tg != init && tg.descendsFrom(init) {
			tg.Kill(unix.SIGKILL)
		}
	}
}

func (tg *ThreadGroup) descendsFrom(a *ThreadGroup) bool {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	for p := tg.parent; p != nil; p = p.parent {
		if p == a {
			return true
		}
	}
	return false
}

// Wait options (linux/wait.h).
const (
	WNoHang    = 0x1
	WUntraced  = 0x2
	WStopped   = WUntraced
	WExited    = 0x4
	WContinued = 0x8
	WNoWait    = 0x01000000
	WNoThread  = 0x20000000
	WAll       = 0x40000000
	WClone     = 0x80000000
)

// WaitResult is what a wait reports about one child.
type WaitResult struct {
	PID int32
	// Status is the wait4 status word.
	Status uint32
	// Code and Value are waitid's si_code (CLD_*) and si_status.
	Code, Value int
	// Usage is what an exited child used (wait4's and waitid's rusage).
	Usage Usage
}

// WaitSelector chooses the children a wait considers.
type WaitSelector func(c *ThreadGroup) bool

// Wait waits for a child chosen by sel to change state as options asks
// (wait4, waitid). It returns ECHILD without such children, and a zero
// result with WNOHANG when none has changed yet.
func (t *Task) Wait(sel WaitSelector, options int) (WaitResult, error) {
	tg := t.tg
	k := tg.k
	for {
		k.treeMu.Lock()
		found := false
		for c := range tg.children {
			if !sel(c) || !cloneMatches(c, options) {
				continue
			}
			found = true
			if res, ok := c.reportLocked(options); ok {
				if res.Code != cldStopped && res.Code != cldCont && options&WNoWait == 0 {
					delete(tg.children, c)
					k.treeMu.Unlock()
					tg.reaped(c)
					k.forget(c)
					return res, nil
				}
				k.treeMu.Unlock()
				return res, nil
			}
		}
		events := tg.childEvents
		k.treeMu.Unlock()
		if !found {
			return WaitResult{}, unix.ECHILD
		}
		if options&WNoHang != 0 {
			return WaitResult{}, nil
		}
		select {
		case <-events:
		case <-t.Context().Done():
			return WaitResult{}, unix.EINTR
		}
	}
}

// cloneMatches applies __WCLONE and __WALL: a "clone" child is one that
// signals its parent with something other than SIGCHLD.
func cloneMatches(c *ThreadGroup, options int) bool {
	if options&WAll != 0 {
		return true
	}
	isClone := c.exitSignal != int(unix.SIGCHLD)
	return isClone == (options&WClone != 0)
}

// reportLocked returns what a wait with options learns from c now.
func (c *ThreadGroup) reportLocked(options int) (WaitResult, bool) {
	switch {
	case c.zombie && options&WExited != 0:
		s := c.Status()
		if s.Signal != 0 {
			return WaitResult{PID: c.pid, Status: s.WaitStatus(), Code: cldKilled, Value: int(s.Signal), Usage: c.totalUsage()}, true
		}
		return WaitResult{PID: c.pid, Status: s.WaitStatus(), Code: cldExited, Value: s.Code, Usage: c.totalUsage()}, true
	case c.zombie:
		return WaitResult{}, false
	case c.stopReport != 0 && options&WStopped != 0:
		sig := c.stopReport
		if options&WNoWait == 0 {
			c.stopReport = 0
		}
		return WaitResult{PID: c.pid, Status: uint32(sig)<<8 | 0x7f, Code: cldStopped, Value: sig}, true
	case c.contReport && options&WContinued != 0:
		if options&WNoWait == 0 {
			c.contReport = false
		}
		return WaitResult{PID: c.pid, Status: 0xffff, Code: cldCont, Value: int(unix.SIGCONT)}, true
	}
	return WaitResult{}, false
}

// ProcessGroup is the process group id.
func (tg *ThreadGroup) ProcessGroup() int32 {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	return tg.pgid
}

// Session is the session id.
func (tg *ThreadGroup) Session() int32 {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	return tg.sid
}

// IsChildOf reports whether tg's parent is p.
func (tg *ThreadGroup) IsChildOf(p *ThreadGroup) bool {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	return tg.parent == p
}

// SetProcessGroup implements setpgid(2) for caller on tg (the caller or
// one of its children).
func (caller *ThreadGroup) SetProcessGroup(tg *ThreadGroup, pgid int32) error {
	k := caller.k
	k.treeMu.Lock()
	defer k.treeMu.Unlock()
	if tg != caller && tg.parent != caller {
		return unix.ESRCH
	}
	if tg.sid != caller.sid || tg.sid == tg.pid {
		return unix.EPERM
	}
	if pgid == 0 {
		pgid = tg.pid
	}
	if pgid != tg.pid && !k.groupInSessionLocked(pgid, tg.sid) {
		return unix.EPERM
	}
	tg.pgid = pgid
	return nil
}

func (k *Kernel) groupInSessionLocked(pgid, sid int32) bool {
	for _, tg := range k.Processes() {
		if tg.pgid == pgid && tg.sid == sid && !tg.zombie {
			return true
		}
	}
	return false
}

// SetSession implements setsid(2).
func (tg *ThreadGroup) SetSession() (int32, error) {
	k := tg.k
	k.treeMu.Lock()
	defer k.treeMu.Unlock()
	if tg.pgid == tg.pid || k.groupExistsLocked(tg.pid) {
		return 0, unix.EPERM
	}
	tg.sid, tg.pgid, tg.ctty = tg.pid, tg.pid, nil
	return tg.pid, nil
}

func (k *Kernel) groupExistsLocked(pgid int32) bool {
	for _, tg := range k.Processes() {
		if tg.pgid == pgid && !tg.zombie {
			return true
		}
	}
	return false
}

// ProcessGroupMembers returns the live processes of group pgid.
func (k *Kernel) ProcessGroupMembers(pgid int32) []*ThreadGroup {
	k.treeMu.Lock()
	defer k.treeMu.Unlock()
	var out []*ThreadGroup
	for _, tg := range k.Processes() {
		if tg.pgid == pgid && !tg.zombie {
			out = append(out, tg)
		}
	}
	return out
}

// Zombie reports whether tg has exited and waits to be reaped.
func (tg *ThreadGroup) Zombie() bool {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	return tg.zombie
}

// SetChildSubreaper implements PR_SET_CHILD_SUBREAPER.
func (tg *ThreadGroup) SetChildSubreaper(on bool) {
	tg.k.treeMu.Lock()
	tg.subreaper = on
	tg.k.treeMu.Unlock()
}

// ChildSubreaper implements PR_GET_CHILD_SUBREAPER.
func (tg *ThreadGroup) ChildSubreaper() bool {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	return tg.subreaper
}

// SetParentDeathSignal implements PR_SET_PDEATHSIG.
func (tg *ThreadGroup) SetParentDeathSignal(sig int) {
	tg.k.treeMu.Lock()
	tg.pdeathSig = sig
	tg.k.treeMu.Unlock()
}

// ParentDeathSignal implements PR_GET_PDEATHSIG.
func (tg *ThreadGroup) ParentDeathSignal() int {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	return tg.pdeathSig
}
