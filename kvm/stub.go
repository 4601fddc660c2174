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
	stubExceptionCommon = 0x100
	stubExceptionEntry  = 0x140
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
	code   []byte
	org    int            // offset in the code page of code[0]
	labels map[string]int // label -> offset in code
	fixups map[int]string // offset of a rel8 byte -> label it reaches
}

func newAssembler(org int) *assembler {
	return &assembler{org: org, labels: map[string]int{}, fixups: map[int]string{}}
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

func (a *assembler) label(name string) { a.labels[name] = len(a.code) }

// jump8 emits a short jump (op 0xeb) or conditional jump (0x7x) to label.
func (a *assembler) jump8(op byte, label string) {
	a.emit(op, 0)
	a.fixups[len(a.code)-1] = label
}

// link resolves the short jumps.
func (a *assembler) link() []byte {
	for at, name := range a.fixups {
		rel := a.labels[name] - (at + 1)
		if rel < -128 || rel > 127 {
			panic("kvm: stub jump out of range: " + name)
		}
		a.code[at] = byte(int8(rel))
	}
	return a.code
}

const (
	opJmp = 0xeb
	opJnc = 0x73
	opJe  = 0x74
	opJne = 0x75
	opJa  = 0x77
)

// buildSyscallEntry assembles the syscall entry:
//
//	save user RSP, RIP (RCX) and RFLAGS (R11) in the slot; switch stacks
//	if the host polls the mailbox and the post mask has RAX's bit:
//	    copy RAX (number) and the six argument registers to the mailbox,
//	    mark it posted, and spin until the host marks it done (result in
//	    the mailbox) or declined; the spin is bounded while nobody has
//	    taken the request, unbounded while a worker serves it (workers
//	    serve only calls that never wait)
//	otherwise, or when declined or the spin runs out: exit with `out`
//	    (the host resolves the mailbox and writes RAX)
//	flush the TLB if the host asked (CPL 0 only), restore RCX and R11 as
//	Linux leaves them, build the iretq frame from the slot
//	if the host asked to see returns (a signal is pending): exit with `out`
//	iretq
//
// The return exit comes after the frame is built, so that a vCPU stopped
// anywhere in the stub either reaches an exit of its own or stands at the
// iretq, where its user context is exactly the slot's.
func buildSyscallEntry() ([]byte, stubOffsets) {
	a := newAssembler(stubSyscallEntry)
	slot := func(field int) int { return windowSlot + field }
	a.ripRel(slot(slotUserRSP), 0, 0x48, 0x89, 0x25)    // mov %rsp, slot.rsp
	a.ripRel(slot(slotUserRIP), 0, 0x48, 0x89, 0x0d)    // mov %rcx, slot.rip
	a.ripRel(slot(slotUserRFLAGS), 0, 0x4c, 0x89, 0x1d) // mov %r11, slot.rflags
	a.ripRel(slot(slotStackTop), 0, 0x48, 0x8d, 0x25)   // lea slot.stack_top, %rsp
	a.ripRel(slot(slotPolling), 1, 0x83, 0x3d)          // cmpl $0, slot.polling
	a.emit(0)
	a.jump8(opJe, "exit")
	a.emit(0x48, 0x3d) // cmp $PostableSyscalls-1, %rax
	a.code = binary.LittleEndian.AppendUint32(a.code, PostableSyscalls-1)
	a.jump8(opJa, "exit")
	a.ripRel(slot(slotPostMask), 0, 0x48, 0x0f, 0xa3, 0x05) // bt %rax, slot.post_mask
	a.jump8(opJnc, "exit")
	a.ripRel(slot(slotRequestNr), 0, 0x48, 0x89, 0x05)      // mov %rax, slot.nr
	a.ripRel(slot(slotRequestArgs), 0, 0x48, 0x89, 0x3d)    // mov %rdi, slot.args[0]
	a.ripRel(slot(slotRequestArgs+8), 0, 0x48, 0x89, 0x35)  // mov %rsi, slot.args[1]
	a.ripRel(slot(slotRequestArgs+16), 0, 0x48, 0x89, 0x15) // mov %rdx, slot.args[2]
	a.ripRel(slot(slotRequestArgs+24), 0, 0x4c, 0x89, 0x15) // mov %r10, slot.args[3]
	a.ripRel(slot(slotRequestArgs+32), 0, 0x4c, 0x89, 0x05) // mov %r8, slot.args[4]
	a.ripRel(slot(slotRequestArgs+40), 0, 0x4c, 0x89, 0x0d) // mov %r9, slot.args[5]
	a.ripRel(slot(slotMailbox), 4, 0xc7, 0x05)              // movl $posted, slot.mailbox
	a.code = binary.LittleEndian.AppendUint32(a.code, MailboxPosted)
	a.ripRel(slot(slotSpinLimit), 0, 0x8b, 0x0d) // mov slot.spin, %ecx
	a.label("spin")
	a.emit(0xf3, 0x90)                         // pause
	a.ripRel(slot(slotMailbox), 1, 0x83, 0x3d) // cmpl $done, slot.mailbox
	a.emit(MailboxDone)
	a.jump8(opJe, "done")
	a.ripRel(slot(slotMailbox), 1, 0x83, 0x3d) // cmpl $declined, slot.mailbox
	a.emit(MailboxDeclined)
	a.jump8(opJe, "exit")
	a.ripRel(slot(slotMailbox), 1, 0x83, 0x3d) // cmpl $taken, slot.mailbox
	a.emit(MailboxTaken)
	a.jump8(opJe, "spin") // a worker is on it: wait without counting
	a.emit(0xff, 0xc9)    // dec %ecx
	a.jump8(opJne, "spin")
	a.label("exit")
	a.emit(0xe6, portSyscall) // out %al, $portSyscall
	a.jump8(opJmp, "return")
	a.label("done")
	a.ripRel(slot(slotResult), 0, 0x48, 0x8b, 0x05) // mov slot.result, %rax
	a.ripRel(slot(slotMailbox), 4, 0xc7, 0x05)      // movl $idle, slot.mailbox
	a.code = binary.LittleEndian.AppendUint32(a.code, MailboxIdle)
	a.label("return")
	a.ripRel(slot(slotFlushTLB), 1, 0xf6, 0x05) // testb $1, slot.flush
	a.emit(0x01)
	a.jump8(opJe, "frame")
	a.ripRel(slot(slotFlushTLB), 1, 0xc6, 0x05) // movb $0, slot.flush
	a.emit(0x00)
	a.emit(0x50)             // push %rax
	a.emit(0x0f, 0x20, 0xd8) // mov %cr3, %rax
	a.emit(0x0f, 0x22, 0xd8) // mov %rax, %cr3
	a.emit(0x58)             // pop %rax
	a.label("frame")
	a.ripRel(slot(slotUserRIP), 0, 0x48, 0x8b, 0x0d)    // mov slot.rip, %rcx
	a.ripRel(slot(slotUserRFLAGS), 0, 0x4c, 0x8b, 0x1d) // mov slot.rflags, %r11
	a.emit(0x6a, selUserDS)                             // push $SS
	a.ripRel(slot(slotUserRSP), 0, 0xff, 0x35)          // push slot.rsp
	a.emit(0x41, 0x53)                                  // push %r11 (RFLAGS)
	a.emit(0x6a, selUserCS)                             // push $CS
	a.emit(0x51)                                        // push %rcx (RIP)
	a.ripRel(slot(slotReturnExit), 1, 0x83, 0x3d)       // cmpl $0, slot.return_exit
	a.emit(0)
	a.jump8(opJe, "iret")
	a.emit(0xe6, portReturn) // out %al, $portReturn
	a.label("iret")
	a.emit(0x48, 0xcf) // iretq
	return a.link(), stubOffsets{syscallOut: a.labels["exit"], returnOut: a.labels["iret"] - 2, iret: a.labels["iret"]}
}

// stubOffsets locate the instructions of the syscall entry that the host
// must recognise: the two `out`s and the final iretq.
type stubOffsets struct {
	syscallOut, returnOut, iret int
}

// syscallEntryCode is the assembled syscall entry.
var syscallEntryCode, syscallEntryAt = buildSyscallEntry()

func buildExceptionCommon() []byte {
	a := newAssembler(stubExceptionCommon)
	a.emit(0xe6, portException)    // out %al, $portException
	a.emit(0x48, 0x83, 0xc4, 0x10) // add $16, %rsp
	a.emit(0x48, 0xcf)             // iretq
	return a.code
}

func buildExceptionEntry(v int) []byte {
	a := newAssembler(stubExceptionEntry + v*stubExceptionStride)
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
	a := newAssembler(stubProbe)
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
	if err := place(stubSyscallEntry, syscallEntryCode, stubExceptionCommon); err != nil {
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
