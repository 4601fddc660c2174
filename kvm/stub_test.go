package kvm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/x86/x86asm"
)

// disassemble decodes code assembled at offset org of the vCPU window and
// returns each instruction in GNU syntax, with RIP-relative operands shown
// as window offsets.
func disassemble(t *testing.T, code []byte, org int) []string {
	t.Helper()
	var out []string
	pc := org
	for len(code) > 0 {
		inst, err := x86asm.Decode(code, 64)
		require.NoError(t, err, "at %#x", pc)
		text := x86asm.GNUSyntax(inst, uint64(pc), nil)
		for _, arg := range inst.Args {
			if m, ok := arg.(x86asm.Mem); ok && m.Base == x86asm.RIP {
				at := strings.Index(text, "(%rip)")
				from := strings.LastIndexAny(text[:at], " ,") + 1
				text = fmt.Sprintf("%swindow+%#x%s", text[:from], pc+inst.Len+int(m.Disp), text[at+len("(%rip)"):])
			}
		}
		out = append(out, text)
		code = code[inst.Len:]
		pc += inst.Len
	}
	return out
}

func TestSyscallEntryDecodes(t *testing.T) {
	got := disassemble(t, syscallEntryCode, stubSyscallEntry)
	want := []string{
		"mov %rsp,window+0x1008",  // slot.rsp
		"mov %rcx,window+0x1000",  // slot.rip
		"mov %r11,window+0x1010",  // slot.rflags
		"lea window+0x2000,%rsp",  // slot stack top
		"cmpl $0x0,window+0x1024", // slot.polling
		"je 0x99",                 // exit
		"cmp $0x1ff,%rax",         // beyond the post mask: exit
		"ja 0x99",
		"bt %rax,window+0x1080",  // slot.post_mask
		"jae 0x99",               // not posted: exit
		"mov %rax,window+0x1030", // slot.nr
		"mov %rdi,window+0x1038", // slot.args
		"mov %rsi,window+0x1040",
		"mov %rdx,window+0x1048",
		"mov %r10,window+0x1050",
		"mov %r8,window+0x1058",
		"mov %r9,window+0x1060",
		"movl $0x1,window+0x1020", // slot.mailbox = posted
		"mov window+0x1028,%ecx",  // slot.spin
		"pause",
		"cmpl $0x3,window+0x1020", // done?
		"je 0x9d",
		"cmpl $0x4,window+0x1020", // declined?
		"je 0x99",
		"cmpl $0x2,window+0x1020", // taken: spin without counting
		"je 0x78",
		"dec %ecx",
		"jne 0x78",
		"out %al,$0x10",
		"jmp 0xae",
		"mov window+0x1068,%rax",   // slot.result
		"movl $0x0,window+0x1020",  // slot.mailbox = idle
		"testb $0x1,window+0x1018", // slot.flush
		"je 0xc6",                  // skip the CR3 reload
		"movb $0x0,window+0x1018",
		"push %rax",
		"mov %cr3,%rax",
		"mov %rax,%cr3",
		"pop %rax",
		"mov window+0x1000,%rcx", // RCX = return RIP, as Linux
		"mov window+0x1010,%r11", // R11 = RFLAGS, as Linux
		"pushq $0x2b",
		"pushq window+0x1008",
		"push %r11",
		"pushq $0x33",
		"push %rcx",
		"cmpl $0x0,window+0x1070", // slot.return_exit
		"je 0xec",
		"out %al,$0x12",
		"iretq",
	}
	require.Equal(t, want, got)
	at := syscallEntryAt
	require.Equal(t, "out %al,$0x10", disassemble(t, syscallEntryCode[at.syscallOut:at.syscallOut+2], 0)[0])
	require.Equal(t, "out %al,$0x12", disassemble(t, syscallEntryCode[at.returnOut:at.returnOut+2], 0)[0])
	require.Equal(t, "iretq", disassemble(t, syscallEntryCode[at.iret:at.iret+2], 0)[0])
}

func TestExceptionEntriesDecode(t *testing.T) {
	for v := 0; v < idtVectors; v++ {
		off := stubExceptionEntry + v*stubExceptionStride
		got := disassemble(t, buildExceptionEntry(v), off)
		if vectorHasErrorCode(v) {
			require.Len(t, got, 2, "vector %d", v)
		} else {
			require.Len(t, got, 3, "vector %d", v)
			require.Equal(t, "pushq $0x0", got[0])
		}
		require.Contains(t, got[len(got)-2], "pushq $")
		require.Equal(t, "jmpq 0x100", got[len(got)-1])
	}
	require.Equal(t, []string{"out %al,$0x11", "add $0x10,%rsp", "iretq"}, disassemble(t, buildExceptionCommon(), stubExceptionCommon))
}

func TestStubPageAssembles(t *testing.T) {
	page, err := buildStubPage()
	require.NoError(t, err)
	require.Len(t, page, pageSize)
	probe := disassemble(t, buildProbe(), stubProbe)
	require.Equal(t, "cpuid", probe[2])
	require.Equal(t, "xgetbv", probe[len(probe)-3])
}
