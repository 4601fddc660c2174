package kernel

import (
	"fmt"

	"github.com/kvmbox/kvmbox/kvm"
	"golang.org/x/sys/unix"
)

// signalForVector maps a CPU exception to the signal Linux sends for it.
func signalForVector(v int) unix.Signal {
	switch v {
	case kvm.VectorDivide, kvm.VectorX87, kvm.VectorSIMD:
		return unix.SIGFPE
	case kvm.VectorDebug, kvm.VectorBreakpoint:
		return unix.SIGTRAP
	case kvm.VectorInvalidOp:
		return unix.SIGILL
	case kvm.VectorStack, kvm.VectorAlignment:
		return unix.SIGBUS
	}
	return unix.SIGSEGV
}

// CrashError is a guest fault or fatal exit, with what a developer needs to
// see: the address, the decoded instruction and the registers.
type CrashError struct {
	Signal      unix.Signal
	What        string
	RIP         uint64
	Instruction string
	Registers   string
}

func (e *CrashError) Error() string {
	return fmt.Sprintf("%s (%v) at rip %#x: %s\n%s", e.What, e.Signal, e.RIP, e.Instruction, e.Registers)
}

// fault handles a CPU exception raised by user code. Signal handlers are not
// delivered yet, so the signal's default action applies: the process dies.
func (t *Task) fault(e kvm.Exit) {
	sig := signalForVector(e.Vector)
	what := fmt.Sprintf("exception %d (error code %#x)", e.Vector, e.ErrorCode)
	if e.Vector == kvm.VectorPageFault {
		what = fmt.Sprintf("page fault at %#x (error code %#x)", e.CR2, e.ErrorCode)
	}
	regs := *t.vcpu.Regs()
	regs.RIP, regs.RSP, regs.RFLAGS = e.RIP, e.RSP, e.RFLAGS
	t.tg.Exit(ExitStatus{Signal: sig, Err: t.crashReport(what, sig, &regs)})
}

func (t *Task) crashReport(what string, sig unix.Signal, r *kvm.Regs) error {
	code := make([]byte, 16)
	n, _ := t.tg.mm.CopyIn(code, r.RIP)
	inst := "(instruction not readable)"
	if n > 0 {
		inst = kvm.DecodeInstruction(code[:n], r.RIP)
	}
	err := &CrashError{Signal: sig, What: what, RIP: r.RIP, Instruction: inst, Registers: kvm.DumpRegisters(r)}
	if d := t.tg.k.cfg.Debug; d != nil {
		fmt.Fprintf(d, "kvmbox: pid %d: %v\n", t.tg.pid, err)
	}
	return err
}
