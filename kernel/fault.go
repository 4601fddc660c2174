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

// faultInfo is the siginfo Linux sends for a CPU exception.
func faultInfo(e kvm.Exit) SigInfo {
	sig := signalForVector(e.Vector)
	var info SigInfo
	switch e.Vector {
	case kvm.VectorPageFault:
		code := segvMapErr
		if e.ErrorCode&1 != 0 { // the page was present: a protection fault
			code = segvAccErr
		}
		info = NewSigInfo(int(sig), code)
		info.SetAddr(e.CR2)
	case kvm.VectorInvalidOp:
		info = NewSigInfo(int(sig), illIllOpn)
		info.SetAddr(e.RIP)
	case kvm.VectorDivide:
		info = NewSigInfo(int(sig), fpeIntDiv)
		info.SetAddr(e.RIP)
	case kvm.VectorX87, kvm.VectorSIMD:
		info = NewSigInfo(int(sig), fpeFltInv)
		info.SetAddr(e.RIP)
	case kvm.VectorBreakpoint, kvm.VectorDebug:
		info = NewSigInfo(int(sig), trapBrkpt)
		info.SetAddr(e.RIP)
	case kvm.VectorAlignment:
		info = NewSigInfo(int(sig), busAdrAln)
		info.SetAddr(e.RIP)
	default: // #GP and the like carry no address
		info = NewSigInfo(int(sig), SiKernel)
	}
	return info
}

func faultDescription(e kvm.Exit) string {
	if e.Vector == kvm.VectorPageFault {
		return fmt.Sprintf("page fault at %#x (error code %#x)", e.CR2, e.ErrorCode)
	}
	return fmt.Sprintf("exception %d (error code %#x)", e.Vector, e.ErrorCode)
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
