package kvm

import (
	"encoding/binary"
	"fmt"
)

// The guest stub: machine code in one page, mapped in every vCPU window.
// Operands that name slot fields are RIP-relative, so each vCPU's copy
// reaches its own slot page (the next page of its window).
//
// syscall entry (LSTAR): save the user RSP, RIP (RCX) and RFLAGS (R11) in
// the slot, move to the slot's own stack (the user's red zone is never
// touched), exit with `out`; when the host resumes, optionally reload CR3
// (hardware paging at CPL 0 only), then iretq through a frame built from the
// slot fields, which the host may have rewritten. iretq is legal both at
// CPL 0 (VMX/SVM) and at CPL 3 (kvm-pvm), so there is one return path.
//
// exception entries: push a dummy error code where the CPU pushes none,
// push the vector, exit with `out`; when resumed, drop both and iretq.
//
// probe: user-mode code run once per VM to read CPUID and XCR0 as the guest
// sees them, and to learn at which CPL the syscall entry runs.
const (
	stubSyscallEntry    = 0x000
	stubExceptionCommon = 0x0c0
	stubExceptionEntry  = 0x100
	stubExceptionStride = 16
	stubProbe           = 0x400
)

// vectorHasErrorCode reports whether the CPU pushes an error code.
func vectorHasErrorCode(v int) bool {
	switch v {
	case 8, 10, 11, 12, 13, 14, 17, 21, 29, 30:
		return true
	}
	return false
}

type assembler struct {
	code []byte
	org  int // offset in the code page of code[0]
}

func (a *assembler) pc() int { return a.org + len(a.code) }

func (a *assembler) emit(b ...byte) { a.code = append(a.code, b...) }

// ripRel emits opcode bytes followed by a disp32 that reaches target (an
// offset in the vCPU window); tail is the number of bytes that follow the
// displacement in the instruction (an immediate).
func (a *assembler) ripRel(target, tail int, op ...byte) {
	a.emit(op...)
	next := a.pc() + 4 + tail
	a.code = binary.LittleEndian.AppendUint32(a.code, uint32(int32(target-next)))
}

func (a *assembler) jmpRel32(target int) {
	a.emit(0xe9)
	a.code = binary.LittleEndian.AppendUint32(a.code, uint32(int32(target-(a.pc()+4))))
}

func buildSyscallEntry() []byte {
	a := &assembler{org: stubSyscallEntry}
	a.ripRel(windowSlot+slotUserRSP, 0, 0x48, 0x89, 0x25)    // mov %rsp, slot.rsp
	a.ripRel(windowSlot+slotUserRIP, 0, 0x48, 0x89, 0x0d)    // mov %rcx, slot.rip
	a.ripRel(windowSlot+slotUserRFLAGS, 0, 0x4c, 0x89, 0x1d) // mov %r11, slot.rflags
	a.ripRel(windowSlot+slotStackTop, 0, 0x48, 0x8d, 0x25)   // lea slot.stack_top, %rsp
	a.emit(0xe6, portSyscall)                                // out %al, $portSyscall
	a.ripRel(windowSlot+slotFlushTLB, 1, 0xf6, 0x05)         // testb $1, slot.flush
	a.emit(0x01)
	a.emit(0x74, 0x00) // jz frame
	jz := len(a.code) - 1
	a.ripRel(windowSlot+slotFlushTLB, 1, 0xc6, 0x05) // movb $0, slot.flush
	a.emit(0x00)
	a.emit(0x50)             // push %rax
	a.emit(0x0f, 0x20, 0xd8) // mov %cr3, %rax
	a.emit(0x0f, 0x22, 0xd8) // mov %rax, %cr3
	a.emit(0x58)             // pop %rax
	a.code[jz] = byte(len(a.code) - jz - 1)
	a.emit(0x6a, selUserDS)                            // push $SS
	a.ripRel(windowSlot+slotUserRSP, 0, 0xff, 0x35)    // push slot.rsp
	a.ripRel(windowSlot+slotUserRFLAGS, 0, 0xff, 0x35) // push slot.rflags
	a.emit(0x6a, selUserCS)                            // push $CS
	a.ripRel(windowSlot+slotUserRIP, 0, 0xff, 0x35)    // push slot.rip
	a.emit(0x48, 0xcf)                                 // iretq
	return a.code
}

// syscallOutOffset is the offset of the `out` in the syscall entry.
const syscallOutOffset = 4 * 7

func buildExceptionCommon() []byte {
	a := &assembler{org: stubExceptionCommon}
	a.emit(0xe6, portException)    // out %al, $portException
	a.emit(0x48, 0x83, 0xc4, 0x10) // add $16, %rsp
	a.emit(0x48, 0xcf)             // iretq
	return a.code
}

func buildExceptionEntry(v int) []byte {
	a := &assembler{org: stubExceptionEntry + v*stubExceptionStride}
	if !vectorHasErrorCode(v) {
		a.emit(0x6a, 0x00) // push $0
	}
	a.emit(0x6a, byte(v)) // push $v
	a.jmpRel32(stubExceptionCommon)
	return a.code
}

// buildProbe reads CPUID leaves 1, 7 and 0xD and XCR0, and reports each
// through the syscall entry (ECX moved to ESI, since syscall clobbers RCX),
// so the host also sees the CPL at which that entry runs.
func buildProbe() []byte {
	a := &assembler{org: stubProbe}
	for _, leaf := range []byte{1, 7, 0xd} {
		a.emit(0xb8, leaf, 0, 0, 0) // mov $leaf, %eax
		a.emit(0x31, 0xc9)          // xor %ecx, %ecx
		a.emit(0x0f, 0xa2)          // cpuid
		a.emit(0x89, 0xce)          // mov %ecx, %esi
		a.emit(0x0f, 0x05)          // syscall
	}
	a.emit(0x31, 0xc9)       // xor %ecx, %ecx
	a.emit(0x0f, 0x01, 0xd0) // xgetbv
	a.emit(0x0f, 0x05)       // syscall
	a.emit(0xeb, 0xfe)       // jmp .
	return a.code
}

// probeReports is the number of syscalls the probe makes.
const probeReports = 4

// buildStubPage assembles the whole code page.
func buildStubPage() ([]byte, error) {
	page := make([]byte, pageSize)
	place := func(off int, code []byte, limit int) error {
		if off+len(code) > limit {
			return fmt.Errorf("kvm: stub piece at %#x overflows its room (%d bytes)", off, len(code))
		}
		copy(page[off:], code)
		return nil
	}
	if err := place(stubSyscallEntry, buildSyscallEntry(), stubExceptionCommon); err != nil {
		return nil, err
	}
	if err := place(stubExceptionCommon, buildExceptionCommon(), stubExceptionEntry); err != nil {
		return nil, err
	}
	for v := 0; v < idtVectors; v++ {
		off := stubExceptionEntry + v*stubExceptionStride
		if err := place(off, buildExceptionEntry(v), off+stubExceptionStride); err != nil {
			return nil, err
		}
	}
	if err := place(stubProbe, buildProbe(), pageSize); err != nil {
		return nil, err
	}
	return page, nil
}
