package kvm

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// A thread's user context is its general registers as user code sees them.
// Where it lives depends on where the vCPU stopped: in the registers while
// user code runs, in the slot (RIP, RSP, RFLAGS) at a system call, on the
// ring-0 stack at an exception. These helpers read it from the right place
// and enter user code with a new one, bypassing the stub, so that the
// kernel can start threads, deliver signals and return from them with any
// register values.

// InUserCode reports whether the vCPU stopped in user code (at a kick): its
// registers are then the user context.
func (c *VCPU) InUserCode() bool { return c.hdr.SyncRegs.RIP < KernelBase }

// AtReturn reports whether the vCPU stopped at the stub's final iretq (at a
// kick, or at an ExitReturn): the user context is then SyscallUserRegs.
func (c *VCPU) AtReturn() bool {
	return c.hdr.SyncRegs.RIP == c.window+windowCode+stubSyscallEntry+uint64(syscallEntryAt.iret)
}

// SyscallUserRegs is the user context at a system call (ExitSyscall,
// ExitReturn, or AtReturn): the registers with RIP, RSP and RFLAGS from the
// slot, and RCX and R11 as the syscall instruction left them.
func (c *VCPU) SyscallUserRegs() Regs {
	r := c.hdr.SyncRegs
	r.RIP, r.RSP, r.RFLAGS = c.SyscallContext()
	r.RCX, r.R11 = r.RIP, r.RFLAGS
	return r
}

// ExceptionUserRegs is the user context at an ExitException.
func (c *VCPU) ExceptionUserRegs(e Exit) Regs {
	r := c.hdr.SyncRegs
	r.RIP, r.RSP, r.RFLAGS = e.RIP, e.RSP, e.RFLAGS
	return r
}

// SetReturnExit makes system calls that return to user code stop with
// ExitReturn first (while on), so the host can deliver a signal.
func (c *VCPU) SetReturnExit(on bool) {
	v := uint32(0)
	if on {
		v = 1
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&c.slot()[slotReturnExit])), v)
}

// SetUserRegs makes the next Run enter user code with context r on
// page-table root cr3. RFLAGS keeps only the flags user code may set.
func (c *VCPU) SetUserRegs(cr3 uint64, r Regs) error {
	if err := c.setSystemRegisters(cr3); err != nil {
		return err
	}
	r.RFLAGS = r.RFLAGS&userRFLAGSMask | UserRFLAGS
	if _, err := ioctl(c.fd, ioctlSetRegs, uintptr(unsafe.Pointer(&r))); err != nil {
		return fmt.Errorf("kvm: KVM_SET_REGS: %w", err)
	}
	c.hdr.SyncRegs = r
	c.hdr.DirtyRegs = 0
	return nil
}

// XSaveSize is the size of the XSAVE area KVM exchanges.
const XSaveSize = 4096

// XSave returns the FPU, SSE and AVX state in XSAVE format.
func (c *VCPU) XSave(dst *[XSaveSize]byte) error {
	if _, err := ioctl(c.fd, ioctlGetXSave, uintptr(unsafe.Pointer(dst))); err != nil {
		return fmt.Errorf("kvm: KVM_GET_XSAVE: %w", err)
	}
	return nil
}

// SetXSave loads the FPU, SSE and AVX state from an XSAVE area, as XRSTOR
// would. KVM refuses reserved MXCSR bits and unsupported features with
// EINVAL.
func (c *VCPU) SetXSave(src *[XSaveSize]byte) error {
	area := *src
	legacyAsXRSTOR(&area)
	if _, err := ioctl(c.fd, ioctlSetXSave, uintptr(unsafe.Pointer(&area))); err != nil {
		return fmt.Errorf("kvm: KVM_SET_XSAVE: %w", err)
	}
	return nil
}

// XSAVE area layout: the legacy region's control words and registers, and
// the header's XSTATE_BV, whose bits 0 and 1 are the x87 and SSE states.
const (
	xsaveFCW      = 0
	xsaveMXCSR    = 24
	xsaveST0      = 32
	xsaveXMM0     = 160
	xsaveXMMEnd   = 416
	xsaveStateBV  = 512
	xstateX87     = 1 << 0
	xstateSSE     = 1 << 1
	fcwInit       = 0x37f
	legacyStateBV = xstateX87 | xstateSSE
)

// legacyAsXRSTOR rewrites an XSAVE area so that KVM_SET_XSAVE loads what
// XRSTOR would. XRSTOR takes MXCSR from memory even when XSTATE_BV's SSE bit
// is clear and puts the x87 and XMM registers in their initial state for a
// clear bit; recent kernels instead skip MXCSR (and the x87 control words)
// unless the bit is set, so a program could inherit its predecessor's
// rounding mode. Writing the initial values and setting both bits gives the
// same state on every kernel.
func legacyAsXRSTOR(area *[XSaveSize]byte) {
	bv := binary.LittleEndian.Uint64(area[xsaveStateBV:])
	if bv&xstateX87 == 0 {
		clear(area[xsaveFCW:xsaveMXCSR])
		binary.LittleEndian.PutUint16(area[xsaveFCW:], fcwInit)
		clear(area[xsaveST0:xsaveXMM0])
	}
	if bv&xstateSSE == 0 {
		clear(area[xsaveXMM0:xsaveXMMEnd])
	}
	binary.LittleEndian.PutUint64(area[xsaveStateBV:], bv|legacyStateBV)
}

// FSBase reads the FS segment base.
func (c *VCPU) FSBase() (uint64, error) {
	s, err := c.Sregs()
	if err != nil {
		return 0, err
	}
	return s.FS.Base, nil
}
