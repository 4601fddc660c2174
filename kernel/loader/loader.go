// Package loader loads Linux x86-64 ELF executables, static or dynamically
// linked (with their PT_INTERP interpreter), into a guest address space and
// builds their initial stack the way Linux's binfmt_elf does. Executables
// and interpreters are untrusted: every field is validated before use.
package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/mm"
)

// Memory is the part of a guest address space the loader needs. Semantics
// are Linux's mmap/mprotect for anonymous memory; errors are unix.Errno.
// CopyOut requires PROT_WRITE, like a store from the guest.
type Memory interface {
	Mmap(addr, length uint64, prot, flags int) (uint64, error)
	Mprotect(addr, length uint64, prot int) error
	CopyOut(va uint64, src []byte) (int, error)
	SetBrk(start uint64)
	SetName(start uint64, name string)
}

// FileMemory is a Memory that can map a page cache's frames
// (mm.AddressSpace): private file mappings whose read-only pages share the
// cached frames.
type FileMemory interface {
	Memory
	MapFile(addr, length uint64, prot, flags int, pages mm.FilePages) (uint64, error)
}

// CachedFile is an executable or interpreter whose pages a page cache
// holds. Given one and a FileMemory, Load maps the cached frames instead
// of copying the file.
type CachedFile interface {
	io.ReaderAt
	// Pages returns the frames that hold file pages [first, first+n),
	// with a reference each, which Release gives back; 0 for a page past
	// the end of the file.
	Pages(first, n uint64) ([]uint64, error)
	Release(frames []uint64)
	// PageBytes is the host view of a frame that Pages returned.
	PageBytes(frame uint64) []byte
}

// Interpreter is an opened PT_INTERP file.
type Interpreter struct {
	File io.ReaderAt
	Size int64
	// Name is its path as /proc/PID/maps shows its segments: where the
	// PT_INTERP path leads, after symbolic links.
	Name  string
	Close func()
}

// Options describe the process being started.
type Options struct {
	Argv, Envv []string
	// ExecFn is the AT_EXECFN string: the path as given to execve.
	ExecFn string
	// Random supplies the randomness for ASLR and AT_RANDOM: crypto/rand in
	// production, a seeded reader in tests.
	Random io.Reader
	// UserTop is the exclusive top of user space; page-aligned, at most 1<<47.
	UserTop uint64
	// StackSize is the size of the stack VMA, mapped whole.
	StackSize uint64
	// StackLimit is RLIMIT_STACK's soft limit (RLIM_INFINITY for none): as
	// on Linux it sets how far below the stack the mmap area starts and
	// bounds the arguments. StackSize when zero.
	StackLimit uint64
	// HWCap and HWCap2 are AT_HWCAP and AT_HWCAP2, measured inside the guest.
	HWCap, HWCap2        uint64
	UID, EUID, GID, EGID uint32
	// ClockTicks is AT_CLKTCK (USER_HZ, 100 on Linux).
	ClockTicks uint64
	// MapVDSO, when set, maps the vDSO below mmapBase (the randomised top
	// of the mmap area) and returns its address, for AT_SYSINFO_EHDR, and
	// the new top of the mmap area below it.
	MapVDSO func(mmapBase uint64) (ehdr, newMmapBase uint64, err error)
	// MinSigStackSize is AT_MINSIGSTKSZ, the size of a signal frame with this
	// CPU's XSAVE state; omitted when zero.
	MinSigStackSize uint64
	// OpenInterpreter opens the PT_INTERP path of a dynamically linked
	// program as the process sees its files. Nil means no interpreter is
	// visible.
	OpenInterpreter func(path string) (Interpreter, error)
	// Name is the executable's path as /proc/PID/maps shows its segments.
	Name string
	// NoRandomize places everything where Linux does under
	// personality(ADDR_NO_RANDOMIZE); AT_RANDOM stays random.
	NoRandomize bool
}

// Image describes a loaded executable and its initial stack.
type Image struct {
	// Entry is where the program starts: e_entry plus Base.
	Entry uint64
	// Stack is the initial RSP; it points at argc and is 16-byte aligned.
	Stack uint64
	// MmapBase is the randomised top of the top-down mmap area, below the
	// stack and its gap.
	MmapBase uint64
	// Base is the load bias: 0 for ET_EXEC, random for PIE.
	Base uint64
	// Interp is the PT_INTERP path, empty for a static program, and
	// InterpBase the interpreter's load bias (AT_BASE). Entry is then the
	// interpreter's entry point.
	Interp     string
	InterpBase uint64
	BrkStart   uint64
	// Phdr is AT_PHDR, the program headers' address; 0 if no segment loads them.
	Phdr uint64
	// ArgStart, ArgEnd, EnvStart and EnvEnd delimit the argument and
	// environment strings on the stack, for /proc/<pid>/cmdline and environ.
	ArgStart, ArgEnd, EnvStart, EnvEnd uint64
	// Auxv is the auxiliary vector as written, AT_NULL pair included, for
	// /proc/<pid>/auxv.
	Auxv []uint64
	// CopiedBytes counts the file bytes Load copied into memory itself:
	// none for a CachedFile loaded into a FileMemory.
	CopiedBytes uint64
}

// Errors for executables that Load refuses. They are wrapped with details;
// execve reports ErrBadInterpreter as ELIBBAD and the others as ENOEXEC.
var (
	ErrNotELF         = errors.New("not an ELF executable")
	ErrWrongArch      = errors.New("not an x86-64 executable")
	ErrNotExecutable  = errors.New("ELF file is neither an executable nor a shared object")
	ErrMalformed      = errors.New("malformed ELF executable")
	ErrBadInterpreter = errors.New("unusable ELF interpreter")
)

// InterpreterError is a failure to open or load a program's interpreter.
// Err wraps ErrBadInterpreter when the file is not a usable interpreter,
// and is OpenInterpreter's error when it could not be opened.
type InterpreterError struct {
	Path string
	Err  error
}

func (e *InterpreterError) Error() string { return fmt.Sprintf("interpreter %s: %v", e.Path, e.Err) }

func (e *InterpreterError) Unwrap() error { return e.Err }

const (
	pageSize = 4096
	// mmapMinAddr is Linux's default vm.mmap_min_addr: nothing is mapped
	// near address zero, so NULL dereferences fault.
	mmapMinAddr = 0x10000
	maxUserTop  = 1 << 47
	// Linux refuses program header tables over 64 KiB.
	maxPhdrBytes = 64 << 10
	// copyChunk bounds the buffer used to copy segments from the file.
	copyChunk = 64 << 10
)

// Randomisation ranges, as x86-64 Linux has them.
const (
	stackRandomBits = 22 // STACK_RND_MASK: the stack top moves by up to 16 GiB
	mmapRandomBits  = 28 // mmap_rnd_bits: mmap base and PIE base move by up to 1 TiB
	brkRandomBits   = 13 // arch_randomize_brk: brk moves by up to 32 MiB
	maxStackRandom  = pageSize << stackRandomBits
	stackGuardGap   = 256 * pageSize
	minMmapGap      = 128 << 20
)

var progHeaderSize = uint64(binary.Size(elf.Prog64{}))

// program is what Load needs from a validated executable, in ELF addresses
// (before the load bias).
type program struct {
	pie       bool
	entry     uint64
	segments  []segment // sorted, non-overlapping, non-empty
	phdr      uint64
	hasPhdr   bool
	phnum     uint64
	execStack bool
	interp    string // PT_INTERP's path, when hasInterp
	hasInterp bool
	// align is the largest power-of-two p_align of the PT_LOAD segments
	// above the page size, or 0; Linux aligns a PIE's load bias to it.
	align uint64
}

type segment struct {
	vaddr, memsz, offset, filesz uint64
	prot                         int
}

func (s segment) end() uint64 { return s.vaddr + s.memsz }

// bounds returns the page range covering all segments.
func (p *program) bounds() (lo, hi uint64) {
	return pageDown(p.segments[0].vaddr), pageUp(p.segments[len(p.segments)-1].end())
}

// contains reports whether [addr, addr+length) lies within one segment.
func (p *program) contains(addr, length uint64) bool {
	for _, s := range p.segments {
		if s.vaddr <= addr && addr <= s.end() && length <= s.end()-addr {
			return true
		}
	}
	return false
}

// layout is the randomised placement of one process's memory.
type layout struct {
	stackTop, stackBottom, mmapBase, bias, brk uint64
	interpBias                                 uint64
}

// zeros is the randomness of a layout under ADDR_NO_RANDOMIZE.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Load maps the executable into mem, which must be empty below UserTop
// (segments and the stack are mapped MAP_FIXED), and builds the initial
// stack. Refused executables give errors wrapping the sentinel errors above;
// oversized arguments give unix.E2BIG. Once mapping has begun, an error
// leaves mem partly populated and it should be discarded.
func Load(mem Memory, exe io.ReaderAt, size int64, o Options) (*Image, error) {
	stackSize, err := o.validate()
	if err != nil {
		return nil, err
	}
	argv := o.Argv
	if len(argv) == 0 {
		// As Linux does since 5.18, so that argv[0] is never NULL.
		argv = []string{""}
	}
	stackLimit := o.StackLimit
	if stackLimit == 0 {
		stackLimit = stackSize
	}
	stringBytes, err := checkArgLimits(argv, o.Envv, o.ExecFn, stackLimit)
	if err != nil {
		return nil, err
	}
	prog, err := parse(exe, size)
	if err != nil {
		return nil, err
	}
	var interp *program
	var interpFile Interpreter
	if prog.hasInterp {
		ip, f, err := openInterpreter(&o, prog.interp)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		interp, interpFile = ip, f
	}
	layoutRandom := o.Random
	if o.NoRandomize {
		layoutRandom = zeros{}
	}
	lay, err := place(prog, interp, o.UserTop, stackSize, stackLimit, layoutRandom, o.NoRandomize)
	if err != nil {
		return nil, err
	}
	var vdso uint64
	if o.MapVDSO != nil {
		if vdso, lay.mmapBase, err = o.MapVDSO(lay.mmapBase); err != nil {
			return nil, err
		}
	}
	img, stack, err := buildStack(prog, interp, lay, argv, stringBytes, vdso, layoutRandom, &o)
	if err != nil {
		return nil, err
	}
	copied, err := loadSegments(mem, exe, prog, lay.bias)
	img.CopiedBytes += copied
	if err != nil {
		return nil, err
	}
	nameSegments(mem, prog, lay.bias, o.Name)
	if interp != nil {
		copied, err := loadSegments(mem, interpFile.File, interp, lay.interpBias)
		img.CopiedBytes += copied
		if err != nil {
			return nil, err
		}
		nameSegments(mem, interp, lay.interpBias, interpFile.Name)
	}
	if err := mapStack(mem, lay, prog.execStack, img.Stack, stack); err != nil {
		return nil, err
	}
	mem.SetBrk(lay.brk)
	return img, nil
}

// openInterpreter opens and parses the interpreter at path. It returns
// the parsed program, the open file and the function that closes it.
func openInterpreter(o *Options, path string) (*program, Interpreter, error) {
	if o.OpenInterpreter == nil {
		return nil, Interpreter{}, &InterpreterError{path, unix.ENOENT}
	}
	in, err := o.OpenInterpreter(path)
	if err != nil {
		return nil, Interpreter{}, &InterpreterError{path, err}
	}
	f, size, closeFile := in.File, in.Size, in.Close
	// Linux reads a whole ELF header from the interpreter first, and a
	// shorter file fails that read.
	if size < int64(binary.Size(elf.Header64{})) {
		closeFile()
		return nil, Interpreter{}, &InterpreterError{path, unix.EIO}
	}
	p, err := parse(f, size)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %w", ErrBadInterpreter, err)
	case p.hasInterp:
		err = fmt.Errorf("%w: it names an interpreter of its own (%s)", ErrBadInterpreter, p.interp)
	}
	if err != nil {
		closeFile()
		return nil, Interpreter{}, &InterpreterError{path, err}
	}
	return p, in, nil
}

// validate checks the caller's options and returns the stack size rounded
// up to a page.
func (o *Options) validate() (uint64, error) {
	switch {
	case o.Random == nil:
		return 0, fmt.Errorf("loader: no source of randomness: %w", unix.EINVAL)
	case o.UserTop%pageSize != 0 || o.UserTop <= mmapMinAddr || o.UserTop > maxUserTop:
		return 0, fmt.Errorf("loader: user top %#x is not a page-aligned address in (%#x, %#x]: %w",
			o.UserTop, mmapMinAddr, uint64(maxUserTop), unix.EINVAL)
	case o.StackSize == 0 || o.StackSize > o.UserTop/2:
		return 0, fmt.Errorf("loader: stack size %#x outside (0, %#x]: %w", o.StackSize, o.UserTop/2, unix.EINVAL)
	}
	return pageUp(o.StackSize), nil
}

// parse reads and validates the ELF header and program headers; section
// headers are ignored, as Linux ignores them.
func parse(exe io.ReaderAt, size int64) (*program, error) {
	if size < 0 {
		return nil, fmt.Errorf("loader: negative file size %d: %w", size, unix.EINVAL)
	}
	var hdr elf.Header64
	head := make([]byte, min(uint64(size), uint64(binary.Size(hdr))))
	if err := readFull(exe, head, 0); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(head, []byte(elf.ELFMAG)) {
		return nil, ErrNotELF
	}
	if len(head) < binary.Size(hdr) {
		return nil, fmt.Errorf("%w: truncated ELF header", ErrMalformed)
	}
	if class := elf.Class(head[elf.EI_CLASS]); class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("%w (%v)", ErrWrongArch, class)
	}
	if data := elf.Data(head[elf.EI_DATA]); data != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("%w (%v)", ErrWrongArch, data)
	}
	if _, err := binary.Decode(head, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if machine := elf.Machine(hdr.Machine); machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w (%v)", ErrWrongArch, machine)
	}
	if typ := elf.Type(hdr.Type); typ != elf.ET_EXEC && typ != elf.ET_DYN {
		return nil, fmt.Errorf("%w (%v)", ErrNotExecutable, typ)
	}
	tableSize := uint64(hdr.Phnum) * progHeaderSize
	switch {
	case uint64(hdr.Phentsize) != progHeaderSize:
		return nil, fmt.Errorf("%w: program header size %d, want %d", ErrMalformed, hdr.Phentsize, progHeaderSize)
	case hdr.Phnum == 0 || tableSize > maxPhdrBytes:
		return nil, fmt.Errorf("%w: %d program headers", ErrMalformed, hdr.Phnum)
	case !inFile(hdr.Phoff, tableSize, size):
		return nil, fmt.Errorf("%w: program headers at offset %#x beyond the end of the file", ErrMalformed, hdr.Phoff)
	}
	table := make([]byte, tableSize)
	if err := readFull(exe, table, hdr.Phoff); err != nil {
		return nil, err
	}
	progs := make([]elf.Prog64, hdr.Phnum)
	if _, err := binary.Decode(table, binary.LittleEndian, progs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	p := &program{pie: elf.Type(hdr.Type) == elf.ET_DYN, entry: hdr.Entry, phnum: uint64(hdr.Phnum)}
	var phdrSegment *elf.Prog64
	for i, ph := range progs {
		switch elf.ProgType(ph.Type) {
		case elf.PT_INTERP:
			// Linux heeds the first PT_INTERP only.
			if !p.hasInterp {
				path, err := readInterp(exe, size, ph)
				if err != nil {
					return nil, err
				}
				p.interp, p.hasInterp = path, true
			}
		case elf.PT_LOAD:
			if err := p.addSegment(ph, size); err != nil {
				return nil, err
			}
			if ph.Align > pageSize && ph.Align&(ph.Align-1) == 0 {
				p.align = max(p.align, ph.Align)
			}
		case elf.PT_PHDR:
			phdrSegment = &progs[i]
		case elf.PT_GNU_STACK:
			p.execStack = elf.ProgFlag(ph.Flags)&elf.PF_X != 0
		}
	}
	if len(p.segments) == 0 {
		return nil, fmt.Errorf("%w: no loadable segments", ErrMalformed)
	}
	if !p.contains(p.entry, 1) {
		return nil, fmt.Errorf("%w: entry point %#x outside the loadable segments", ErrMalformed, p.entry)
	}
	if phdrSegment != nil {
		if !p.contains(phdrSegment.Vaddr, tableSize) {
			return nil, fmt.Errorf("%w: PT_PHDR at %#x outside the loadable segments", ErrMalformed, phdrSegment.Vaddr)
		}
		p.phdr, p.hasPhdr = phdrSegment.Vaddr, true
		return p, nil
	}
	for _, s := range p.segments {
		if s.offset <= hdr.Phoff && hdr.Phoff+tableSize <= s.offset+s.filesz {
			p.phdr, p.hasPhdr = s.vaddr+(hdr.Phoff-s.offset), true
			break
		}
	}
	return p, nil
}

// readInterp reads PT_INTERP's path, which must be NUL-terminated and at
// most PATH_MAX bytes, as Linux requires.
func readInterp(exe io.ReaderAt, size int64, ph elf.Prog64) (string, error) {
	if ph.Filesz < 2 || ph.Filesz > unix.PathMax || !inFile(ph.Off, ph.Filesz, size) {
		return "", fmt.Errorf("%w: PT_INTERP of %d bytes at offset %#x", ErrMalformed, ph.Filesz, ph.Off)
	}
	path := make([]byte, ph.Filesz)
	if err := readFull(exe, path, ph.Off); err != nil {
		return "", err
	}
	if path[len(path)-1] != 0 {
		return "", fmt.Errorf("%w: PT_INTERP is not NUL-terminated", ErrMalformed)
	}
	path, _, _ = bytes.Cut(path, []byte{0})
	return string(path), nil
}

func (p *program) addSegment(ph elf.Prog64, size int64) error {
	invalid := func(why string) error {
		return fmt.Errorf("%w: PT_LOAD at %#x: %s", ErrMalformed, ph.Vaddr, why)
	}
	switch {
	case ph.Filesz > ph.Memsz:
		return invalid("p_filesz > p_memsz")
	case ph.Memsz == 0:
		return nil
	case !inFile(ph.Off, ph.Filesz, size):
		return invalid("file range beyond the end of the file")
	case ph.Vaddr%pageSize != ph.Off%pageSize:
		return invalid("p_vaddr and p_offset differ modulo the page size")
	case ph.Vaddr > math.MaxUint64-pageSize || ph.Memsz > math.MaxUint64-pageSize-ph.Vaddr:
		return invalid("address range overflows")
	}
	if n := len(p.segments); n > 0 && ph.Vaddr < p.segments[n-1].end() {
		return invalid("overlaps or precedes the previous PT_LOAD")
	}
	p.segments = append(p.segments, segment{
		vaddr: ph.Vaddr, memsz: ph.Memsz, offset: ph.Off, filesz: ph.Filesz,
		prot: protection(elf.ProgFlag(ph.Flags)),
	})
	return nil
}

func protection(flags elf.ProgFlag) int {
	prot := unix.PROT_NONE
	if flags&elf.PF_R != 0 {
		prot |= unix.PROT_READ
	}
	if flags&elf.PF_W != 0 {
		prot |= unix.PROT_WRITE
	}
	if flags&elf.PF_X != 0 {
		prot |= unix.PROT_EXEC
	}
	return prot
}

// place chooses the randomised layout as x86-64 Linux does: the stack just
// below a randomised top, the mmap base below the stack's maximum extent
// (stackLimit, clamped to [128 MiB, 5/6 of the address space]),
// a PIE with an interpreter (or with segments aligned beyond a page) at two
// thirds of the address space (ELF_ET_DYN_BASE) plus a random offset,
// aligned to its segments' alignment, brk a random distance above the
// image, and a position-independent interpreter just below the mmap base,
// which then moves below it. A position-independent program without an
// interpreter (a static PIE, or ld.so run as the program) goes where mmap
// would put it, just below the mmap base, and its brk to ELF_ET_DYN_BASE
// plus a random offset, out of the mmap area. Under noRandomize, random
// reads zeros, the mmap base leaves no room for stack randomisation, and
// brk starts at the end of the image.
func place(p, interp *program, userTop, stackSize, stackLimit uint64, random io.Reader, noRandomize bool) (layout, error) {
	var l layout
	stackRandom, err := randomPages(random, stackRandomBits)
	if err != nil {
		return l, err
	}
	mmapRandom, err := randomPages(random, mmapRandomBits)
	if err != nil {
		return l, err
	}
	l.stackTop = userTop - stackRandom
	pad := uint64(stackGuardGap)
	if !noRandomize {
		pad += maxStackRandom
	}
	gap := stackLimit
	if gap+pad > gap {
		gap += pad
	}
	gap = min(max(gap, minMmapGap), userTop/6*5)
	if l.stackTop < stackSize+mmapMinAddr || userTop < gap+mmapRandom+mmapMinAddr {
		return l, fmt.Errorf("loader: user top %#x too low for the stack and its randomisation: %w", userTop, unix.ENOMEM)
	}
	l.stackBottom = l.stackTop - stackSize
	l.mmapBase = pageDown(userTop - gap - mmapRandom)
	if l.mmapBase > l.stackBottom {
		return l, fmt.Errorf("loader: stack size %#x leaves no room below the stack: %w", stackSize, unix.ENOMEM)
	}

	lo, hi := p.bounds()
	etDynBase := pageDown(userTop / 3 * 2)
	inMmapArea := p.pie && interp == nil && p.align == 0
	if p.pie && !inMmapArea {
		loadRandom, err := randomPages(random, mmapRandomBits)
		if err != nil {
			return l, err
		}
		base := etDynBase + loadRandom
		if p.align != 0 {
			base &^= p.align - 1
		}
		l.bias = base - lo
	}
	brkRandom, err := randomPages(random, brkRandomBits)
	if err != nil {
		return l, err
	}
	start, span := lo+l.bias, hi-lo
	if inMmapArea {
		if span > l.mmapBase-mmapMinAddr || (!noRandomize && etDynBase+brkRandom > l.mmapBase-span) {
			return l, fmt.Errorf("%w: image of %#x bytes does not fit below %#x", ErrMalformed, span, l.mmapBase)
		}
		l.mmapBase -= span
		l.bias = l.mmapBase - lo
		l.brk = l.mmapBase + span
		if !noRandomize {
			l.brk = etDynBase + brkRandom
		}
		return l, nil
	}
	if start < mmapMinAddr || start > l.mmapBase || span > l.mmapBase-start || brkRandom > l.mmapBase-start-span {
		return l, fmt.Errorf("%w: image [%#x, %#x) does not fit in [%#x, %#x)",
			ErrMalformed, start, start+span, uint64(mmapMinAddr), l.mmapBase)
	}
	l.brk = start + span + brkRandom
	if interp != nil {
		return l, placeInterp(&l, interp, start)
	}
	return l, nil
}

// placeInterp puts a position-independent interpreter just below the mmap
// base, above brk, and checks that a fixed-address one lies between the
// program's image (which starts at imageStart) and the stack.
func placeInterp(l *layout, interp *program, imageStart uint64) error {
	lo, hi := interp.bounds()
	span := hi - lo
	if interp.pie {
		if span > l.mmapBase-l.brk {
			return fmt.Errorf("%w: %#x bytes do not fit below %#x", ErrBadInterpreter, span, l.mmapBase)
		}
		l.mmapBase -= span
		l.interpBias = l.mmapBase - lo
		return nil
	}
	if hi > l.stackBottom || (lo < l.brk && hi > imageStart) || lo < mmapMinAddr {
		return fmt.Errorf("%w: [%#x, %#x) overlaps the program or its stack", ErrBadInterpreter, lo, hi)
	}
	if hi > l.mmapBase {
		l.mmapBase = lo
	}
	return nil
}

// loadSegments maps the segments and returns how many file bytes it
// copied. Every byte of a segment's pages outside its file bytes reads as
// zero, and pages shared by two segments get the union of both
// protections. A CachedFile loaded into a FileMemory has the pages that
// hold nothing but one segment's file bytes mapped from the cache, and
// the others built from the cached pages; anything else is mapped
// writable, copied in, and then given its protections.
func loadSegments(mem Memory, exe io.ReaderAt, p *program, bias uint64) (uint64, error) {
	runs := pageRuns(p.segments, bias)
	if fm, ok := mem.(FileMemory); ok {
		if cf, ok := exe.(CachedFile); ok {
			return 0, loadCached(fm, cf, p, bias, runs)
		}
	}
	for _, r := range runs {
		if err := mmapFixed(mem, r.start, r.end-r.start, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return 0, err
		}
	}
	buf := make([]byte, copyChunk)
	var copied uint64
	for _, s := range p.segments {
		for done := uint64(0); done < s.filesz; {
			chunk := buf[:min(uint64(len(buf)), s.filesz-done)]
			if err := readFull(exe, chunk, s.offset+done); err != nil {
				return copied, err
			}
			if err := copyOut(mem, s.vaddr+bias+done, chunk); err != nil {
				return copied, err
			}
			done += uint64(len(chunk))
			copied += uint64(len(chunk))
		}
	}
	for _, r := range runs {
		if err := mem.Mprotect(r.start, r.end-r.start, r.prot); err != nil {
			return copied, fmt.Errorf("loader: mprotect [%#x, %#x): %w", r.start, r.end, err)
		}
	}
	return copied, nil
}

// loadCached maps the runs of pages from the cached file's frames.
func loadCached(mem FileMemory, exe CachedFile, p *program, bias uint64, runs []pageRun) error {
	src := &segmentPages{exe: exe, segments: p.segments, bias: bias, frames: make([][]uint64, len(p.segments))}
	defer func() {
		for _, frames := range src.frames {
			exe.Release(frames)
		}
	}()
	for i, s := range p.segments {
		if s.filesz == 0 {
			continue
		}
		first := pageDown(s.offset) / pageSize
		frames, err := exe.Pages(first, pageUp(s.offset+s.filesz)/pageSize-first)
		if err != nil {
			return fmt.Errorf("loader: reading the segment at %#x: %w", s.vaddr, err)
		}
		src.frames[i] = frames
	}
	for _, r := range runs {
		src.start = r.start
		got, err := mem.MapFile(r.start, r.end-r.start, r.prot, unix.MAP_FIXED|unix.MAP_PRIVATE, src)
		if err != nil {
			return fmt.Errorf("loader: mmap [%#x, %#x): %w", r.start, r.end, err)
		}
		if got != r.start {
			return fmt.Errorf("loader: MAP_FIXED mmap at %#x returned %#x", r.start, got)
		}
	}
	return nil
}

// segmentPages gives MapFile the pages of a run that starts at start.
type segmentPages struct {
	exe      CachedFile
	segments []segment
	bias     uint64
	// frames holds, for each segment, the frames of the file pages its
	// file bytes lie in.
	frames [][]uint64
	start  uint64
}

// filePage returns the cached frame holding the bytes segment i has at
// virtual address va, and where in the frame they are. A segment's
// addresses and file offsets agree modulo the page size, so the bytes it
// has in one virtual page come from one file page.
func (sp *segmentPages) filePage(i int, va uint64) (frame, at uint64) {
	s := sp.segments[i]
	off := s.offset + (va - s.vaddr - sp.bias)
	return sp.frames[i][off/pageSize-pageDown(s.offset)/pageSize], off % pageSize
}

// Frame implements mm.FilePages: a page that holds nothing but one
// segment's file bytes is the cached file page.
func (sp *segmentPages) Frame(i uint64) uint64 {
	va := sp.start + i*pageSize
	only := -1
	for k, s := range sp.segments {
		if s.vaddr+sp.bias < va+pageSize && va < s.end()+sp.bias {
			if only >= 0 {
				return 0
			}
			only = k
		}
	}
	if only < 0 {
		return 0
	}
	s := sp.segments[only]
	if s.vaddr+sp.bias > va || va+pageSize > s.vaddr+sp.bias+s.filesz {
		return 0
	}
	frame, _ := sp.filePage(only, va)
	return frame
}

// Fill implements mm.FilePages: it copies the file bytes each segment has
// in the page.
func (sp *segmentPages) Fill(i uint64, dst []byte) {
	va := sp.start + i*pageSize
	for k, s := range sp.segments {
		from, to := max(va, s.vaddr+sp.bias), min(va+pageSize, s.vaddr+sp.bias+s.filesz)
		if from >= to {
			continue
		}
		// A file that shrank since it was opened has no page there: the
		// bytes read as zeros.
		if frame, at := sp.filePage(k, from); frame != 0 {
			copy(dst[from-va:to-va], sp.exe.PageBytes(frame)[at:])
		}
	}
}

// pageRun is a range of pages with one final protection.
type pageRun struct {
	start, end uint64
	prot       int
}

// nameSegments labels the areas that hold p's segments with the file's
// name, for /proc/PID/maps. Linux shows the pages of bss past the file's
// last page as an unnamed area; here they share their segment's name.
func nameSegments(mem Memory, p *program, bias uint64, name string) {
	if name == "" {
		return
	}
	for _, r := range pageRuns(p.segments, bias) {
		mem.SetName(r.start, name)
	}
}

// pageRuns splits the segments' pages into disjoint runs. Segments are
// sorted and do not overlap, so a segment can share only its first page,
// and only with the last page of the runs so far.
func pageRuns(segments []segment, bias uint64) []pageRun {
	var runs []pageRun
	for _, s := range segments {
		start, end := pageDown(s.vaddr+bias), pageUp(s.end()+bias)
		if n := len(runs); n > 0 && runs[n-1].end > start {
			shared := pageRun{start: start, end: start + pageSize, prot: runs[n-1].prot | s.prot}
			if runs[n-1].start == start {
				runs[n-1] = shared
			} else {
				runs[n-1].end = start
				runs = append(runs, shared)
			}
			start += pageSize
		}
		if start < end {
			runs = append(runs, pageRun{start: start, end: end, prot: s.prot})
		}
	}
	return runs
}

func mmapFixed(mem Memory, addr, length uint64, prot int) error {
	got, err := mem.Mmap(addr, length, prot, unix.MAP_FIXED|unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("loader: mmap [%#x, %#x): %w", addr, addr+length, err)
	}
	if got != addr {
		return fmt.Errorf("loader: MAP_FIXED mmap at %#x returned %#x", addr, got)
	}
	return nil
}

func copyOut(mem Memory, va uint64, src []byte) error {
	n, err := mem.CopyOut(va, src)
	if err == nil && n != len(src) {
		err = unix.EFAULT
	}
	if err != nil {
		return fmt.Errorf("loader: writing %d bytes at %#x: %w", len(src), va, err)
	}
	return nil
}

// readFull reads len(buf) bytes at off; a short read means the file is
// shorter than its stated size.
func readFull(exe io.ReaderAt, buf []byte, off uint64) error {
	n, err := exe.ReadAt(buf, int64(off))
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("loader: reading %d bytes at offset %#x: %w", len(buf), off, err)
}

// inFile reports whether [off, off+length) lies within a file of size bytes.
func inFile(off, length uint64, size int64) bool {
	return off <= uint64(size) && length <= uint64(size)-off
}

// randomPages returns a random multiple of the page size below pageSize<<bits.
func randomPages(random io.Reader, bits uint) (uint64, error) {
	r, err := randomBelow(random, 1<<bits)
	return r * pageSize, err
}

// randomBelow returns a random number below n, a power of two.
func randomBelow(random io.Reader, n uint64) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return 0, fmt.Errorf("loader: reading randomness: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]) & (n - 1), nil
}

func pageDown(addr uint64) uint64 { return addr &^ (pageSize - 1) }

func pageUp(addr uint64) uint64 { return pageDown(addr + pageSize - 1) }
