package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const (
	testUserTop = 0x7fff_ffff_f000
	// etDynBase is ELF_ET_DYN_BASE, and noRandomMmapBase the mmap base
	// without randomisation (128 MiB below the top), for testUserTop.
	etDynBase        = 0x5555_5555_4000
	noRandomMmapBase = 0x7fff_f7ff_f000
)

func testOptions(seed uint64) Options {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return Options{
		Argv:       []string{"prog", "two words", ""},
		Envv:       []string{"A=1", "PATH=/bin:/usr/bin"},
		ExecFn:     "/usr/local/bin/prog",
		Random:     rand.NewChaCha8(key),
		UserTop:    testUserTop,
		StackSize:  8 << 20,
		HWCap:      0x178bfbff,
		HWCap2:     2,
		UID:        1000,
		EUID:       1000,
		GID:        100,
		EGID:       100,
		ClockTicks: 100,
	}
}

func run(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", cmd, out)
}

// buildC compiles testdata/hello.c with gcc and the given flags.
func buildC(t testing.TB, flags ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello")
	run(t, exec.Command("gcc", append(flags, "-O2", "-o", out, "testdata/hello.c")...))
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	return data
}

// buildGo builds testdata/hello.go with the Go toolchain, statically.
func buildGo(t testing.TB) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-o", out, "testdata/hello.go")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	run(t, cmd)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	return data
}

// elf32Binary builds a 32-bit x86 executable with gcc -m32 where the
// toolchain can, and otherwise crafts an ELFCLASS32 EM_386 header.
func elf32Binary(t *testing.T) []byte {
	out := filepath.Join(t.TempDir(), "start32")
	cmd := exec.Command("gcc", "-m32", "-nostdlib", "-static", "-x", "c", "-o", out, "-")
	cmd.Stdin = strings.NewReader("void _start(void) { for (;;); }\n")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Logf("gcc -m32 failed, crafting the header instead: %v\n%s", err, msg)
		header := make([]byte, 52)
		copy(header, elf.ELFMAG)
		header[elf.EI_CLASS], header[elf.EI_DATA], header[elf.EI_VERSION] = byte(elf.ELFCLASS32), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
		binary.LittleEndian.PutUint16(header[16:], uint16(elf.ET_EXEC))
		binary.LittleEndian.PutUint16(header[18:], uint16(elf.EM_386))
		return header
	}
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	return data
}

const craftBase = 0x400000

// craftELF builds a tiny static executable: a text segment holding the
// headers and code calling exit(0), and a data segment that starts on
// text's last page and whose bss covers three more pages. mutate, if not
// nil, changes the headers before they are written.
func craftELF(mutate func(h *elf.Header64, progs []elf.Prog64)) []byte {
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax, 60; xor edi, edi; syscall
	data := bytes.Repeat([]byte{0xaa}, 16)
	progs := make([]elf.Prog64, 3)
	headerSize := binary.Size(elf.Header64{})
	codeOff := uint64(headerSize + binary.Size(progs))
	dataOff := codeOff + uint64(len(code))
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Entry: craftBase + codeOff, Phoff: uint64(headerSize), Ehsize: uint16(headerSize),
		Phentsize: uint16(binary.Size(progs[0])), Phnum: uint16(len(progs)),
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	progs[0] = elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Vaddr: craftBase, Paddr: craftBase, Filesz: dataOff, Memsz: dataOff, Align: pageSize}
	progs[1] = elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_W), Off: dataOff,
		Vaddr: craftBase + dataOff, Paddr: craftBase + dataOff, Filesz: uint64(len(data)), Memsz: 3 * pageSize, Align: pageSize}
	progs[2] = elf.Prog64{Type: uint32(elf.PT_GNU_STACK), Flags: uint32(elf.PF_R | elf.PF_W)}
	if mutate != nil {
		mutate(&h, progs)
	}
	var buf bytes.Buffer
	for _, part := range []any{h, progs, code, data} {
		if err := binary.Write(&buf, binary.LittleEndian, part); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

func load(data []byte, o Options) (*fakeMemory, *Image, error) {
	mem := newFakeMemory(o.UserTop)
	img, err := Load(mem, bytes.NewReader(data), int64(len(data)), o)
	return mem, img, err
}

// auxEntry is one auxiliary vector pair.
type auxEntry struct{ key, value uint64 }

// initialStack is what a process finds at its initial RSP.
type initialStack struct {
	argv, envv []string
	argvAddrs  []uint64
	envvAddrs  []uint64
	auxv       []auxEntry
}

func readStack(t *testing.T, mem *fakeMemory, sp uint64) initialStack {
	t.Helper()
	word := func(addr uint64) uint64 {
		w, ok := mem.word(addr)
		require.True(t, ok, "stack word at %#x unmapped", addr)
		return w
	}
	str := func(addr uint64) string {
		s, ok := mem.cstring(addr)
		require.True(t, ok, "string at %#x unreadable", addr)
		return s
	}
	var st initialStack
	argc := word(sp)
	require.Less(t, argc, uint64(1000))
	addr := sp + 8
	for range argc {
		st.argvAddrs = append(st.argvAddrs, word(addr))
		st.argv = append(st.argv, str(word(addr)))
		addr += 8
	}
	require.Zero(t, word(addr), "argv is not NULL-terminated")
	for addr += 8; word(addr) != 0; addr += 8 {
		st.envvAddrs = append(st.envvAddrs, word(addr))
		st.envv = append(st.envv, str(word(addr)))
		require.Less(t, len(st.envv), 1000)
	}
	for addr += 8; ; addr += 16 {
		st.auxv = append(st.auxv, auxEntry{word(addr), word(addr + 8)})
		if word(addr) == AT_NULL {
			return st
		}
		require.Less(t, len(st.auxv), 64)
	}
}

func auxValue(t *testing.T, auxv []auxEntry, key uint64) uint64 {
	t.Helper()
	for _, e := range auxv {
		if e.key == key {
			return e.value
		}
	}
	require.Failf(t, "auxv entry missing", "key %d", key)
	return 0
}

// checkLoaded checks a successful Load of data against the file: segment
// bytes, bss, page protections, no other mappings than segments and stack,
// brk, the stack VMA, and the initial stack.
func checkLoaded(t *testing.T, mem *fakeMemory, data []byte, img *Image, o Options) initialStack {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, f.Entry+img.Base, img.Entry)
	require.Zero(t, img.Base%pageSize)

	pageProt := map[uint64]int{}
	var imageEnd uint64
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		addr := p.Vaddr + img.Base
		got, ok := mem.read(addr, p.Memsz)
		require.True(t, ok, "segment at %#x not mapped", addr)
		require.Equal(t, data[p.Off:p.Off+p.Filesz], got[:p.Filesz], "segment at %#x", addr)
		require.Equal(t, make([]byte, p.Memsz-p.Filesz), got[p.Filesz:], "bss of segment at %#x", addr)
		for page := pageDown(addr); page < addr+p.Memsz; page += pageSize {
			pageProt[page] |= protection(p.Flags)
		}
		imageEnd = max(imageEnd, pageUp(addr+p.Memsz))
	}
	for page, prot := range pageProt {
		require.Equal(t, prot, mem.prot(page), "protection of page %#x", page)
	}

	stack, ok := mem.stackVMA()
	require.True(t, ok, "no [stack] VMA")
	require.Equal(t, pageUp(o.StackSize), stack.end-stack.start)
	require.LessOrEqual(t, stack.end, o.UserTop)
	require.Greater(t, stack.end, o.UserTop-maxStackRandom)
	require.Equal(t, unix.PROT_READ|unix.PROT_WRITE, stack.prot)
	var mapped uint64
	for _, v := range mem.vmas {
		mapped += v.end - v.start
	}
	require.Equal(t, uint64(len(pageProt))*pageSize+stack.end-stack.start, mapped, "mappings beyond segments and stack")

	require.Zero(t, img.MmapBase%pageSize)
	require.Less(t, img.MmapBase, stack.start)
	require.Zero(t, img.BrkStart%pageSize)
	if f.Type == elf.ET_DYN && !o.NoRandomize {
		// Linux moves the brk of a PIE without an interpreter out of the
		// mmap area, to ELF_ET_DYN_BASE.
		require.GreaterOrEqual(t, img.BrkStart, uint64(etDynBase))
		require.Less(t, img.BrkStart, uint64(etDynBase+32<<20))
	} else {
		require.GreaterOrEqual(t, img.BrkStart, imageEnd)
		require.Less(t, img.BrkStart, imageEnd+32<<20)
	}
	require.Equal(t, img.BrkStart, mem.brk)

	require.Zero(t, img.Stack%16)
	require.Greater(t, img.Stack, stack.start)
	st := readStack(t, mem, img.Stack)
	wantArgv := o.Argv
	if len(wantArgv) == 0 {
		wantArgv = []string{""}
	}
	require.Equal(t, wantArgv, st.argv)
	require.Equal(t, o.Envv, st.envv)

	var keys, flat []uint64
	for _, e := range st.auxv {
		keys = append(keys, e.key)
		flat = append(flat, e.key, e.value)
	}
	require.Equal(t, wantAuxKeys(o), keys)
	require.Equal(t, flat, img.Auxv)
	var hdr elf.Header64
	_, err = binary.Decode(data, binary.LittleEndian, &hdr)
	require.NoError(t, err)
	for key, want := range map[uint64]uint64{
		AT_HWCAP: o.HWCap, AT_HWCAP2: o.HWCap2, AT_PAGESZ: pageSize, AT_CLKTCK: o.ClockTicks,
		AT_PHDR: img.Phdr, AT_PHENT: uint64(hdr.Phentsize), AT_PHNUM: uint64(hdr.Phnum),
		AT_BASE: 0, AT_FLAGS: 0, AT_ENTRY: img.Entry,
		AT_UID: uint64(o.UID), AT_EUID: uint64(o.EUID), AT_GID: uint64(o.GID), AT_EGID: uint64(o.EGID),
	} {
		require.Equal(t, want, auxValue(t, st.auxv, key), "auxv key %d", key)
	}
	phdrs := data[hdr.Phoff : hdr.Phoff+uint64(hdr.Phnum)*uint64(hdr.Phentsize)]
	got, ok := mem.read(img.Phdr, uint64(len(phdrs)))
	require.True(t, ok, "AT_PHDR %#x not mapped", img.Phdr)
	require.Equal(t, phdrs, got, "bytes at AT_PHDR")

	random := auxValue(t, st.auxv, AT_RANDOM)
	require.True(t, img.Stack < random && random+16 <= stack.end, "AT_RANDOM %#x outside the stack", random)
	got, _ = mem.read(random, 16)
	require.NotEqual(t, make([]byte, 16), got)
	platformString, ok := mem.cstring(auxValue(t, st.auxv, AT_PLATFORM))
	require.True(t, ok)
	require.Equal(t, "x86_64", platformString)
	execFn := auxValue(t, st.auxv, AT_EXECFN)
	execFnString, ok := mem.cstring(execFn)
	require.True(t, ok)
	require.Equal(t, o.ExecFn, execFnString)

	// The strings sit at the very top, under one zero word, in the order
	// argv, envp, execfn.
	top, ok := mem.word(stack.end - 8)
	require.True(t, ok)
	require.Zero(t, top)
	require.Equal(t, stack.end-8, execFn+uint64(len(o.ExecFn))+1)
	require.Equal(t, st.argvAddrs[0], img.ArgStart)
	require.Equal(t, img.ArgEnd, img.EnvStart)
	if len(st.envvAddrs) > 0 {
		require.Equal(t, st.envvAddrs[0], img.EnvStart)
	}
	require.Equal(t, execFn, img.EnvEnd)
	strs, ok := mem.read(img.ArgStart, img.EnvEnd-img.ArgStart)
	require.True(t, ok)
	require.Equal(t, strings.Join(append(slices.Clone(wantArgv), o.Envv...), "\x00")+"\x00", string(strs))
	return st
}

func wantAuxKeys(o Options) []uint64 {
	var keys []uint64
	if o.MapVDSO != nil {
		keys = append(keys, AT_SYSINFO_EHDR)
	}
	if o.MinSigStackSize != 0 {
		keys = append(keys, AT_MINSIGSTKSZ)
	}
	return append(keys, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS,
		AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_PLATFORM, AT_NULL)
}

func TestLoadStatic(t *testing.T) {
	data := buildC(t, "-static")
	o := testOptions(1)
	mem, img, err := load(data, o)
	require.NoError(t, err)
	require.Zero(t, img.Base)
	checkLoaded(t, mem, data, img, o)
}

func TestLoadStaticPIE(t *testing.T) {
	data := buildC(t, "-static-pie")
	f, err := elf.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, elf.ET_DYN, f.Type)
	bases := map[uint64]bool{}
	for seed := range uint64(2) {
		o := testOptions(seed)
		mem, img, err := load(data, o)
		require.NoError(t, err)
		checkLoaded(t, mem, data, img, o)
		// Where mmap would put it, as Linux does with a PIE that has no
		// interpreter: just below the randomised mmap base.
		require.Equal(t, img.MmapBase, img.Base)
		require.Greater(t, img.Base, uint64(noRandomMmapBase-1<<40-1<<30))
		require.Less(t, img.Base, uint64(noRandomMmapBase))
		bases[img.Base] = true
	}
	require.Len(t, bases, 2, "two seeds gave the same load bias")
}

func TestLoadGoProgram(t *testing.T) {
	data := buildGo(t)
	o := testOptions(3)
	mem, img, err := load(data, o)
	require.NoError(t, err)
	require.Zero(t, img.Base)
	checkLoaded(t, mem, data, img, o)
}

func TestLoadSharedPage(t *testing.T) {
	data := craftELF(nil)
	o := testOptions(4)
	mem, img, err := load(data, o)
	require.NoError(t, err)
	checkLoaded(t, mem, data, img, o)
	require.Equal(t, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, mem.prot(craftBase))
	for page := uint64(craftBase + pageSize); page < craftBase+4*pageSize; page += pageSize {
		require.Equal(t, unix.PROT_READ|unix.PROT_WRITE, mem.prot(page))
	}
	require.Equal(t, -1, mem.prot(craftBase+4*pageSize))
}

func TestLoadCraftedStaticPIEWithNonZeroFirstAddress(t *testing.T) {
	data := craftELF(func(h *elf.Header64, _ []elf.Prog64) { h.Type = uint16(elf.ET_DYN) })
	o := testOptions(5)
	mem, img, err := load(data, o)
	require.NoError(t, err)
	checkLoaded(t, mem, data, img, o)
	require.Equal(t, img.MmapBase, craftBase+img.Base)
}

func TestStackVariants(t *testing.T) {
	data := craftELF(nil)
	t.Run("vDSO and signal stack size", func(t *testing.T) {
		o := testOptions(6)
		var base uint64
		o.MapVDSO = func(mmapBase uint64) (uint64, uint64, error) {
			base = mmapBase
			return mmapBase - 0x2000, mmapBase - 0x3000, nil
		}
		o.MinSigStackSize = 3632
		mem, img, err := load(data, o)
		require.NoError(t, err)
		st := checkLoaded(t, mem, data, img, o)
		require.Equal(t, base-0x2000, auxValue(t, st.auxv, AT_SYSINFO_EHDR))
		require.Equal(t, base-0x3000, img.MmapBase, "the mmap area continues below the vDSO")
		require.Equal(t, o.MinSigStackSize, auxValue(t, st.auxv, AT_MINSIGSTKSZ))
		require.Zero(t, auxValue(t, st.auxv, AT_SECURE))
	})
	t.Run("set-user-ID", func(t *testing.T) {
		o := testOptions(7)
		o.EUID = 0
		mem, img, err := load(data, o)
		require.NoError(t, err)
		st := checkLoaded(t, mem, data, img, o)
		require.Equal(t, uint64(1), auxValue(t, st.auxv, AT_SECURE))
	})
	t.Run("no arguments or environment", func(t *testing.T) {
		o := testOptions(8)
		o.Argv, o.Envv = nil, nil
		mem, img, err := load(data, o)
		require.NoError(t, err)
		st := checkLoaded(t, mem, data, img, o)
		require.Equal(t, []string{""}, st.argv)
	})
	t.Run("executable stack", func(t *testing.T) {
		o := testOptions(9)
		mem, _, err := load(craftELF(func(_ *elf.Header64, progs []elf.Prog64) {
			progs[2].Flags |= uint32(elf.PF_X)
		}), o)
		require.NoError(t, err)
		stack, ok := mem.stackVMA()
		require.True(t, ok)
		require.Equal(t, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, stack.prot)
	})
}

func TestArgumentLimits(t *testing.T) {
	data := craftELF(nil)
	long := strings.Repeat("x", maxArgStrlen-1)
	for _, tc := range []struct {
		name      string
		argv      []string
		envv      []string
		stackSize uint64
		wantErr   bool
	}{
		{name: "longest string", argv: []string{long}},
		{name: "string too long", argv: []string{long + "x"}, wantErr: true},
		{name: "environment string too long", envv: []string{long + "x"}, wantErr: true},
		{name: "quarter of the stack", argv: slices.Repeat([]string{long}, 15)},
		{name: "over a quarter of the stack", argv: slices.Repeat([]string{long}, 16), wantErr: true},
		{name: "too many pointers", envv: make([]string, 1<<18), wantErr: true},
		{name: "over the stack", argv: slices.Repeat([]string{long[:60<<10]}, 2), stackSize: 64 << 10, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(10)
			o.Argv, o.Envv = tc.argv, tc.envv
			if tc.stackSize != 0 {
				o.StackSize = tc.stackSize
			}
			mem, img, err := load(data, o)
			if tc.wantErr {
				require.ErrorIs(t, err, unix.E2BIG)
				require.Empty(t, mem.vmas, "mapped memory before refusing")
				return
			}
			require.NoError(t, err)
			checkLoaded(t, mem, data, img, o)
		})
	}
}

func TestRefusals(t *testing.T) {
	dynamic := buildC(t, "-pie", "-fPIE")
	object := buildC(t, "-c")
	for _, tc := range []struct {
		name    string
		data    []byte
		want    error
		message string
	}{
		{"empty file", nil, ErrNotELF, "not an ELF executable"},
		{"shell script", []byte("#!/bin/sh\necho hello\n"), ErrNotELF, "not an ELF executable"},
		{"magic only", []byte(elf.ELFMAG), ErrMalformed, "truncated ELF header"},
		{"dynamic, no interpreter visible", dynamic, unix.ENOENT, "interpreter /lib64/ld-linux-x86-64.so.2: no such file or directory"},
		{"relocatable object", object, ErrNotExecutable, "ET_REL"},
		{"32-bit", elf32Binary(t), ErrWrongArch, "not an x86-64 executable (ELFCLASS32)"},
		{"big-endian", craftELF(func(h *elf.Header64, _ []elf.Prog64) {
			h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
		}), ErrWrongArch, "ELFDATA2MSB"},
		{"arm64", craftELF(func(h *elf.Header64, _ []elf.Prog64) {
			h.Machine = uint16(elf.EM_AARCH64)
		}), ErrWrongArch, "EM_AARCH64"},
		{"core dump", craftELF(func(h *elf.Header64, _ []elf.Prog64) {
			h.Type = uint16(elf.ET_CORE)
		}), ErrNotExecutable, "ET_CORE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := load(tc.data, testOptions(11))
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.message)
		})
	}
}

func TestMalformed(t *testing.T) {
	valid := craftELF(nil)
	const dataPageOffset = 0xf1 // the data segment's offset within its page
	for _, tc := range []struct {
		name     string
		mutate   func(h *elf.Header64, progs []elf.Prog64)
		truncate int
		message  string
	}{
		{name: "truncated header", truncate: 40, message: "truncated ELF header"},
		{name: "truncated segment", truncate: len(valid) - 1, message: "beyond the end of the file"},
		{name: "program header size", mutate: func(h *elf.Header64, _ []elf.Prog64) { h.Phentsize = 32 }, message: "program header size 32"},
		{name: "no program headers", mutate: func(h *elf.Header64, _ []elf.Prog64) { h.Phnum = 0 }, message: "0 program headers"},
		{name: "absurd phnum", mutate: func(h *elf.Header64, _ []elf.Prog64) { h.Phnum = math.MaxUint16 }, message: "65535 program headers"},
		{name: "program headers beyond the file", mutate: func(h *elf.Header64, _ []elf.Prog64) { h.Phoff = 1 << 20 }, message: "beyond the end of the file"},
		{name: "program header offset overflow", mutate: func(h *elf.Header64, _ []elf.Prog64) { h.Phoff = math.MaxUint64 - 8 }, message: "beyond the end of the file"},
		{name: "filesz over memsz", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[1].Filesz = p[1].Memsz + 1 }, message: "p_filesz > p_memsz"},
		{name: "offset beyond the file", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[1].Off = 1<<40 + dataPageOffset }, message: "beyond the end of the file"},
		{name: "file range overflow", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[1].Off = math.MaxUint64 - 0xfff + dataPageOffset }, message: "beyond the end of the file"},
		{name: "misaligned", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[1].Vaddr++ }, message: "differ modulo the page size"},
		{name: "address overflow", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[1].Vaddr = math.MaxUint64 - 0xfff + dataPageOffset }, message: "address range overflows"},
		{name: "above user space", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[1].Vaddr = 1<<47 + dataPageOffset }, message: "does not fit"},
		{name: "at address zero", mutate: func(h *elf.Header64, p []elf.Prog64) {
			h.Entry -= craftBase
			p[0].Vaddr -= craftBase
			p[1].Vaddr -= craftBase
		}, message: "does not fit"},
		{name: "overlapping segments", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[0].Memsz = 0x200 }, message: "overlaps or precedes"},
		{name: "unsorted segments", mutate: func(_ *elf.Header64, p []elf.Prog64) { p[0], p[1] = p[1], p[0] }, message: "overlaps or precedes"},
		{name: "entry outside", mutate: func(h *elf.Header64, _ []elf.Prog64) { h.Entry = 0x500000 }, message: "entry point"},
		{name: "no PT_LOAD", mutate: func(_ *elf.Header64, p []elf.Prog64) {
			p[0].Type, p[1].Type = uint32(elf.PT_NULL), uint32(elf.PT_NULL)
		}, message: "no loadable segments"},
		{name: "huge static PIE", mutate: func(h *elf.Header64, p []elf.Prog64) {
			h.Type = uint16(elf.ET_DYN)
			p[1].Memsz = 1 << 46
		}, message: "does not fit"},
		{name: "PT_PHDR outside", mutate: func(_ *elf.Header64, p []elf.Prog64) {
			p[2] = elf.Prog64{Type: uint32(elf.PT_PHDR), Vaddr: 0x900000}
		}, message: "PT_PHDR"},
		{name: "huge PT_INTERP", mutate: func(_ *elf.Header64, p []elf.Prog64) {
			p[2] = elf.Prog64{Type: uint32(elf.PT_INTERP), Filesz: 1 << 20}
		}, message: "PT_INTERP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := craftELF(tc.mutate)
			if tc.truncate != 0 {
				data = data[:tc.truncate]
			}
			mem, _, err := load(data, testOptions(12))
			require.ErrorIs(t, err, ErrMalformed)
			require.ErrorContains(t, err, tc.message)
			require.Empty(t, mem.vmas, "mapped memory before refusing")
		})
	}
}

// TestShortReader checks a reader that ends before the size its caller gave.
func TestShortReader(t *testing.T) {
	data := craftELF(func(_ *elf.Header64, p []elf.Prog64) { p[1].Filesz = pageSize })
	_, err := Load(newFakeMemory(testUserTop), bytes.NewReader(data), int64(len(data))+pageSize, testOptions(13))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestInvalidOptions(t *testing.T) {
	data := craftELF(nil)
	for name, change := range map[string]func(*Options){
		"no randomness":           func(o *Options) { o.Random = nil },
		"unaligned user top":      func(o *Options) { o.UserTop-- },
		"user top beyond 47 bits": func(o *Options) { o.UserTop = 1 << 48 },
		"no stack":                func(o *Options) { o.StackSize = 0 },
		"stack too large":         func(o *Options) { o.StackSize = o.UserTop },
	} {
		t.Run(name, func(t *testing.T) {
			o := testOptions(14)
			change(&o)
			_, _, err := load(data, o)
			require.ErrorIs(t, err, unix.EINVAL)
		})
	}
}

const hostInterp = "/lib64/ld-linux-x86-64.so.2"

// hostInterpreter reads the host's glibc ld.so.
func hostInterpreter(t testing.TB) []byte {
	t.Helper()
	kvmtest.RequireFile(t, hostInterp)
	data, err := os.ReadFile(hostInterp)
	require.NoError(t, err)
	return data
}

// withInterp makes o's OpenInterpreter serve interp for path and fail
// with ENOENT for any other path.
func withInterp(o Options, path string, interp []byte) Options {
	o.OpenInterpreter = func(p string) (Interpreter, error) {
		if p != path {
			return Interpreter{}, unix.ENOENT
		}
		return Interpreter{File: bytes.NewReader(interp), Size: int64(len(interp)), Name: path, Close: func() {}}, nil
	}
	return o
}

// craftDynamic is craftELF with a PT_INTERP of interp, whose bytes
// (NUL-terminated unless raw) follow the rest of the file.
func craftDynamic(interp string, raw bool, mutate func(h *elf.Header64, progs []elf.Prog64)) []byte {
	off := uint64(len(craftELF(nil)))
	path := []byte(interp)
	if !raw {
		path = append(path, 0)
	}
	return append(craftELF(func(h *elf.Header64, p []elf.Prog64) {
		p[2] = elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: off, Filesz: uint64(len(path)), Align: 1}
		if mutate != nil {
			mutate(h, p)
		}
	}), path...)
}

// loadedSegments checks that data's PT_LOAD segments are at bias.
func loadedSegments(t *testing.T, mem *fakeMemory, data []byte, bias uint64) *elf.File {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		got, ok := mem.read(p.Vaddr+bias, p.Memsz)
		require.True(t, ok, "segment at %#x not mapped", p.Vaddr+bias)
		require.Equal(t, data[p.Off:p.Off+p.Filesz], got[:p.Filesz])
	}
	return f
}

func TestLoadDynamic(t *testing.T) {
	ld := hostInterpreter(t)
	data := buildC(t, "-pie", "-fPIE")
	o := withInterp(testOptions(16), hostInterp, ld)
	o.NoRandomize = true
	mem, img, err := load(data, o)
	require.NoError(t, err)
	// Where Linux puts them without randomisation: ELF_ET_DYN_BASE, and
	// the interpreter just below the mmap base (the top minus 128 MiB).
	require.Equal(t, uint64(etDynBase), img.Base)
	require.Equal(t, hostInterp, img.Interp)
	ldFile := loadedSegments(t, mem, ld, img.InterpBase)
	prog := loadedSegments(t, mem, data, img.Base)
	_, ldEnd := mustProgram(t, ld).bounds()
	require.Equal(t, uint64(noRandomMmapBase), img.InterpBase+ldEnd)
	require.Equal(t, img.InterpBase, img.MmapBase)
	require.Equal(t, ldFile.Entry+img.InterpBase, img.Entry)
	st := readStack(t, mem, img.Stack)
	require.Equal(t, img.InterpBase, auxValue(t, st.auxv, AT_BASE))
	require.Equal(t, prog.Entry+img.Base, auxValue(t, st.auxv, AT_ENTRY))
	require.Equal(t, img.Phdr, auxValue(t, st.auxv, AT_PHDR))
	stack, ok := mem.stackVMA()
	require.True(t, ok)
	require.Equal(t, uint64(testUserTop), stack.end)

	again := withInterp(testOptions(17), hostInterp, ld)
	again.NoRandomize = true
	_, img2, err := load(data, again)
	require.NoError(t, err)
	require.Equal(t, []uint64{img.Base, img.InterpBase, img.Stack, img.BrkStart}, []uint64{img2.Base, img2.InterpBase, img2.Stack, img2.BrkStart})

	_, random, err := load(data, withInterp(testOptions(16), hostInterp, ld))
	require.NoError(t, err)
	require.NotEqual(t, img.Base, random.Base)
	require.NotEqual(t, img.InterpBase, random.InterpBase)
	require.GreaterOrEqual(t, random.Base, uint64(etDynBase))
	require.Less(t, random.InterpBase, uint64(noRandomMmapBase))
}

func mustProgram(t *testing.T, data []byte) *program {
	t.Helper()
	p, err := parse(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	return p
}

// TestLoadInterpreterDirectly runs ld.so as the program, as
// `/lib64/ld-linux-x86-64.so.2 /bin/true` does.
func TestLoadInterpreterDirectly(t *testing.T) {
	ld := hostInterpreter(t)
	o := testOptions(18)
	o.NoRandomize = true
	mem, img, err := load(ld, o)
	require.NoError(t, err)
	// As Linux places a program without an interpreter: where mmap would,
	// with brk right after it.
	_, end := mustProgram(t, ld).bounds()
	require.Equal(t, uint64(noRandomMmapBase), img.Base+end)
	require.Equal(t, img.MmapBase, img.Base)
	require.Equal(t, uint64(noRandomMmapBase), img.BrkStart)
	require.Empty(t, img.Interp)
	checkLoaded(t, mem, ld, img, o)
}

// TestLoadFixedInterpreter loads a crafted program whose ET_EXEC
// interpreter lies elsewhere, and refuses one that overlaps the program.
func TestLoadFixedInterpreter(t *testing.T) {
	const shift = 0x1000_0000
	interp := craftELF(func(h *elf.Header64, p []elf.Prog64) {
		h.Entry += shift
		p[0].Vaddr += shift
		p[1].Vaddr += shift
	})
	data := craftDynamic("/ld", false, nil)
	mem, img, err := load(data, withInterp(testOptions(19), "/ld", interp))
	require.NoError(t, err)
	require.Zero(t, img.InterpBase)
	loadedSegments(t, mem, interp, 0)
	require.Equal(t, mustProgram(t, interp).entry, img.Entry)

	_, _, err = load(data, withInterp(testOptions(19), "/ld", craftELF(nil)))
	require.ErrorIs(t, err, ErrBadInterpreter)
	require.ErrorContains(t, err, "overlaps the program")
}

func TestInterpreterErrors(t *testing.T) {
	dynamic := buildC(t, "-pie", "-fPIE")
	for _, tc := range []struct {
		name    string
		data    []byte
		interp  []byte
		want    error
		message string
	}{
		{"missing", craftDynamic("/missing", false, nil), nil, unix.ENOENT, "interpreter /missing: no such file"},
		{"empty path", craftDynamic("\x00", false, nil), nil, unix.ENOENT, "interpreter : no such file"},
		{"not ELF", craftDynamic("/ld", false, nil), bytes.Repeat([]byte("#!/bin/sh\n"), 10), ErrBadInterpreter, "not an ELF executable"},
		{"shorter than a header", craftDynamic("/ld", false, nil), []byte("#!/bin/sh\n"), unix.EIO, "input/output error"},
		{"empty file", craftDynamic("/ld", false, nil), []byte{}, unix.EIO, "input/output error"},
		{"32-bit", craftDynamic("/ld", false, nil), elf32Binary(t), ErrBadInterpreter, "ELFCLASS32"},
		{"relocatable", craftDynamic("/ld", false, nil), buildC(t, "-c"), ErrBadInterpreter, "ET_REL"},
		{"malformed", craftDynamic("/ld", false, nil), craftELF(func(h *elf.Header64, _ []elf.Prog64) { h.Entry = 1 }), ErrBadInterpreter, "entry point"},
		{"dynamic itself", craftDynamic("/ld", false, nil), dynamic, ErrBadInterpreter, "names an interpreter of its own"},
		{"not NUL-terminated", craftDynamic("/ld", true, nil), nil, ErrMalformed, "not NUL-terminated"},
		{"one byte", craftDynamic("", true, func(_ *elf.Header64, p []elf.Prog64) { p[2].Filesz = 1 }), nil, ErrMalformed, "PT_INTERP of 1 bytes"},
		{"beyond the file", craftDynamic("/ld", false, func(_ *elf.Header64, p []elf.Prog64) { p[2].Off = 1 << 40 }), nil, ErrMalformed, "PT_INTERP"},
		{"offset overflow", craftDynamic("/ld", false, func(_ *elf.Header64, p []elf.Prog64) { p[2].Off = math.MaxUint64 - 1 }), nil, ErrMalformed, "PT_INTERP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(20)
			if tc.interp != nil {
				o = withInterp(o, "/ld", tc.interp)
			}
			mem, _, err := load(tc.data, o)
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.message)
			require.Empty(t, mem.vmas, "mapped memory before refusing")
			if tc.want != ErrMalformed {
				var ie *InterpreterError
				require.ErrorAs(t, err, &ie)
			}
		})
	}
}

// FuzzLoad checks that no input makes Load panic or fail without a
// classified error, for a program and the interpreter it may name (any
// PT_INTERP path opens interp). The normal test run runs only the seeds.
func FuzzLoad(f *testing.F) {
	for _, seed := range [][]byte{buildC(f, "-static"), buildC(f, "-static-pie"), buildGo(f), craftELF(nil)} {
		f.Add(seed, []byte(nil))
	}
	dynamic := buildC(f, "-pie", "-fPIE")
	f.Add(dynamic, hostInterpreter(f))
	f.Add(dynamic, dynamic)
	f.Add(craftDynamic("/ld", false, nil), craftELF(func(h *elf.Header64, p []elf.Prog64) {
		h.Entry += 0x1000_0000
		p[0].Vaddr += 0x1000_0000
		p[1].Vaddr += 0x1000_0000
	}))
	f.Add(craftDynamic("/ld", false, nil), craftELF(func(h *elf.Header64, _ []elf.Prog64) { h.Type = uint16(elf.ET_DYN) }))
	f.Add(craftDynamic("/ld", false, nil), []byte("#!/bin/sh\n"))
	f.Add(craftDynamic("/ld", true, nil), []byte(nil))
	f.Fuzz(func(t *testing.T, data, interp []byte) {
		o := testOptions(15)
		o.OpenInterpreter = func(string) (Interpreter, error) {
			return Interpreter{File: bytes.NewReader(interp), Size: int64(len(interp)), Close: func() {}}, nil
		}
		mem, img, err := load(data, o)
		if err != nil {
			for _, known := range []error{ErrNotELF, ErrWrongArch, ErrNotExecutable, ErrMalformed, ErrBadInterpreter, unix.EIO} {
				if errors.Is(err, known) {
					return
				}
			}
			require.Fail(t, "unclassified error", "%v", err)
		}
		require.Zero(t, img.Stack%16)
		require.True(t, mem.mapped(img.Entry, img.Entry+1), "entry %#x not mapped", img.Entry)
	})
}
