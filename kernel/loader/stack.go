package loader

import (
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// Auxiliary vector keys (include/uapi/linux/auxvec.h); golang.org/x/sys/unix
// does not define them. Named as x/sys/unix would name them.
const (
	AT_NULL         = 0
	AT_PHDR         = 3
	AT_PHENT        = 4
	AT_PHNUM        = 5
	AT_PAGESZ       = 6
	AT_BASE         = 7
	AT_FLAGS        = 8
	AT_ENTRY        = 9
	AT_UID          = 11
	AT_EUID         = 12
	AT_GID          = 13
	AT_EGID         = 14
	AT_PLATFORM     = 15
	AT_HWCAP        = 16
	AT_CLKTCK       = 17
	AT_SECURE       = 23
	AT_RANDOM       = 25
	AT_HWCAP2       = 26
	AT_EXECFN       = 31
	AT_SYSINFO_EHDR = 33
	AT_MINSIGSTKSZ  = 51
)

const (
	platform = "x86_64"
	// maxArgStrlen is MAX_ARG_STRLEN: the longest argument or environment
	// string, terminating NUL included.
	maxArgStrlen = 32 * pageSize
	// Linux lets argument and environment strings and their pointers use a
	// quarter of the stack limit, capped at three quarters of the default
	// 8 MiB limit, but always at least ARG_MAX.
	argMax         = 32 * pageSize
	maxArgSpace    = 6 << 20
	randomBytesLen = 16
	// stackAlignRandom is how far below the strings arch_align_stack may
	// move the rest of the stack.
	stackAlignRandom = 8192
	wordSize         = 8
)

// checkArgLimits returns unix.E2BIG where Linux's execve would, and
// otherwise the size of the strings, terminating NULs included. The bound
// comes from stackLimit, RLIMIT_STACK; the strings must also fit in the
// stack that is mapped (buildStack checks).
func checkArgLimits(argv, envv []string, execFn string, stackLimit uint64) (uint64, error) {
	limit := max(min(stackLimit/4, maxArgSpace), argMax)
	pointers := uint64(len(argv)+len(envv)) * wordSize
	if pointers >= limit {
		return 0, unix.E2BIG
	}
	total := uint64(0)
	for _, list := range [][]string{argv, envv, {execFn}} {
		for _, s := range list {
			n := uint64(len(s)) + 1
			if n > maxArgStrlen {
				return 0, unix.E2BIG
			}
			total += n
		}
	}
	if total > limit-pointers {
		return 0, unix.E2BIG
	}
	return total, nil
}

// buildStack lays out the initial process stack as Linux's
// create_elf_tables does and returns its contents from the initial RSP
// (Image.Stack) to the stack top. From the top down: a zero word,
// the AT_EXECFN string, the environment strings, the argument strings, a
// random gap, the AT_PLATFORM string, the AT_RANDOM bytes, padding that
// makes the final RSP 16-byte aligned, the auxiliary vector, the envp and
// argv pointer arrays each ending in NULL, and argc at RSP.
// With an interpreter, the process starts at the interpreter's entry point;
// AT_ENTRY is the program's and AT_BASE the interpreter's load bias.
// layoutRandom moves the stack below the strings.
func buildStack(p, interp *program, l layout, argv []string, stringBytes, vdso uint64, layoutRandom io.Reader, o *Options) (*Image, []byte, error) {
	// Checked first so that the address arithmetic below cannot wrap; 15 is
	// the most that 16-byte alignment takes.
	if wordSize+stringBytes+stackAlignRandom+15+uint64(len(platform))+1+randomBytesLen > l.stackTop-l.stackBottom {
		return nil, nil, unix.E2BIG
	}
	img := &Image{Entry: p.entry + l.bias, MmapBase: l.mmapBase, Base: l.bias, BrkStart: l.brk}
	if p.hasPhdr {
		img.Phdr = p.phdr + l.bias
	}
	programEntry := img.Entry
	if interp != nil {
		img.Interp, img.InterpBase = p.interp, l.interpBias
		img.Entry = interp.entry + l.interpBias
	}

	addr := l.stackTop - wordSize
	place := func(s string) uint64 {
		addr -= uint64(len(s)) + 1
		return addr
	}
	execFnAddr := place(o.ExecFn)
	envAddrs := make([]uint64, len(o.Envv))
	for i := len(o.Envv) - 1; i >= 0; i-- {
		envAddrs[i] = place(o.Envv[i])
	}
	img.EnvStart, img.EnvEnd = addr, execFnAddr
	argAddrs := make([]uint64, len(argv))
	for i := len(argv) - 1; i >= 0; i-- {
		argAddrs[i] = place(argv[i])
	}
	img.ArgStart, img.ArgEnd = addr, img.EnvStart

	alignRandom, err := randomBelow(layoutRandom, stackAlignRandom)
	if err != nil {
		return nil, nil, err
	}
	addr = (addr - alignRandom) &^ 15
	platformAddr := place(platform)
	addr -= randomBytesLen
	randomAddr := addr

	secure := uint64(0)
	if o.UID != o.EUID || o.GID != o.EGID {
		secure = 1
	}
	var auxv []uint64
	if vdso != 0 {
		auxv = append(auxv, AT_SYSINFO_EHDR, vdso)
	}
	if o.MinSigStackSize != 0 {
		auxv = append(auxv, AT_MINSIGSTKSZ, o.MinSigStackSize)
	}
	auxv = append(auxv,
		AT_HWCAP, o.HWCap,
		AT_PAGESZ, pageSize,
		AT_CLKTCK, o.ClockTicks,
		AT_PHDR, img.Phdr,
		AT_PHENT, progHeaderSize,
		AT_PHNUM, p.phnum,
		AT_BASE, img.InterpBase,
		AT_FLAGS, 0,
		AT_ENTRY, programEntry,
		AT_UID, uint64(o.UID),
		AT_EUID, uint64(o.EUID),
		AT_GID, uint64(o.GID),
		AT_EGID, uint64(o.EGID),
		AT_SECURE, secure,
		AT_RANDOM, randomAddr,
		AT_HWCAP2, o.HWCap2,
		AT_EXECFN, execFnAddr,
		AT_PLATFORM, platformAddr,
		AT_NULL, 0,
	)
	img.Auxv = auxv

	words := 1 + len(argv) + 1 + len(o.Envv) + 1 + len(auxv)
	if addr-l.stackBottom < uint64(words)*wordSize+15 {
		return nil, nil, unix.E2BIG
	}
	img.Stack = (addr - uint64(words)*wordSize) &^ 15

	stack := make([]byte, l.stackTop-img.Stack)
	at := func(a uint64) []byte { return stack[a-img.Stack:] }
	copy(at(execFnAddr), o.ExecFn)
	for i, s := range o.Envv {
		copy(at(envAddrs[i]), s)
	}
	for i, s := range argv {
		copy(at(argAddrs[i]), s)
	}
	copy(at(platformAddr), platform)
	if _, err := io.ReadFull(o.Random, at(randomAddr)[:randomBytesLen]); err != nil {
		return nil, nil, fmt.Errorf("loader: reading AT_RANDOM bytes: %w", err)
	}
	vector := append([]uint64{uint64(len(argv))}, argAddrs...)
	vector = append(vector, 0)
	vector = append(vector, envAddrs...)
	vector = append(vector, 0)
	vector = append(vector, auxv...)
	for i, w := range vector {
		binary.LittleEndian.PutUint64(at(img.Stack+uint64(i)*wordSize), w)
	}
	return img, stack, nil
}

// mapStack maps the stack VMA and writes the initial stack, which starts at sp.
func mapStack(mem Memory, l layout, executable bool, sp uint64, contents []byte) error {
	prot := unix.PROT_READ | unix.PROT_WRITE
	if executable {
		prot |= unix.PROT_EXEC
	}
	if err := mmapFixed(mem, l.stackBottom, l.stackTop-l.stackBottom, prot); err != nil {
		return err
	}
	mem.SetName(l.stackBottom, "[stack]")
	return copyOut(mem, sp, contents)
}
