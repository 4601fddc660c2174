package kvm

// Guest layout owned by this package.
//
// Guest-physical memory below ReservedBytes holds the shared kernel-region
// page tables, the stub code and, per vCPU, a slot page, a tables page
// (GDT, TSS, IDT) and a ring-0 stack page. Everything above it belongs to
// the caller's frame allocator.
//
// The kernel region is mapped at KernelBase through one top-level entry
// (KernelPML4Index) that every address space installs. vCPU i owns the
// window KernelBase + i*vcpuWindow: [code][slot][tables][kstack]. The stub
// code is one frame mapped in every window, so its RIP-relative operands
// reach the slot of the vCPU that runs it.
const (
	pageSize = 4096

	// MaxVCPUs bounds the vCPUs of one VM; the last window is the boot probe's.
	MaxVCPUs  = 256
	probeVCPU = MaxVCPUs - 1

	// KernelBase is the guest-virtual start of the kernel region.
	KernelBase = 0xffff_ffff_8000_0000
	// KernelPML4Index is the PML4 slot that maps the kernel region.
	KernelPML4Index = 511

	vcpuWindow    = 4 * pageSize
	windowCode    = 0
	windowSlot    = pageSize
	windowTables  = 2 * pageSize
	windowKStack  = 3 * pageSize
	kernelPTPages = MaxVCPUs * vcpuWindow / pageSize / 512
	pdIndexBase   = (KernelBase >> 21) & 511

	gpaPDPT      = 0x1000
	gpaPD        = 0x2000
	gpaPT        = 0x3000
	gpaCode      = gpaPT + kernelPTPages*pageSize
	gpaPerVCPU   = gpaCode + pageSize
	perVCPUPages = 3 // slot, tables, kstack
	// gpaProbeRoot is the PML4 of the address space the boot probe runs in.
	gpaProbeRoot = gpaPerVCPU + MaxVCPUs*perVCPUPages*pageSize

	// ReservedBytes is the guest-physical memory this package owns.
	ReservedBytes = (gpaProbeRoot + pageSize + 0xfffff) &^ 0xfffff
)

// Segment selectors: Linux's, which the kvm-pvm host requires.
const (
	selKernelCS = 0x10
	selKernelDS = 0x18
	selUser32CS = 0x23
	selUserDS   = 0x2b
	selUserCS   = 0x33
	selTSS      = 0x40
)

// Page-table entry bits.
const (
	ptePresent = 1 << 0
	pteWrite   = 1 << 1
	pteUser    = 1 << 2
	pteNX      = 1 << 63
)

// Ports the stub uses to reach the host.
const (
	portSyscall   = 0x10
	portException = 0x11
	portReturn    = 0x12
)

// Slot page fields (offsets within the slot page).
const (
	slotUserRIP     = 0x00
	slotUserRSP     = 0x08
	slotUserRFLAGS  = 0x10
	slotFlushTLB    = 0x18
	slotMailbox     = 0x20 // uint32 Mailbox* state
	slotPolling     = 0x24 // uint32: non-zero while a host worker polls the mailbox
	slotSpinLimit   = 0x28 // uint32: pause iterations before the guest gives up and exits
	slotRequestNr   = 0x30
	slotRequestArgs = 0x38 // six uint64
	slotResult      = 0x68
	slotReturnExit  = 0x70 // uint32: non-zero makes the syscall return path exit before iretq
	slotPostMask    = 0x80 // PostableSyscalls bits: the syscall numbers the guest posts
	slotStackTop    = pageSize
)

// PostableSyscalls bounds the syscall numbers the guest may post to the
// mailbox; larger ones always take the exit.
const PostableSyscalls = 512

// Mailbox states. The guest posts a request (Idle -> Posted); a host worker
// takes it (Posted -> Taken) and completes it (Taken -> Done, result
// written first) or declines it (Taken -> Declined: the guest exits and the
// vCPU's thread serves it). The guest returns Done to Idle; at an exit the
// host returns the mailbox to Idle.
const (
	MailboxIdle     = 0
	MailboxPosted   = 1
	MailboxTaken    = 2
	MailboxDone     = 3
	MailboxDeclined = 4
)

// Tables page layout.
const (
	tablesGDT  = 0x000
	gdtEntries = 10
	tablesTSS  = 0x100
	tssSize    = 104 + ioBitmapSize
	// The I/O permission bitmap lets the stub reach its three ports where it
	// runs at CPL 3 (kvm-pvm); every other port is denied.
	ioBitmapSize = 4
	tablesIDT    = 0x200
	idtVectors   = 32
	idtEntrySz   = 16
)

func vcpuWindowBase(id int) uint64 { return KernelBase + uint64(id)*vcpuWindow }

func vcpuGPA(id, page int) uint64 {
	return gpaPerVCPU + uint64(id*perVCPUPages+page)*pageSize
}
