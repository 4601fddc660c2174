package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Features are the CPU features as the guest sees them, measured inside the
// guest at boot (on kvm-pvm the guest sees the host's CPUID and XCR0
// whatever the VMM configured).
type Features struct {
	CPUID1EDX, CPUID1ECX uint32 // leaf 1
	CPUID7EBX, CPUID7ECX uint32 // leaf 7, subleaf 0
	XCR0                 uint64
	XSaveSize            uint32 // bytes of XSAVE area for the enabled XCR0
	// StubAtCPL3 is true where the syscall entry runs at hardware CPL 3
	// (kvm-pvm): the stub then cannot flush the TLB and does not need to.
	StubAtCPL3 bool
	// TSCKHz is the guest's TSC frequency.
	TSCKHz uint64
}

// VM is one KVM virtual machine with guest-physical memory mem mapped at 0.
type VM struct {
	kvmFD, vmFD int
	mem         []byte
	runSize     int
	cpuid       *cpuid2
	xcr0        uint64
	features    Features

	mu    sync.Mutex
	vcpus [MaxVCPUs]*VCPU
	// tscOffset is guest TSC minus host TSC, measured at boot.
	tscOffset int64
}

// ErrNoKVM is returned when /dev/kvm cannot be used.
var ErrNoKVM = errors.New("kvm: /dev/kvm is not available")

func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		// A signal (Go's preemption SIGURG, a kick) can interrupt the slow
		// ones, KVM_CREATE_VM above all, before they change anything: try
		// again. KVM_RUN, whose EINTR means a kick, does not come here.
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return r, e
		}
		return r, nil
	}
}

// NewVM creates a VM over mem, the host view of guest-physical memory
// [0, len(mem)). The first ReservedBytes of mem are this package's.
func NewVM(mem []byte) (*VM, error) {
	if len(mem) < ReservedBytes+pageSize || len(mem)%pageSize != 0 {
		return nil, fmt.Errorf("kvm: guest memory of %d bytes is too small or unaligned", len(mem))
	}
	kfd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKVM, err)
	}
	vm := &VM{kvmFD: kfd, vmFD: -1, mem: mem}
	if err := vm.init(); err != nil {
		vm.Close()
		return nil, err
	}
	return vm, nil
}

func (vm *VM) init() error {
	if v, err := ioctl(vm.kvmFD, ioctlGetAPIVersion, 0); err != nil || v != 12 {
		return fmt.Errorf("kvm: unsupported API version %d (%v)", v, err)
	}
	for _, c := range []uintptr{capSyncRegs, capImmediateExit} {
		if v, err := ioctl(vm.kvmFD, ioctlCheckExtension, c); err != nil || v == 0 {
			return fmt.Errorf("kvm: required capability %d missing", c)
		}
	}
	size, err := ioctl(vm.kvmFD, ioctlGetVCPUMmapSize, 0)
	if err != nil {
		return fmt.Errorf("kvm: KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	vm.runSize = int(size)
	fd, err := ioctl(vm.kvmFD, ioctlCreateVM, 0)
	if err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_VM: %w", err)
	}
	vm.vmFD = int(fd)
	unix.CloseOnExec(vm.vmFD)
	// Needed by Intel VMX hosts without unrestricted guest; harmless elsewhere.
	_, _ = ioctl(vm.vmFD, ioctlSetTSSAddr, 0xfffbd000)
	region := userspaceMemoryRegion{
		MemorySize:    uint64(len(vm.mem)),
		UserspaceAddr: uint64(uintptr(unsafe.Pointer(&vm.mem[0]))),
	}
	if _, err := ioctl(vm.vmFD, ioctlSetUserMemoryRegion, uintptr(unsafe.Pointer(&region))); err != nil {
		return fmt.Errorf("kvm: KVM_SET_USER_MEMORY_REGION: %w", err)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.cpuid == nil {
		cpuid := &cpuid2{Nent: maxCPUIDEntries}
		if _, err := ioctl(vm.kvmFD, ioctlGetSupportedCPUID, uintptr(unsafe.Pointer(cpuid))); err != nil {
			return fmt.Errorf("kvm: KVM_GET_SUPPORTED_CPUID: %w", err)
		}
		host.cpuid = cpuid
	}
	vm.cpuid = host.cpuid
	vm.xcr0 = vm.supportedXCR0()
	if err := vm.buildKernelRegion(); err != nil {
		return err
	}
	if host.probed {
		vm.features = host.features
		return vm.measureTSCOffset()
	}
	if err := vm.probe(); err != nil {
		return err
	}
	host.features, host.probed = vm.features, true
	return nil
}

// host caches what every VM of this process would find the same: the CPUID
// KVM supports and what the probe sees, which depend only on the host CPU
// and KVM. Measuring them once saves a vCPU and four exits per sandbox.
var host struct {
	mu       sync.Mutex
	cpuid    *cpuid2 // read-only once set
	probed   bool
	features Features
}

// measureTSCOffset reads the guest TSC's offset on the first vCPU, which
// stays in the pool for the first thread.
func (vm *VM) measureTSCOffset() error {
	c, err := vm.NewVCPU()
	if err != nil {
		return err
	}
	defer c.Close()
	vm.tscOffset, err = c.TSCOffset()
	return err
}

// supportedXCR0 is the XCR0 to enable: the user-visible state components
// KVM supports (x87, SSE, AVX, AVX-512), so that CPUID and XCR0 agree.
func (vm *VM) supportedXCR0() uint64 {
	const userStates = 0x1 | 0x2 | 0x4 | 0x20 | 0x40 | 0x80
	for i := uint32(0); i < vm.cpuid.Nent; i++ {
		e := &vm.cpuid.Entries[i]
		if e.Function == 0xd && e.Index == 0 {
			return (uint64(e.EDX)<<32 | uint64(e.EAX)) & userStates
		}
	}
	return 0x3
}

func (vm *VM) put64(gpa uint64, v uint64) { binary.LittleEndian.PutUint64(vm.mem[gpa:], v) }

// buildKernelRegion writes the kernel-region page tables, the stub code and
// every vCPU's tables page.
func (vm *VM) buildKernelRegion() error {
	code, err := buildStubPage()
	if err != nil {
		return err
	}
	copy(vm.mem[gpaCode:], code)
	vm.put64(gpaPDPT+8*((KernelBase>>30)&511), gpaPD|ptePresent|pteWrite|pteUser)
	for i := uint64(0); i < kernelPTPages; i++ {
		vm.put64(gpaPD+8*(pdIndexBase+i), (gpaPT+i*pageSize)|ptePresent|pteWrite|pteUser)
	}
	vm.put64(gpaProbeRoot+8*KernelPML4Index, vm.KernelPML4Entry())
	return nil
}

// mapWindow maps vCPU id's window. The slot is user-writable only where the
// stub runs at CPL 3 and therefore needs it; at CPL 0 it is supervisor-only.
func (vm *VM) mapWindow(id int) {
	slotUser := uint64(0)
	if vm.features.StubAtCPL3 {
		slotUser = pteUser
	}
	pte := func(off int, v uint64) {
		idx := uint64(id)*vcpuWindow/pageSize + uint64(off)/pageSize
		vm.put64(gpaPT+8*idx, v)
	}
	pte(windowCode, gpaCode|ptePresent|pteUser)
	pte(windowSlot, vcpuGPA(id, 0)|ptePresent|pteWrite|slotUser|pteNX)
	pte(windowTables, vcpuGPA(id, 1)|ptePresent|pteWrite|pteNX)
	pte(windowKStack, vcpuGPA(id, 2)|ptePresent|pteWrite|pteNX)
	vm.writeTables(id)
}

// writeTables fills vCPU id's GDT, TSS and IDT.
func (vm *VM) writeTables(id int) {
	tables := vcpuGPA(id, 1)
	window := vcpuWindowBase(id)
	gdt := tables + tablesGDT
	vm.put64(gdt+8*2, 0x00af9b000000ffff) // kernel code64
	vm.put64(gdt+8*3, 0x00cf93000000ffff) // kernel data
	vm.put64(gdt+8*4, 0x00cffb000000ffff) // user code32
	vm.put64(gdt+8*5, 0x00cff3000000ffff) // user data
	vm.put64(gdt+8*6, 0x00affb000000ffff) // user code64
	tss := window + windowTables + tablesTSS
	vm.put64(gdt+8*8, (tssSize-1)|(tss&0xffffff)<<16|0x89<<40|((tss>>24)&0xff)<<56)
	vm.put64(gdt+8*9, tss>>32)
	tssGPA := tables + tablesTSS
	vm.put64(tssGPA+4, window+windowKStack+pageSize) // RSP0
	binary.LittleEndian.PutUint16(vm.mem[tssGPA+102:], tssSize-ioBitmapSize)
	bitmap := vm.mem[tssGPA+tssSize-ioBitmapSize : tssGPA+tssSize]
	for i := range bitmap {
		bitmap[i] = 0xff
	}
	for _, port := range []int{portSyscall, portException, portReturn} {
		bitmap[port/8] &^= 1 << (port % 8)
	}
	for v := 0; v < idtVectors; v++ {
		handler := window + windowCode + stubExceptionEntry + uint64(v*stubExceptionStride)
		dpl := uint64(0)
		if v == 3 || v == 4 {
			dpl = 3 // int3 and into are allowed from user mode, as on Linux
		}
		e := tables + tablesIDT + uint64(v*idtEntrySz)
		vm.put64(e, handler&0xffff|selKernelCS<<16|(0x8e|dpl<<5)<<40|((handler>>16)&0xffff)<<48)
		vm.put64(e+8, handler>>32)
	}
}

// KernelPML4Entry is the top-level page-table entry that every address
// space must install at KernelPML4Index.
func (vm *VM) KernelPML4Entry() uint64 { return gpaPDPT | ptePresent | pteWrite | pteUser }

// Features reports the CPU features measured inside the guest.
func (vm *VM) Features() Features { return vm.features }

// Memory is the host view of guest-physical memory.
func (vm *VM) Memory() []byte { return vm.mem }

// Close releases the VM's host resources, its vCPUs included. No vCPU may
// be running.
func (vm *VM) Close() error {
	vm.mu.Lock()
	for i, c := range vm.vcpus {
		if c != nil {
			c.release()
			vm.vcpus[i] = nil
		}
	}
	vm.mu.Unlock()
	if vm.vmFD >= 0 {
		unix.Close(vm.vmFD)
		vm.vmFD = -1
	}
	if vm.kvmFD >= 0 {
		unix.Close(vm.kvmFD)
		vm.kvmFD = -1
	}
	return nil
}

// Available reports whether /dev/kvm can be opened for reading and writing.
func Available() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoKVM, err)
	}
	return f.Close()
}

// GuestTSC reads the time-stamp counter as the guest sees it now.
func (vm *VM) GuestTSC() uint64 { return uint64(int64(hostTSC()) + vm.tscOffset) }
