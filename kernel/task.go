package kernel

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kvmbox/kvmbox/kvm"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/procfs"
	"golang.org/x/sys/unix"
)

// Task is a thread: its registers live in its vCPU while it runs.
type Task struct {
	tg  *ThreadGroup
	tid int32
	// callerCtx is tg's context carrying this task's identity for /proc;
	// workerCtx is the same, marked so that nothing waits in it, for the
	// exitless worker. onWorker says which one the current syscall uses.
	callerCtx, workerCtx context.Context
	onWorker             bool

	mu   sync.Mutex // guards vcpu against kick
	vcpu *kvm.VCPU
	// serveMu is held by whoever serves the task's current syscall: the
	// exitless worker or the task's own thread at a syscall exit.
	serveMu sync.Mutex
	// Guarded by serveMu: the syscall numbers this thread does not post to
	// the worker since it declined one, and how many calls of each have
	// taken the exit since.
	withheld      kvm.PostMask
	withheldCalls [kvm.PostableSyscalls]uint8
	// unserved is set once the worker must no longer touch the task's
	// vCPU.
	unserved bool

	// Guarded by tg.mu: signal state, and the channel that interrupts the
	// task's blocking calls (closed when a signal needs it).
	sigmask      SigSet
	savedMask    SigSet
	hasSavedMask bool
	waitingFor   SigSet // signals rt_sigtimedwait or a signalfd read waits for
	pending      sigPending
	intr         chan struct{}
	intrClosed   bool
	mustExit     bool // exit(2) of one thread, or another thread's execve
	// inKernel is set while the task's own thread serves a system call
	// exit and will look for signals before it enters the guest again, so
	// a signal sent meanwhile needs no kick (a wasted KVM_RUN).
	inKernel bool
	exitCode int
	// The host thread running the task and its CPU time when the task
	// started on it; guarded by tg.cpu.mu.
	hostTID  int32
	hostBase Usage
	// affinity is the CPU mask of sched_setaffinity, never changed in
	// place; nil: every CPU.
	affinity []uint64
	// nice is setpriority's value, inherited by clone; guarded by tg.mu.
	nice int

	altStackSP    uint64
	altStackSize  uint64
	altStackFlags uint32
	clearChildTID uint64
	robustList    uint64
	fsBase        uint64
	scratch       []byte
	pinned        mm.Pinned
	name          string // comm, as prctl(PR_SET_NAME) sets it
	// personality is the execution domain and flags personality(2) sets;
	// only the task itself touches it. Of its flags, ADDR_NO_RANDOMIZE
	// takes effect (at execve).
	personality uint32
	// setRegs is the user context a system call replaced the caller's with
	// (execve, rt_sigreturn).
	setRegs *kvm.Regs
}

// taskStart is where a new task begins: registers, FPU state and FS base.
type taskStart struct {
	regs   kvm.Regs
	xsave  *[kvm.XSaveSize]byte // nil: a new program's
	fsBase uint64
}

func (tg *ThreadGroup) newTask(tid int32) *Task {
	t := &Task{tg: tg, tid: tid, name: commName(tg.path), intr: make(chan struct{})}
	t.callerCtx = taskContext{t: t, parent: procfs.WithCaller(tg.ctx, tg.pid, t.tid)}
	t.workerCtx = vfs.NoWait(t.callerCtx)
	tg.mu.Lock()
	tg.tasks[t.tid] = t
	tg.mu.Unlock()
	tg.k.mu.Lock()
	tg.k.tasks[t.tid] = t
	tg.k.mu.Unlock()
	return t
}

// taskContext is a task's context: done when a signal interrupts the task
// or its process exits; values come from parent.
type taskContext struct {
	t      *Task
	parent context.Context
}

func (c taskContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c taskContext) Done() <-chan struct{} {
	c.t.tg.mu.Lock()
	defer c.t.tg.mu.Unlock()
	return c.t.intr
}

func (c taskContext) Err() error {
	select {
	case <-c.Done():
		return context.Canceled
	default:
		return nil
	}
}

func (c taskContext) Value(key any) any {
	switch key {
	case taskKey{}:
		return c.t
	case vfs.CredentialsKey{}:
		return c.t.tg.Creds().fs
	}
	return c.parent.Value(key)
}

type taskKey struct{}

// taskFrom returns the task whose context ctx is (or derives from), or nil.
func taskFrom(ctx context.Context) *Task {
	t, _ := ctx.Value(taskKey{}).(*Task)
	return t
}

// TID is the thread id inside the sandbox.
func (t *Task) TID() int32 { return t.tid }

// ThreadGroup is the task's process.
func (t *Task) ThreadGroup() *ThreadGroup { return t.tg }

// Kernel is the kernel the task runs in.
func (t *Task) Kernel() *Kernel { return t.tg.k }

// Context is cancelled when the task must stop blocking (the process is
// exiting or killed). Blocking system calls return EINTR when it is.
func (t *Task) Context() context.Context {
	if t.onWorker {
		return t.workerCtx
	}
	return t.callerCtx
}

// AltStack returns the sigaltstack state.
func (t *Task) AltStack() (sp, size uint64, flags uint32) {
	return t.altStackSP, t.altStackSize, t.altStackFlags
}

// SetAltStack records the sigaltstack state.
func (t *Task) SetAltStack(sp, size uint64, flags uint32) {
	t.altStackSP, t.altStackSize, t.altStackFlags = sp, size, flags
}

// SetClearChildTID records set_tid_address's pointer.
func (t *Task) SetClearChildTID(addr uint64) { t.clearChildTID = addr }

// SetRobustList records set_robust_list's head, which the kernel walks when
// the thread dies once threads exist (issue 4).
func (t *Task) SetRobustList(head uint64) { t.robustList = head }

// FSBase is the FS segment base (the thread pointer).
func (t *Task) FSBase() uint64 { return t.fsBase }

// SetFSBase changes the FS segment base.
func (t *Task) SetFSBase(base uint64) error {
	if err := t.vcpu.SetFSBase(base); err != nil {
		return unix.EPERM
	}
	t.fsBase = base
	return nil
}

// Regs are the task's general registers as of its last exit (the syscall
// arguments at a system call).
func (t *Task) Regs() *kvm.Regs { return t.vcpu.Regs() }

func (t *Task) kick() {
	t.mu.Lock()
	if t.vcpu != nil {
		t.vcpu.Kick()
	}
	t.mu.Unlock()
}

// run is the task's life: enter the guest, take the exit, dispatch, repeat.
// It runs on its own goroutine locked to an OS thread, as KVM wants.
func (t *Task) run(start taskStart) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tg := t.tg
	tg.startCPU(t)
	defer tg.removeTask(t)
	vcpu, err := tg.k.vm.NewVCPU()
	if err != nil {
		tg.Exit(ExitStatus{Signal: unix.SIGKILL, Err: fmt.Errorf("kernel: starting thread: %w", err)})
		return
	}
	t.mu.Lock()
	t.vcpu = vcpu
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.vcpu = nil
		t.mu.Unlock()
		vcpu.Close()
	}()
	if err := t.enter(start); err != nil {
		tg.Exit(ExitStatus{Signal: unix.SIGKILL, Err: fmt.Errorf("kernel: starting thread: %w", err)})
		return
	}
	tg.k.exitless.add(t, vcpu)
	defer tg.k.exitless.remove(t)
	var args SyscallArgs
	for !t.mustStop() {
		if !tg.k.freezer.enter(tg.ctx.Done()) {
			continue
		}
		exit, err := vcpu.Run()
		tg.k.freezer.leave()
		tg.k.exits.Add(1)
		if err != nil {
			tg.Exit(ExitStatus{Signal: unix.SIGKILL, Err: err})
			return
		}
		switch exit.Kind {
		case kvm.ExitSyscall:
			t.syscallExit(vcpu, &args)
		case kvm.ExitReturn:
			// Leave through SetUserRegs rather than resume at the stub's
			// iretq: kvm-pvm faults an iretq that follows an I/O exit.
			vcpu.SetReturnExit(false)
			r := vcpu.SyscallUserRegs()
			t.returnToUser(&r, nil, true)
		case kvm.ExitException:
			t.fault(exit)
		case kvm.ExitKicked:
			t.kicked()
		case kvm.ExitFatal:
			tg.Exit(ExitStatus{Signal: unix.SIGKILL, Err: t.crashReport("fatal VM exit: "+exit.Reason, unix.SIGKILL, t.vcpu.Regs())})
		}
	}
}

// enter loads a new task's starting state into its vCPU.
func (t *Task) enter(s taskStart) error {
	v := t.vcpu
	if err := v.SetUserRegs(t.tg.mm.Root(), s.regs); err != nil {
		return err
	}
	if s.xsave != nil {
		if err := v.SetXSave(s.xsave); err != nil {
			return err
		}
	} else if err := t.resetXSave(); err != nil {
		return err
	}
	v.SetReturnExit(false)
	return t.SetFSBase(s.fsBase)
}

// Pinned returns the task's reusable record of guest memory pinned for
// I/O; it must be released before the system call returns.
func (t *Task) Pinned() *mm.Pinned { return &t.pinned }

// Scratch returns a buffer of n bytes owned by the task, reused across
// system calls so that the I/O path does not allocate.
func (t *Task) Scratch(n int) []byte {
	if cap(t.scratch) < n {
		t.scratch = make([]byte, n)
	}
	return t.scratch[:n]
}

// commName is the task name Linux derives from an executable path: its
// last element, truncated to 15 bytes.
func commName(path string) string {
	name := path[strings.LastIndexByte(path, '/')+1:]
	return name[:min(len(name), 15)]
}

// Name is the task's name (comm).
func (t *Task) Name() string { return t.name }

// SetName sets the task's name; it stops at the first NUL.
func (t *Task) SetName(b []byte) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	t.name = string(b)
}

// syscallExit serves a system call that left the guest: one a worker has
// already completed, or one to serve here from the registers.
func (t *Task) syscallExit(vcpu *kvm.VCPU, args *SyscallArgs) {
	k := t.tg.k
	t.serveMu.Lock()
	defer t.serveMu.Unlock()
	t.tg.mu.Lock()
	t.inKernel = true
	t.tg.mu.Unlock()
	r := vcpu.Regs()
	if ret, done := vcpu.SettleMailbox(); done {
		r.RAX = ret
		vcpu.MarkRegsDirty()
		if t.hasWork() {
			u := vcpu.SyscallUserRegs()
			t.returnToUser(&u, nil, false)
		}
		return
	}
	k.syscalls.Add(1)
	*args = SyscallArgs{r.RDI, r.RSI, r.RDX, r.R10, r.R8, r.R9}
	nr := r.RAX
	k.exitless.exited(t, vcpu, nr, args)
	ret := k.cfg.Syscalls.Handle(t, nr, args)
	if t.tg.mm.TakeTLBFlush() {
		vcpu.FlushTLBOnReturn()
	}
	if n := t.setRegs; n != nil {
		t.setRegs = nil
		t.returnToUser(n, nil, true)
		return
	}
	r = vcpu.Regs()
	r.RAX = ret
	vcpu.MarkRegsDirty()
	if t.hasWork() {
		u := vcpu.SyscallUserRegs()
		t.returnToUser(&u, &syscallReturn{nr: nr, ret: ret}, false)
	}
}

// OnAltStack reports whether the thread's user stack pointer, as of its
// current system call, lies on its alternate signal stack.
func (t *Task) OnAltStack() bool {
	_, rsp, _ := t.vcpu.SyscallContext()
	return t.onAltStack(rsp)
}

// RobustList is set_robust_list's head.
func (t *Task) RobustList() uint64 { return t.robustList }
