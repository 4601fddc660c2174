package kvm

import "unsafe"

// ioctl numbers and structures of the KVM API (include/uapi/linux/kvm.h,
// x86-64). golang.org/x/sys/unix does not define them.
const (
	ioctlGetAPIVersion       = 0xAE00
	ioctlCreateVM            = 0xAE01
	ioctlCheckExtension      = 0xAE03
	ioctlGetVCPUMmapSize     = 0xAE04
	ioctlGetSupportedCPUID   = 0xC008AE05
	ioctlCreateVCPU          = 0xAE41
	ioctlSetUserMemoryRegion = 0x4020AE46
	ioctlSetTSSAddr          = 0xAE47
	ioctlRun                 = 0xAE80
	ioctlGetRegs             = 0x8090AE81
	ioctlSetRegs             = 0x4090AE82
	ioctlGetSregs            = 0x8138AE83
	ioctlSetSregs            = 0x4138AE84
	ioctlSetMSRs             = 0x4008AE89
	ioctlSetCPUID2           = 0x4008AE90
	ioctlSetXCRs             = 0x4188AEA7
	ioctlGetXSave            = 0x9000AEA4
	ioctlSetXSave            = 0x5000AEA5

	capSyncRegs      = 74
	capImmediateExit = 136

	syncRegs  = 1 << 0
	syncSregs = 1 << 1
)

// Exit reasons (kvm_run.exit_reason).
const (
	exitUnknown       = 0
	exitException     = 1
	exitIO            = 2
	exitHLT           = 5
	exitMMIO          = 6
	exitShutdown      = 8
	exitFailEntry     = 9
	exitInternalError = 17
)

// Regs is struct kvm_regs.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment is struct kvm_segment.
type Segment struct {
	Base                                           uint64
	Limit                                          uint32
	Selector                                       uint16
	Type, Present, DPL, DB, S, L, G, AVL, Unusable uint8
	_                                              uint8
}

type dtable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs is struct kvm_sregs.
type Sregs struct {
	CS, DS, ES, FS, GS, SS, TR, LDT Segment
	GDT, IDT                        dtable
	CR0, CR2, CR3, CR4, CR8, EFER   uint64
	APICBase                        uint64
	InterruptBitmap                 [4]uint64
}

type userspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

type cpuidEntry struct {
	Function, Index, Flags uint32
	EAX, EBX, ECX, EDX     uint32
	_                      [3]uint32
}

const maxCPUIDEntries = 256

type cpuid2 struct {
	Nent    uint32
	_       uint32
	Entries [maxCPUIDEntries]cpuidEntry
}

type msrEntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

type msrs struct {
	Nmsrs   uint32
	_       uint32
	Entries [4]msrEntry
}

type xcr struct {
	XCR   uint32
	_     uint32
	Value uint64
}

type xcrs struct {
	NrXCRs uint32
	Flags  uint32
	XCRs   [16]xcr
	_      [16]uint64
}

// runHeader is the start of struct kvm_run, up to and including the exit
// union (256 bytes), followed by the sync-register area.
type runHeader struct {
	RequestInterruptWindow uint8
	ImmediateExit          uint8
	_                      [6]uint8
	ExitReason             uint32
	ReadyForInjection      uint8
	IFFlag                 uint8
	Flags                  uint16
	CR8                    uint64
	APICBase               uint64
	Exit                   [256]byte
	ValidRegs              uint64
	DirtyRegs              uint64
	SyncRegs               Regs
	SyncSregs              Sregs
}

// ioExit is the io member of the kvm_run exit union.
type ioExit struct {
	Direction  uint8
	Size       uint8
	Port       uint16
	Count      uint32
	DataOffset uint64
}

// internalExit is the internal member of the kvm_run exit union.
type internalExit struct {
	Suberror uint32
	Ndata    uint32
	Data     [16]uint64
}

var _ = [1]struct{}{}[unsafe.Sizeof(Regs{})-144]
var _ = [1]struct{}{}[unsafe.Sizeof(Segment{})-24]
var _ = [1]struct{}{}[unsafe.Sizeof(Sregs{})-312]
var _ = [1]struct{}{}[unsafe.Offsetof(runHeader{}.SyncRegs)-304]
var _ = [1]struct{}{}[unsafe.Sizeof(xcrs{})-392]
