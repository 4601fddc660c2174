// Package bench measures kvmbox against native execution and, where it is
// installed, gVisor: a fixed set of workloads, each run several times in
// each runtime in one run on one machine. The system-call, start and memory
// guests are built here (no compiler needed); the C workloads need gcc.
package bench

import (
	"encoding/binary"
	"fmt"
)

const (
	loadAddr  = 0x400000
	headerLen = 64 + 56
)

// staticELF wraps machine code in a minimal static x86-64 executable: one
// read+execute PT_LOAD segment holding the headers and the code, entry at
// the first instruction.
func staticELF(code []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(code))
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // ELFCLASS64, little-endian, version
	le := binary.LittleEndian
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 0x3e) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], loadAddr+headerLen) // e_entry
	le.PutUint64(b[32:], 64)                 // e_phoff
	le.PutUint16(b[52:], 64)                 // e_ehsize
	le.PutUint16(b[54:], 56)                 // e_phentsize
	le.PutUint16(b[56:], 1)                  // e_phnum
	ph := b[64:]
	le.PutUint32(ph[0:], 1)   // PT_LOAD
	le.PutUint32(ph[4:], 4|1) // PF_R | PF_X
	le.PutUint64(ph[16:], loadAddr)
	le.PutUint64(ph[24:], loadAddr)
	size := uint64(headerLen + len(code))
	le.PutUint64(ph[32:], size)
	le.PutUint64(ph[40:], size)
	le.PutUint64(ph[48:], 0x1000)
	return append(b, code...)
}

// syscallLoop is a guest that reads CLOCK_MONOTONIC, makes system call nr
// n times, reads the clock again, writes both timespecs (32 bytes) to
// stdout and exits 0.
func syscallLoop(nr uint8, n uint32) ([]byte, error) {
	if n == 0 {
		return nil, fmt.Errorf("bench: a loop needs at least one call")
	}
	code := []byte{
		0x48, 0x83, 0xec, 0x40, // sub $64, %rsp
		0xb8, 0xe4, 0, 0, 0, // mov $228 (clock_gettime), %eax
		0xbf, 0x01, 0, 0, 0, // mov $CLOCK_MONOTONIC, %edi
		0x48, 0x8d, 0x34, 0x24, // lea (%rsp), %rsi
		0x0f, 0x05, // syscall
		0xbb, 0, 0, 0, 0, // mov $n, %ebx
		0xb8, nr, 0, 0, 0, // loop: mov $nr, %eax
		0x0f, 0x05, // syscall
		0x48, 0xff, 0xcb, // dec %rbx
		0x75, 0xf4, // jnz loop
		0xb8, 0xe4, 0, 0, 0, // mov $228, %eax
		0xbf, 0x01, 0, 0, 0, // mov $CLOCK_MONOTONIC, %edi
		0x48, 0x8d, 0x74, 0x24, 0x10, // lea 16(%rsp), %rsi
		0x0f, 0x05, // syscall
		0xb8, 0x01, 0, 0, 0, // mov $1 (write), %eax
		0xbf, 0x01, 0, 0, 0, // mov $1, %edi
		0x48, 0x89, 0xe6, // mov %rsp, %rsi
		0xba, 0x20, 0, 0, 0, // mov $32, %edx
		0x0f, 0x05, // syscall
		0xb8, 0xe7, 0, 0, 0, // mov $231 (exit_group), %eax
		0x31, 0xff, // xor %edi, %edi
		0x0f, 0x05, // syscall
	}
	binary.LittleEndian.PutUint32(code[21:], n)
	return staticELF(code), nil
}

// elapsed decodes the two timespecs a syscallLoop guest writes.
func elapsed(out []byte) (int64, error) {
	if len(out) != 32 {
		return 0, fmt.Errorf("bench: guest wrote %d bytes, want 32", len(out))
	}
	le := binary.LittleEndian
	ns := func(b []byte) int64 { return int64(le.Uint64(b))*1e9 + int64(le.Uint64(b[8:])) }
	return ns(out[16:]) - ns(out[:16]), nil
}

// withRIPOperand appends an instruction whose last four bytes are a
// RIP-relative displacement to data, and returns the offset of that
// displacement for patchRIP.
func withRIPOperand(code []byte, inst ...byte) ([]byte, int) {
	code = append(code, inst...)
	return code, len(code) - 4
}

// patchRIP points the displacement at offset at the data about to be
// appended to code.
func patchRIP(code []byte, offset int) {
	binary.LittleEndian.PutUint32(code[offset:], uint32(len(code)-(offset+4)))
}

// helloGuest writes "hello\n" to stdout and exits 0.
func helloGuest() []byte {
	code := []byte{
		0xb8, 0x01, 0, 0, 0, // mov $1 (write), %eax
		0xbf, 0x01, 0, 0, 0, // mov $1, %edi
	}
	code, msg := withRIPOperand(code, 0x48, 0x8d, 0x35, 0, 0, 0, 0) // lea msg(%rip), %rsi
	code = append(code,
		0xba, 0x06, 0, 0, 0, // mov $6, %edx
		0x0f, 0x05, // syscall
		0xb8, 0xe7, 0, 0, 0, // mov $231 (exit_group), %eax
		0x31, 0xff, // xor %edi, %edi
		0x0f, 0x05, // syscall
	)
	patchRIP(code, msg)
	return staticELF(append(code, "hello\n"...))
}

// blockerGuest writes "r" to stdout, blocks reading a byte from stdin,
// and exits 0.
func blockerGuest() []byte {
	return staticELF([]byte{
		0x6a, 'r', // push $'r'
		0xb8, 0x01, 0, 0, 0, // mov $1 (write), %eax
		0xbf, 0x01, 0, 0, 0, // mov $1, %edi
		0x48, 0x89, 0xe6, // mov %rsp, %rsi
		0xba, 0x01, 0, 0, 0, // mov $1, %edx
		0x0f, 0x05, // syscall
		0x31, 0xc0, // xor %eax, %eax (read)
		0x31, 0xff, // xor %edi, %edi
		0x0f, 0x05, // syscall
		0xb8, 0xe7, 0, 0, 0, // mov $231 (exit_group), %eax
		0x31, 0xff, // xor %edi, %edi
		0x0f, 0x05, // syscall
	})
}
