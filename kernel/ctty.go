package kernel

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs/devpts"
	"github.com/kvmbox/kvmbox/vfs/procfs"
)

// ptySessions joins the sandbox's pseudo-terminals to its sessions and
// process groups (devpts.Sessions).
type ptySessions struct{ k *Kernel }

var _ devpts.Sessions = ptySessions{}

// SignalGroup implements devpts.Sessions.
func (s ptySessions) SignalGroup(pgid int32, sig unix.Signal) {
	for _, tg := range s.k.ProcessGroupMembers(pgid) {
		tg.SendSignal(NewSigInfo(int(sig), SiKernel))
	}
}

// Acquire implements devpts.Sessions: as Linux, a session leader without
// a controlling terminal that opens a terminal controlling no session
// without O_NOCTTY gets it, its group in the foreground.
func (s ptySessions) Acquire(ctx context.Context, t *devpts.Terminal) {
	pid, _, ok := procfs.CallerFrom(ctx)
	if !ok {
		return
	}
	tg := s.k.ProcessOf(pid)
	if tg == nil {
		return
	}
	k := s.k
	k.treeMu.Lock()
	defer k.treeMu.Unlock()
	if tg.sid != tg.pid || tg.ctty != nil {
		return
	}
	if sid, _ := t.Session(); sid != 0 {
		return
	}
	if t.SetSession(tg.sid, tg.pgid) {
		tg.ctty = t
	}
}

// Hangup implements devpts.Sessions: the processes of session sid lose
// their controlling terminal t, and the session leader gets SIGHUP and
// SIGCONT.
func (s ptySessions) Hangup(t *devpts.Terminal, sid int32) {
	k := s.k
	var leader *ThreadGroup
	k.treeMu.Lock()
	for _, tg := range k.Processes() {
		if tg.sid == sid && tg.ctty == t {
			tg.ctty = nil
			if tg.pid == sid && !tg.zombie {
				leader = tg
			}
		}
	}
	k.treeMu.Unlock()
	if leader != nil {
		leader.SendSignal(NewSigInfo(int(unix.SIGHUP), SiKernel))
		leader.SendSignal(NewSigInfo(int(unix.SIGCONT), SiKernel))
	}
}

// JobControl implements devpts.Sessions for the calling thread of ctx.
func (s ptySessions) JobControl(ctx context.Context, t *devpts.Terminal, sig unix.Signal) error {
	_, tid, ok := procfs.CallerFrom(ctx)
	if !ok {
		return nil
	}
	task := s.k.Thread(tid)
	if task == nil {
		return nil
	}
	return task.CheckTerminalAccess(t, sig)
}

// CheckTerminalAccess is Linux's job control check of a process that
// reads (SIGTTIN) or changes (SIGTTOU) its controlling terminal t from a
// background process group: the group gets sig and the call fails with
// EINTR, to restart once the group is continued; EIO instead when the
// group is orphaned, or for SIGTTIN when the caller ignores or blocks it
// (SIGTTOU then lets the call go on). Other terminals pass.
func (t *Task) CheckTerminalAccess(pty *devpts.Terminal, sig unix.Signal) error {
	tg := t.tg
	k := tg.k
	k.treeMu.Lock()
	if tg.ctty != pty {
		k.treeMu.Unlock()
		return nil
	}
	_, fg := pty.Session()
	pgid := tg.pgid
	if fg == 0 || pgid == fg {
		k.treeMu.Unlock()
		return nil
	}
	orphaned := k.orphanedGroupLocked(pgid, tg.sid)
	k.treeMu.Unlock()
	if t.SigMask().Has(int(sig)) || tg.SigAction(int(sig)).Handler == SigIgn {
		if sig == unix.SIGTTIN {
			return unix.EIO
		}
		return nil
	}
	if orphaned {
		return unix.EIO
	}
	ptySessions{k}.SignalGroup(pgid, sig)
	return unix.EINTR
}

// orphanedGroupLocked reports whether group pgid of session sid is
// orphaned: no member has a parent in another group of the session, so
// nobody is left to continue it once stopped.
func (k *Kernel) orphanedGroupLocked(pgid, sid int32) bool {
	for _, p := range k.Processes() {
		if p.pgid == pgid && !p.zombie && p.parent != nil && p.parent.pgid != pgid && p.parent.sid == sid {
			return false
		}
	}
	return true
}

// ControllingTerminal returns the process's controlling terminal when it
// is one of the sandbox's ptys.
func (tg *ThreadGroup) ControllingTerminal() *devpts.Terminal {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	return tg.ctty
}

// SetControllingTerminal implements TIOCSCTTY on t: the caller must lead
// its session and have no controlling terminal (EPERM), and t must
// control no session, unless force and the caller has CAP_SYS_ADMIN,
// when t leaves the session it controlled. readable says the file was
// opened for reading, which Linux asks of a caller without
// CAP_SYS_ADMIN.
func (tg *ThreadGroup) SetControllingTerminal(t *devpts.Terminal, force, readable bool) error {
	admin := tg.Creds().Capable(unix.CAP_SYS_ADMIN)
	k := tg.k
	k.treeMu.Lock()
	defer k.treeMu.Unlock()
	if tg.sid == tg.pid && tg.ctty == t {
		return nil
	}
	if tg.sid != tg.pid || tg.ctty != nil {
		return unix.EPERM
	}
	if !readable && !admin {
		return unix.EPERM
	}
	if sid, _ := t.Session(); sid != 0 {
		if !force || !admin {
			return unix.EPERM
		}
		k.dropTerminalLocked(t, sid)
	}
	if !t.SetSession(tg.sid, tg.pgid) {
		return unix.EIO
	}
	tg.ctty = t
	return nil
}

// dropTerminalLocked takes t from the processes of session sid.
func (k *Kernel) dropTerminalLocked(t *devpts.Terminal, sid int32) {
	for _, p := range k.Processes() {
		if p.sid == sid && p.ctty == t {
			p.ctty = nil
		}
	}
}

// DropControllingTerminal implements TIOCNOTTY: ENOTTY unless t is the
// caller's controlling terminal. A session leader gives it up for the
// whole session, whose foreground group gets SIGHUP and SIGCONT; any
// other process only for itself.
func (tg *ThreadGroup) DropControllingTerminal(t *devpts.Terminal) error {
	k := tg.k
	k.treeMu.Lock()
	if tg.ctty != t {
		k.treeMu.Unlock()
		return unix.ENOTTY
	}
	if tg.sid != tg.pid {
		tg.ctty = nil
		k.treeMu.Unlock()
		return nil
	}
	_, fg := t.Session()
	k.dropTerminalLocked(t, tg.sid)
	t.SetSession(0, 0)
	k.treeMu.Unlock()
	if fg != 0 {
		s := ptySessions{k}
		s.SignalGroup(fg, unix.SIGHUP)
		s.SignalGroup(fg, unix.SIGCONT)
	}
	return nil
}

// SetForegroundGroup implements TIOCSPGRP: t must be the caller's
// controlling terminal (ENOTTY), pgid a group (EINVAL when negative,
// ESRCH when no process has it) of the caller's session (EPERM).
func (tg *ThreadGroup) SetForegroundGroup(t *devpts.Terminal, pgid int32) error {
	k := tg.k
	k.treeMu.Lock()
	defer k.treeMu.Unlock()
	if sid, _ := t.Session(); tg.ctty != t || sid != tg.sid {
		return unix.ENOTTY
	}
	if pgid < 0 {
		return unix.EINVAL
	}
	if !k.groupExistsLocked(pgid) {
		return unix.ESRCH
	}
	if !k.groupInSessionLocked(pgid, tg.sid) {
		return unix.EPERM
	}
	t.SetForeground(pgid)
	return nil
}

// leaveTerminalAtExit runs when a session leader exits, as Linux's
// disassociate_ctty: the foreground group of its controlling pty gets
// SIGHUP, and the session loses the terminal.
func (k *Kernel) leaveTerminalAtExit(tg *ThreadGroup) {
	k.treeMu.Lock()
	t := tg.ctty
	if t == nil || tg.sid != tg.pid {
		k.treeMu.Unlock()
		return
	}
	_, fg := t.Session()
	k.dropTerminalLocked(t, tg.sid)
	t.SetSession(0, 0)
	k.treeMu.Unlock()
	if fg != 0 {
		ptySessions{k}.SignalGroup(fg, unix.SIGHUP)
	}
}
