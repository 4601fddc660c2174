package kvm

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/arch/x86/x86asm"
)

// ExitKind says why Run returned.
type ExitKind int

const (
	// ExitSyscall: the guest made a system call; the number and arguments are
	// in Regs (RAX, RDI, RSI, RDX, R10, R8, R9); the result goes to RAX.
	ExitSyscall ExitKind = iota
	// ExitException: user code raised a CPU exception (Vector, ErrorCode,
	// CR2 and the interrupted user context are set).
	ExitException
	// ExitKicked: Kick was called.
	ExitKicked
	// ExitFatal: the guest is in a state it cannot continue from (Reason).
	ExitFatal
	// ExitReturn: a system call is about to return to user code and the
	// host asked to see it (SetReturnExit); RAX holds the result and
	// SyscallUserRegs the user context.
	ExitReturn
)

// Exception vectors.
const (
	VectorDivide       = 0
	VectorDebug        = 1
	VectorBreakpoint   = 3
	VectorOverflow     = 4
	VectorBound        = 5
	VectorInvalidOp    = 6
	VectorDeviceNA     = 7
	VectorDoubleFault  = 8
	VectorInvalidTSS   = 10
	VectorSegmentNP    = 11
	VectorStack        = 12
	VectorGP           = 13
	VectorPageFault    = 14
	VectorX87          = 16
	VectorAlignment    = 17
	VectorMachineCheck = 18
	VectorSIMD         = 19
)

// Exit describes one exit from Run.
type Exit struct {
	Kind      ExitKind
	Vector    int
	ErrorCode uint64
	CR2       uint64
	// User context at an exception: where it happened.
	RIP, RSP, RFLAGS, CS uint64
	// Reason explains an ExitFatal.
	Reason string
}

func (c *VCPU) decodeExit() Exit {
	h := c.hdr
	switch h.ExitReason {
	case exitIO:
		io := (*ioExit)(unsafe.Pointer(&h.Exit[0]))
		rip := h.SyncRegs.RIP
		switch {
		case io.Port == portSyscall && c.inStub(rip, stubSyscallEntry+syscallEntryAt.syscallOut):
			return Exit{Kind: ExitSyscall}
		case io.Port == portReturn && c.inStub(rip, stubSyscallEntry+syscallEntryAt.returnOut):
			return Exit{Kind: ExitReturn}
		case io.Port == portException && c.inStub(rip, stubExceptionCommon):
			return c.exceptionExit()
		}
		return c.fatal(fmt.Sprintf("unexpected port I/O %#x at %#x", io.Port, rip))
	case exitShutdown:
		return c.fatal("shutdown (triple fault)")
	case exitFailEntry:
		return c.fatal(fmt.Sprintf("VM entry failed (reason %#x)", binary.LittleEndian.Uint64(h.Exit[:8])))
	case exitInternalError:
		ie := (*internalExit)(unsafe.Pointer(&h.Exit[0]))
		return c.fatal(fmt.Sprintf("KVM internal error (suberror %d)", ie.Suberror))
	case exitHLT:
		return c.fatal("hlt")
	case exitMMIO:
		return c.fatal(fmt.Sprintf("access to guest-physical %#x outside memory", binary.LittleEndian.Uint64(h.Exit[:8])))
	}
	return c.fatal(fmt.Sprintf("unexpected exit reason %d", h.ExitReason))
}

// inStub reports whether rip is the `out` at off in this vCPU's stub, or
// just past it (KVM reports one or the other depending on the host).
func (c *VCPU) inStub(rip uint64, off int) bool {
	at := c.window + windowCode + uint64(off)
	return rip == at || rip == at+2
}

// exceptionExit reads the frame the exception entry left on the ring-0 stack:
// vector, error code, RIP, CS, RFLAGS, RSP, SS.
func (c *VCPU) exceptionExit() Exit {
	rsp := c.hdr.SyncRegs.RSP
	kstack := c.window + windowKStack
	if rsp < kstack || rsp+7*8 > kstack+pageSize {
		return c.fatal(fmt.Sprintf("exception frame outside the ring-0 stack (rsp %#x)", rsp))
	}
	frame := c.vm.mem[vcpuGPA(c.id, 2)+(rsp-kstack):]
	word := func(i int) uint64 { return binary.LittleEndian.Uint64(frame[8*i:]) }
	e := Exit{Kind: ExitException, Vector: int(word(0)), ErrorCode: word(1), RIP: word(2), CS: word(3), RFLAGS: word(4), RSP: word(5)}
	if e.Vector == VectorPageFault {
		s, err := c.Sregs()
		if err != nil {
			return c.fatal(fmt.Sprintf("reading CR2: %v", err))
		}
		e.CR2 = s.CR2
	}
	return e
}

func (c *VCPU) fatal(reason string) Exit {
	return Exit{Kind: ExitFatal, Reason: reason, RIP: c.hdr.SyncRegs.RIP, RSP: c.hdr.SyncRegs.RSP, RFLAGS: c.hdr.SyncRegs.RFLAGS}
}

// DumpRegisters formats the general registers for a crash report.
func DumpRegisters(r *Regs) string {
	var b strings.Builder
	row := func(names []string, vals ...uint64) {
		for i, n := range names {
			fmt.Fprintf(&b, "%-3s %016x  ", n, vals[i])
		}
		b.WriteString("\n")
	}
	row([]string{"rax", "rbx", "rcx", "rdx"}, r.RAX, r.RBX, r.RCX, r.RDX)
	row([]string{"rsi", "rdi", "rbp", "rsp"}, r.RSI, r.RDI, r.RBP, r.RSP)
	row([]string{"r8", "r9", "r10", "r11"}, r.R8, r.R9, r.R10, r.R11)
	row([]string{"r12", "r13", "r14", "r15"}, r.R12, r.R13, r.R14, r.R15)
	row([]string{"rip", "flg"}, r.RIP, r.RFLAGS)
	return strings.TrimRight(b.String(), " \n")
}

// DecodeInstruction disassembles the instruction at the start of code
// (read from the guest at rip) in GNU syntax.
func DecodeInstruction(code []byte, rip uint64) string {
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		return fmt.Sprintf("(undecodable: % x)", code[:min(len(code), 8)])
	}
	return fmt.Sprintf("%s  (% x)", x86asm.GNUSyntax(inst, rip, nil), code[:inst.Len])
}
