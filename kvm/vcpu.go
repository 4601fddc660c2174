package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	msrSTAR   = 0xc0000081
	msrLSTAR  = 0xc0000082
	msrCSTAR  = 0xc0000083
	msrSFMASK = 0xc0000084
	msrFSBase = 0xc0000100

	cr0PE = 1 << 0
	cr0MP = 1 << 1
	cr0ET = 1 << 4
	cr0NE = 1 << 5
	cr0WP = 1 << 16
	cr0PG = 1 << 31

	cr4PAE        = 1 << 5
	cr4OSFXSR     = 1 << 9
	cr4OSXMMEXCPT = 1 << 10
	cr4OSXSAVE    = 1 << 18

	eferSCE = 1 << 0
	eferLME = 1 << 8
	eferLMA = 1 << 10
	eferNXE = 1 << 11

	// sfmask clears TF, DF, IF, IOPL, NT and AC on syscall entry, as Linux.
	sfmask = 0x47700

	// UserRFLAGS is the RFLAGS a user thread starts with (IF and the fixed bit).
	UserRFLAGS = 0x202
	// userRFLAGSMask is what the host may set in a user RFLAGS.
	userRFLAGSMask = 0xcd5 | 1<<10 | 1<<8 | 1<<18 | 1<<21 // CF PF AF ZF SF OF DF TF AC ID
)

// VCPU is one virtual CPU. Run must always be called from the same OS
// thread (the caller locks its goroutine); Kick may be called from anywhere.
type VCPU struct {
	vm     *VM
	id     int
	fd     int
	run    []byte
	hdr    *runHeader
	tid    atomic.Int32
	kicked atomic.Bool
	mu     sync.Mutex // orders Kick against Close
	window uint64     // guest-virtual base of this vCPU's window
	inUse  bool       // guarded by vm.mu
}

// NewVCPU returns a vCPU with its own stub window. KVM cannot destroy a
// vCPU before its VM, so closed vCPUs are kept and handed out again.
func (vm *VM) NewVCPU() (*VCPU, error) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for i := 0; i < probeVCPU; i++ {
		c := vm.vcpus[i]
		if c == nil {
			c, err := vm.newVCPU(i)
			if err != nil {
				return nil, err
			}
			vm.vcpus[i] = c
			c.inUse = true
			return c, nil
		}
		if !c.inUse {
			c.inUse = true
			c.kicked.Store(false)
			c.resetMailbox()
			return c, nil
		}
	}
	return nil, fmt.Errorf("kvm: all %d vCPUs in use", probeVCPU)
}

func (vm *VM) newVCPU(id int) (*VCPU, error) {
	fd, err := ioctl(vm.vmFD, ioctlCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VCPU: %w", err)
	}
	unix.CloseOnExec(int(fd))
	c := &VCPU{vm: vm, id: id, fd: int(fd), window: vcpuWindowBase(id)}
	c.run, err = unix.Mmap(c.fd, 0, vm.runSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(c.fd)
		return nil, fmt.Errorf("kvm: mmap kvm_run: %w", err)
	}
	c.hdr = (*runHeader)(unsafe.Pointer(&c.run[0]))
	if err := c.setup(); err != nil {
		c.release()
		return nil, err
	}
	return c, nil
}

func (c *VCPU) setup() error {
	vm := c.vm
	vm.mapWindow(c.id)
	if _, err := ioctl(c.fd, ioctlSetCPUID2, uintptr(unsafe.Pointer(vm.cpuid))); err != nil {
		return fmt.Errorf("kvm: KVM_SET_CPUID2: %w", err)
	}
	m := msrs{Nmsrs: 4}
	m.Entries[0] = msrEntry{Index: msrSTAR, Data: uint64(selUser32CS)<<48 | uint64(selKernelCS)<<32}
	m.Entries[1] = msrEntry{Index: msrLSTAR, Data: c.window + windowCode + stubSyscallEntry}
	m.Entries[2] = msrEntry{Index: msrCSTAR, Data: c.window + windowCode + stubSyscallEntry}
	m.Entries[3] = msrEntry{Index: msrSFMASK, Data: sfmask}
	if n, err := ioctl(c.fd, ioctlSetMSRs, uintptr(unsafe.Pointer(&m))); err != nil || n != 4 {
		return fmt.Errorf("kvm: KVM_SET_MSRS set %d of 4: %v", n, err)
	}
	if err := c.setSystemRegisters(0); err != nil {
		return err
	}
	x := xcrs{NrXCRs: 1}
	x.XCRs[0] = xcr{XCR: 0, Value: vm.xcr0}
	// kvm-pvm accepts this but the guest sees the host's XCR0 anyway; the
	// features are measured inside the guest (probe).
	_, _ = ioctl(c.fd, ioctlSetXCRs, uintptr(unsafe.Pointer(&x)))
	c.hdr.ValidRegs = syncRegs
	return nil
}

func flatSegment(sel uint16, typ, dpl, l, db uint8) Segment {
	return Segment{Limit: 0xffffffff, Selector: sel, Type: typ, Present: 1, DPL: dpl, S: 1, L: l, DB: db, G: 1}
}

// setSystemRegisters puts the vCPU in 64-bit user mode on page-table root cr3.
func (c *VCPU) setSystemRegisters(cr3 uint64) error {
	var s Sregs
	if _, err := ioctl(c.fd, ioctlGetSregs, uintptr(unsafe.Pointer(&s))); err != nil {
		return fmt.Errorf("kvm: KVM_GET_SREGS: %w", err)
	}
	tables := c.window + windowTables
	s.CR0 = cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0PG
	s.CR3 = cr3
	s.CR4 = cr4PAE | cr4OSFXSR | cr4OSXMMEXCPT | cr4OSXSAVE
	s.EFER = eferSCE | eferLME | eferLMA | eferNXE
	s.CS = flatSegment(selUserCS, 11, 3, 1, 0)
	s.SS = flatSegment(selUserDS, 3, 3, 0, 1)
	s.DS, s.ES = s.SS, s.SS
	fs, gs := s.FS.Base, s.GS.Base
	s.FS, s.GS = s.SS, s.SS
	s.FS.Base, s.GS.Base = fs, gs
	s.GDT = dtable{Base: tables + tablesGDT, Limit: gdtEntries*8 - 1}
	s.IDT = dtable{Base: tables + tablesIDT, Limit: idtVectors*idtEntrySz - 1}
	s.TR = Segment{Base: tables + tablesTSS, Limit: tssSize - 1, Selector: selTSS, Type: 11, Present: 1}
	s.LDT = Segment{Unusable: 1}
	if _, err := ioctl(c.fd, ioctlSetSregs, uintptr(unsafe.Pointer(&s))); err == nil {
		return nil
	}
	// Hosts whose CPUID table lacks XSAVE refuse CR4.OSXSAVE.
	s.CR4 &^= cr4OSXSAVE
	if _, err := ioctl(c.fd, ioctlSetSregs, uintptr(unsafe.Pointer(&s))); err != nil {
		return fmt.Errorf("kvm: KVM_SET_SREGS: %w", err)
	}
	return nil
}

// ID is the vCPU's index in its VM.
func (c *VCPU) ID() int { return c.id }

// Regs returns the general registers as of the last exit. Changes take
// effect at the next Run after MarkRegsDirty.
func (c *VCPU) Regs() *Regs { return &c.hdr.SyncRegs }

// MarkRegsDirty makes the next Run load the registers from Regs.
func (c *VCPU) MarkRegsDirty() { c.hdr.DirtyRegs |= syncRegs }

// EnterUser sets up the vCPU to start user code at rip with stack rsp on
// page-table root cr3, all other general registers zero.
func (c *VCPU) EnterUser(cr3, rip, rsp uint64) error {
	return c.enter(cr3, rip, rsp, UserRFLAGS)
}

func (c *VCPU) enter(cr3, rip, rsp, rflags uint64) error {
	if err := c.setSystemRegisters(cr3); err != nil {
		return err
	}
	r := Regs{RIP: rip, RSP: rsp, RFLAGS: rflags}
	if _, err := ioctl(c.fd, ioctlSetRegs, uintptr(unsafe.Pointer(&r))); err != nil {
		return fmt.Errorf("kvm: KVM_SET_REGS: %w", err)
	}
	c.hdr.DirtyRegs = 0
	return nil
}

func (c *VCPU) slot() []byte {
	off := vcpuGPA(c.id, 0)
	return c.vm.mem[off : off+pageSize]
}

// SyscallContext is where a syscall returns to: the user RIP, RSP and RFLAGS
// the stub saved at entry.
func (c *VCPU) SyscallContext() (rip, rsp, rflags uint64) {
	s := c.slot()
	return binary.LittleEndian.Uint64(s[slotUserRIP:]),
		binary.LittleEndian.Uint64(s[slotUserRSP:]),
		binary.LittleEndian.Uint64(s[slotUserRFLAGS:])
}

// SetSyscallContext changes where the current syscall returns to. Only the
// arithmetic, direction, trap, alignment and ID flags of rflags are kept.
func (c *VCPU) SetSyscallContext(rip, rsp, rflags uint64) {
	s := c.slot()
	binary.LittleEndian.PutUint64(s[slotUserRIP:], rip)
	binary.LittleEndian.PutUint64(s[slotUserRSP:], rsp)
	binary.LittleEndian.PutUint64(s[slotUserRFLAGS:], rflags&userRFLAGSMask|UserRFLAGS)
}

// FlushTLBOnReturn makes the guest flush its TLB before the current syscall
// returns to user code. Where the stub runs at CPL 3 (kvm-pvm) it cannot and
// need not: the host's madvise/mprotect already dropped the shadow entries.
func (c *VCPU) FlushTLBOnReturn() {
	if !c.vm.features.StubAtCPL3 {
		c.slot()[slotFlushTLB] = 1
	}
}

// SetFSBase sets the FS segment base (arch_prctl(ARCH_SET_FS)).
func (c *VCPU) SetFSBase(base uint64) error {
	m := msrs{Nmsrs: 1}
	m.Entries[0] = msrEntry{Index: msrFSBase, Data: base}
	if n, err := ioctl(c.fd, ioctlSetMSRs, uintptr(unsafe.Pointer(&m))); err != nil || n != 1 {
		return fmt.Errorf("kvm: set FS base: %v", err)
	}
	return nil
}

// Sregs reads the system registers.
func (c *VCPU) Sregs() (Sregs, error) {
	var s Sregs
	_, err := ioctl(c.fd, ioctlGetSregs, uintptr(unsafe.Pointer(&s)))
	return s, err
}

// Kick makes the current or next Run return an ExitKicked promptly: it sets
// immediate_exit and signals the vCPU's thread (SIGURG, which the Go runtime
// already handles), so a guest spinning in user code is interrupted too.
func (c *VCPU) Kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run == nil {
		return
	}
	c.kicked.Store(true)
	(*atomic.Uint32)(unsafe.Pointer(&c.run[0])).Or(1 << 8) // immediate_exit, byte 1
	if tid := c.tid.Load(); tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
	}
}

// ErrClosed is returned by Run on a closed vCPU.
var ErrClosed = errors.New("kvm: vCPU closed")

// Run enters the guest until an exit that the caller must handle.
func (c *VCPU) Run() (Exit, error) {
	if c.fd < 0 {
		return Exit{}, ErrClosed
	}
	c.tid.Store(int32(unix.Gettid()))
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(c.fd), ioctlRun, 0)
		c.hdr.DirtyRegs = 0
		switch e {
		case 0:
		case unix.EINTR, unix.EAGAIN:
			(*atomic.Uint32)(unsafe.Pointer(&c.run[0])).And(^uint32(0xff00))
			if c.kicked.Swap(false) {
				return Exit{Kind: ExitKicked}, nil
			}
			continue
		default:
			return Exit{}, fmt.Errorf("kvm: KVM_RUN: %w", e)
		}
		return c.decodeExit(), nil
	}
}

// Close hands the vCPU back to its VM for reuse.
func (c *VCPU) Close() error {
	c.vm.mu.Lock()
	c.inUse = false
	c.vm.mu.Unlock()
	return nil
}

func (c *VCPU) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != nil {
		unix.Munmap(c.run)
		c.run, c.hdr = nil, nil
	}
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}
