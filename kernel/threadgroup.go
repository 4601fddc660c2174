package kernel

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/kvmbox/kvmbox/kernel/loader"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/devpts"
	"golang.org/x/sys/unix"
)

// Killed is the signal that ends a process killed from outside (context
// cancellation, a timeout, Sandbox.Kill).
const Killed = unix.SIGKILL

// ExitStatus is how a process ended: an exit code, or a signal.
type ExitStatus struct {
	Code   int
	Signal unix.Signal
	// Err explains a signal the kernel sent because the guest did something
	// it cannot continue from (a fault, a fatal exit), with a register dump.
	Err error
}

// WaitStatus encodes s as wait4 reports it.
func (s ExitStatus) WaitStatus() uint32 {
	if s.Signal != 0 {
		return uint32(s.Signal) & 0x7f
	}
	return uint32(s.Code&0xff) << 8
}

// SigAction is a signal's disposition as set by rt_sigaction.
type SigAction struct {
	Handler, Flags, Restorer, Mask uint64
}

// ThreadGroup is a process: an address space, a file-descriptor table and
// signal dispositions shared by its threads.
type ThreadGroup struct {
	k     *Kernel
	pid   int32
	mm    *mm.AddressSpace
	fds   *FDTable
	path  string
	argv  []string
	envv  []string
	image *loader.Image

	ctx    context.Context
	cancel context.CancelFunc
	fs     fsState

	mu         sync.Mutex
	tasks      map[int32]*Task
	exiting    bool
	status     ExitStatus
	exited     chan struct{}
	sigactions [NumSignals + 1]SigAction
	pending    sigPending // process-directed signals
	stopped    bool       // in a group stop
	stopSignal int
	continued  chan struct{} // closed when a group stop ends
	limits     [unix.RLIMIT_RTTIME + 1]unix.Rlimit
	// fileSizeLimit is RLIMIT_FSIZE's soft limit, read without tg.mu on
	// every write.
	fileSizeLimit atomic.Uint64
	// vforkDone is closed when a vfork child execs or exits, releasing its
	// parent.
	vforkDone chan struct{}
	timers    timerState
	usage     usageState
	cpu       cpuState
	// signalWaiters hear of every signal queued for the process or its
	// threads (signalfd readiness). Notified without tg.mu held, since
	// waiters (epoll) may call back into Readiness.
	signalWaiters vfs.Queue

	// Guarded by k.treeMu: the process tree and what wait reports.
	parent     *ThreadGroup
	children   map[*ThreadGroup]struct{}
	exitSignal int // sent to the parent at exit; SIGCHLD unless clone said otherwise
	pgid, sid  int32
	// ctty is the controlling terminal when it is a sandbox pty.
	ctty        *devpts.Terminal
	zombie      bool
	subreaper   bool
	stopReport  int           // a stop not yet reported to wait (its signal)
	contReport  bool          // a continue not yet reported to wait
	childEvents chan struct{} // closed and replaced when a child changes state
	pdeathSig   int
}

func newThreadGroup(k *Kernel, pid int32, as *mm.AddressSpace, p Program, img *loader.Image) *ThreadGroup {
	tg := &ThreadGroup{
		k: k, pid: pid, mm: as,
		path: p.Path, argv: p.Argv, envv: p.Envv, image: img,
		tasks: map[int32]*Task{}, exited: make(chan struct{}),
		children: map[*ThreadGroup]struct{}{}, childEvents: make(chan struct{}),
		exitSignal: int(unix.SIGCHLD), pgid: pid, sid: pid,
	}
	tg.ctx, tg.cancel = context.WithCancel(context.Background())
	tg.limits = defaultLimits(k.cfg.MemoryLimit)
	tg.applyLimitsLocked()
	tg.timers.itimers[unix.ITIMER_VIRTUAL].clock = CPUClock{tg: tg, which: cpuClockVirt}
	tg.timers.itimers[unix.ITIMER_PROF].clock = CPUClock{tg: tg, which: cpuClockProf}
	tg.fds = NewFDTable(tg, int(tg.limits[unix.RLIMIT_NOFILE].Cur))
	return tg
}

// PID is the process id inside the sandbox.
func (tg *ThreadGroup) PID() int32 { return tg.pid }

// PPID is the parent's process id (0 for a process started from outside).
func (tg *ThreadGroup) PPID() int32 {
	tg.k.treeMu.Lock()
	defer tg.k.treeMu.Unlock()
	if tg.parent == nil {
		return 0
	}
	return tg.parent.pid
}

// MM is the process's address space (execve replaces it).
func (tg *ThreadGroup) MM() *mm.AddressSpace {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.mm
}

// FDs is the process's file-descriptor table.
func (tg *ThreadGroup) FDs() *FDTable { return tg.fds }

// Path is the executable's path as the guest sees it.
func (tg *ThreadGroup) Path() string { return tg.path }

// Kernel is the kernel the process runs in.
func (tg *ThreadGroup) Kernel() *Kernel { return tg.k }

// SigAction returns the disposition of sig.
func (tg *ThreadGroup) SigAction(sig int) SigAction {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.sigactions[sig]
}

// SetSigAction changes the disposition of sig (1..64).
// A signal set to be ignored is discarded if pending, as on Linux.
func (tg *ThreadGroup) SetSigAction(sig int, a SigAction) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.sigactions[sig] = a
	if tg.ignoredLocked(sig) {
		tg.discardLocked(SigBit(sig))
	}
}

// Exit ends the whole process with status s (exit_group, a fatal signal).
// The first call wins.
func (tg *ThreadGroup) Exit(s ExitStatus) {
	tg.mu.Lock()
	if tg.exiting {
		tg.mu.Unlock()
		return
	}
	tg.exiting = true
	tg.status = s
	for _, t := range tg.tasks {
		t.interruptLocked()
	}
	tg.mu.Unlock()
	tg.cancel()
}

// Kill ends the process with signal sig.
func (tg *ThreadGroup) Kill(sig unix.Signal) { tg.Exit(ExitStatus{Signal: sig}) }

// Exiting reports whether the process is on its way out.
func (tg *ThreadGroup) Exiting() bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.exiting
}

// Done is closed when the process has exited and released its resources.
func (tg *ThreadGroup) Done() <-chan struct{} { return tg.exited }

// Status is the exit status; valid once Done is closed.
func (tg *ThreadGroup) Status() ExitStatus {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.status
}

// ExitThread ends the calling thread (exit(2)); the last thread to go
// ends the process with code.
func (t *Task) ExitThread(code int) {
	tg := t.tg
	tg.mu.Lock()
	t.mustExit = true
	t.exitCode = code
	tg.mu.Unlock()
}

// removeTask is called when a task's run loop ends; the last one releases
// the process's resources.
func (tg *ThreadGroup) removeTask(t *Task) {
	t.releaseThread()
	rss := tg.MM().Resident()
	tg.mu.Lock()
	tg.endCPU(t)
	tg.usage.peakRSS = max(tg.usage.peakRSS, rss)
	delete(tg.tasks, t.tid)
	last := len(tg.tasks) == 0
	if last && !tg.exiting {
		tg.exiting = true
		tg.status = ExitStatus{Code: t.exitCode & 0xff}
	}
	tg.mu.Unlock()
	tg.k.mu.Lock()
	delete(tg.k.tasks, t.tid)
	tg.k.taskCount--
	tg.k.mu.Unlock()
	if !last {
		return
	}
	tg.stopTimers()
	tg.fds.CloseAll()
	tg.k.releaseSpace(tg.mm)
	tg.cancel()
	tg.releaseVfork()
	tg.k.processExited(tg)
}

// releaseVfork lets a vfork parent go on.
func (tg *ThreadGroup) releaseVfork() {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.vforkDone != nil {
		close(tg.vforkDone)
		tg.vforkDone = nil
	}
}
