package kernel

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/kvmbox/kvmbox/kernel/futex"
	"github.com/kvmbox/kvmbox/kvm"
	"golang.org/x/sys/unix"
)

// CloneArgs are clone(2)'s and clone3(2)'s arguments.
type CloneArgs struct {
	Flags      uint64
	Stack      uint64 // the child's stack pointer; 0 keeps the parent's
	ParentTID  uint64
	ChildTID   uint64
	TLS        uint64
	ExitSignal int
}

// cloneSupported are the flags Clone understands; CLONE_FILES, CLONE_FS
// and CLONE_SIGHAND are implied for threads and copies otherwise, and
// CLONE_VM without CLONE_THREAD gets a copy of the address space (the
// parent still waits for a CLONE_VFORK child, as vfork users expect).
const cloneSupported = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_PIDFD | unix.CLONE_PTRACE | unix.CLONE_VFORK | unix.CLONE_PARENT | unix.CLONE_THREAD |
	unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID |
	unix.CLONE_DETACHED | unix.CLONE_UNTRACED | unix.CLONE_CHILD_SETTID | unix.CLONE_IO

// Clone creates a thread or a process (clone, clone3, fork, vfork) and
// returns its id.
func (t *Task) Clone(a CloneArgs) (int32, error) {
	f := a.Flags
	switch {
	case f&^uint64(cloneSupported) != 0:
		return 0, unix.EINVAL
	case f&unix.CLONE_THREAD != 0 && f&unix.CLONE_SIGHAND == 0,
		f&unix.CLONE_SIGHAND != 0 && f&unix.CLONE_VM == 0:
		return 0, unix.EINVAL
	case f&unix.CLONE_PIDFD != 0:
		return 0, unix.EINVAL // pidfds are not supported
	case a.ExitSignal < 0 || a.ExitSignal > NumSignals:
		return 0, unix.EINVAL
	case f&unix.CLONE_SETTLS != 0 && a.TLS >= UserTop:
		return 0, unix.EPERM
	}
	if err := t.tg.checkNProc(); err != nil {
		return 0, err
	}
	if err := t.tg.k.reserveTask(); err != nil {
		return 0, err
	}
	start := taskStart{regs: t.vcpu.SyscallUserRegs(), fsBase: t.fsBase}
	start.regs.RAX = 0
	if a.Stack != 0 {
		start.regs.RSP = a.Stack
	}
	if f&unix.CLONE_SETTLS != 0 {
		start.fsBase = a.TLS
	}
	var xsave [kvm.XSaveSize]byte
	if err := t.vcpu.XSave(&xsave); err != nil {
		t.tg.k.unreserveTask()
		return 0, err
	}
	start.xsave = &xsave
	if f&unix.CLONE_THREAD != 0 {
		return t.cloneThread(a, start)
	}
	return t.fork(a, start)
}

func (t *Task) cloneThread(a CloneArgs, start taskStart) (int32, error) {
	tg := t.tg
	k := tg.k
	tid := k.nextPID.Add(1) - 1
	nt := tg.newTask(tid)
	tg.mu.Lock()
	nt.sigmask = t.sigmask
	nt.affinity = t.affinity
	nt.nice = t.nice
	if tg.exiting {
		tg.mu.Unlock()
		t.abandon(nt)
		return 0, unix.EINTR
	}
	tg.mu.Unlock()
	nt.name = t.name
	nt.personality = t.personality
	if a.Flags&unix.CLONE_CHILD_CLEARTID != 0 {
		nt.clearChildTID = a.ChildTID
	}
	if err := t.writeTIDs(a, tg, tid); err != nil {
		t.abandon(nt)
		return 0, err
	}
	go nt.run(start)
	return tid, nil
}

// abandon undoes newTask for a thread that never ran.
func (t *Task) abandon(nt *Task) {
	tg := nt.tg
	tg.mu.Lock()
	delete(tg.tasks, nt.tid)
	tg.mu.Unlock()
	tg.k.mu.Lock()
	delete(tg.k.tasks, nt.tid)
	tg.k.taskCount--
	tg.k.mu.Unlock()
}

// writeTIDs stores the new id where CLONE_PARENT_SETTID and
// CLONE_CHILD_SETTID ask, in the parent's and the child's memory.
func (t *Task) writeTIDs(a CloneArgs, child *ThreadGroup, tid int32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(tid))
	if a.Flags&unix.CLONE_PARENT_SETTID != 0 {
		if _, err := t.tg.mm.CopyOut(a.ParentTID, b[:]); err != nil {
			return unix.EFAULT
		}
	}
	if a.Flags&unix.CLONE_CHILD_SETTID != 0 {
		if _, err := child.mm.CopyOut(a.ChildTID, b[:]); err != nil {
			return unix.EFAULT
		}
	}
	return nil
}

func (t *Task) fork(a CloneArgs, start taskStart) (int32, error) {
	parent := t.tg
	k := parent.k
	as, err := parent.mm.Fork()
	if err != nil {
		k.unreserveTask()
		return 0, unix.ENOMEM
	}
	pid := k.nextPID.Add(1) - 1
	parent.mu.Lock()
	p := Program{Path: parent.path, Argv: parent.argv, Envv: parent.envv}
	child := newThreadGroup(k, pid, as, p, parent.image)
	child.sigactions = parent.sigactions
	child.limits = parent.limits
	child.applyLimitsLocked()
	mask, affinity, nice := t.sigmask, t.affinity, t.nice
	parent.mu.Unlock()
	child.mu.Lock()
	child.armCPULimitLocked()
	child.mu.Unlock()
	child.exitSignal = a.ExitSignal
	child.fds = parent.fds.Fork(child)
	parent.fs.mu.Lock()
	child.fs.root, child.fs.cwd, child.fs.umask, child.fs.creds = parent.fs.root, parent.fs.cwd, parent.fs.umask, parent.fs.creds
	parent.fs.mu.Unlock()
	if a.Flags&unix.CLONE_VFORK != 0 {
		child.vforkDone = make(chan struct{})
	}
	vforkDone := child.vforkDone

	k.treeMu.Lock()
	p2 := parent
	if a.Flags&unix.CLONE_PARENT != 0 && parent.parent != nil {
		p2 = parent.parent
	}
	child.parent = p2
	child.pgid, child.sid, child.ctty = parent.pgid, parent.sid, parent.ctty
	p2.children[child] = struct{}{}
	k.treeMu.Unlock()

	nt := child.newTask(pid)
	nt.sigmask, nt.affinity, nt.nice = mask, affinity, nice
	nt.name = t.name
	nt.personality = t.personality
	nt.altStackSP, nt.altStackSize, nt.altStackFlags = t.altStackSP, t.altStackSize, t.altStackFlags
	if a.Flags&unix.CLONE_CHILD_CLEARTID != 0 {
		nt.clearChildTID = a.ChildTID
	}
	k.mu.Lock()
	k.procs[pid] = child
	k.mu.Unlock()
	if err := t.writeTIDs(a, child, pid); err != nil {
		child.Exit(ExitStatus{Signal: unix.SIGKILL})
	}
	go nt.run(start)
	if vforkDone != nil {
		select {
		case <-vforkDone:
		case <-parent.ctx.Done():
		}
	}
	return pid, nil
}

// releaseThread does what Linux does for a thread that ends: release the
// robust futexes it holds, then clear the word CLONE_CHILD_CLEARTID or
// set_tid_address named and wake one waiter on it (how pthread_join and
// Go's runtime learn that a thread is gone).
func (t *Task) releaseThread() {
	as := t.tg.MM()
	tbl := t.tg.k.futexes
	futex.ReleaseRobustList(as, tbl, t.robustList, t.tid)
	if addr := t.clearChildTID; addr != 0 {
		key, err := as.UpdateWord(addr, func(w *uint32) { atomic.StoreUint32(w, 0) })
		if err == nil {
			tbl.Wake(key, 1, ^uint32(0))
		}
	}
}

// Futexes is the sandbox's futex table.
func (k *Kernel) Futexes() *futex.Table { return k.futexes }
