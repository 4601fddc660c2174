// Package mm owns guest memory: the guest-physical frame allocator, x86-64
// page tables, per-process address spaces and copies between guest and host.
package mm

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageSize is the size of a guest page and of a guest-physical frame.
const PageSize = 4096

const pageMask = PageSize - 1

// pageAlign rounds x up to a page boundary, wrapping to 0 on overflow as
// Linux's PAGE_ALIGN does (callers turn that 0 into the errno Linux gives).
func pageAlign(x uint64) uint64 {
	return (x + pageMask) &^ pageMask
}

// PhysMem is the guest-physical memory [0, Size()) of one VM: a memfd
// mapped MAP_SHARED, so the host allocates real pages only when they are
// touched, and the file's block count says how many it holds. The kvm package registers Bytes() as a memslot
// at guest-physical 0. Frame 0 is never handed out: address 0 means "none".
//
// The memory is shared rather than private so that KVM can be made to drop
// its translations of a frame that stays in use without the host ever losing
// write access to it (see revoke): host code writes guest frames at any time
// (copy-out, futex words, the time page, file pages, pinned I/O) without
// coordinating with revokes.
//
// All methods are safe for concurrent use.
type PhysMem struct {
	mem []byte
	fd  int // the memfd behind mem

	mu       sync.Mutex
	refs     []uint32 // reference count by frame number, for frames below next
	free     []uint64 // freed frame numbers; the lowest is at the end
	next     uint64   // lowest frame number never handed out
	inUse    uint64
	reserved uint64 // frames promised to operations in progress (see reserve)
	// reclaimer frees frames that nothing needs (a PageCache's unmapped
	// pages) when too few are left; nil when there is none.
	reclaimer func(n uint64)
}

// NewPhysMem maps size bytes (rounded up to PageSize) of guest-physical memory.
func NewPhysMem(size uint64) (*PhysMem, error) {
	size = pageAlign(size)
	if size == 0 || size > math.MaxInt {
		return nil, unix.EINVAL
	}
	fd, err := unix.MemfdCreate("kvmbox-guest", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mm: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mm: sizing guest memory: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Where the host lets shared memory use transparent huge pages, this
	// backs the guest's huge pages with huge host pages, so that KVM can
	// map them whole; elsewhere it changes nothing, and its failure too.
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	return &PhysMem{mem: mem, fd: fd, refs: make([]uint32, 1), next: 1}, nil
}

// Bytes is the host view of the whole guest-physical memory.
func (p *PhysMem) Bytes() []byte { return p.mem }

// Size is the size of the guest-physical memory in bytes.
func (p *PhysMem) Size() uint64 { return uint64(len(p.mem)) }

// Close unmaps the memory. No frame may be used afterwards.
func (p *PhysMem) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mem == nil {
		return nil
	}
	err := unix.Munmap(p.mem)
	p.mem = nil
	return errors.Join(err, unix.Close(p.fd))
}

// Frame is the host view of the 4 KiB frame that contains gpa.
func (p *PhysMem) Frame(gpa uint64) []byte {
	start := gpa &^ pageMask
	return p.mem[start : start+PageSize : start+PageSize]
}

// FramesInUse counts the frames handed out and not yet freed.
func (p *PhysMem) FramesInUse() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// AllocFrame hands out a zeroed frame with one reference and returns its
// guest-physical address, or unix.ENOMEM when none is left.
func (p *PhysMem) AllocFrame() (uint64, error) {
	for reclaimed := false; ; reclaimed = true {
		p.mu.Lock()
		if p.availableLocked() > 0 {
			defer p.mu.Unlock()
			return p.allocLocked(), nil
		}
		p.mu.Unlock()
		if reclaimed || !p.reclaim(1) {
			return 0, unix.ENOMEM
		}
	}
}

// reclaim asks the reclaimer to free n frames; it reports whether there
// is one. It must be called without p.mu, which the reclaimer takes.
func (p *PhysMem) reclaim(n uint64) bool {
	p.mu.Lock()
	r := p.reclaimer
	p.mu.Unlock()
	if r == nil {
		return false
	}
	r(n)
	return true
}

// IncRef adds a reference to an allocated frame.
func (p *PhysMem) IncRef(gpa uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refs[p.liveFrameLocked(gpa)]++
}

// Shared reports whether more than one reference holds a frame.
func (p *PhysMem) Shared(gpa uint64) bool { return p.refCount(gpa) > 1 }

// DecRef drops a reference; see FreeFrames.
func (p *PhysMem) DecRef(gpa uint64) {
	p.FreeFrames([]uint64{gpa})
}

// FreeFrames drops one reference from each frame in gpas and reorders gpas.
// A frame left without references is returned to the host (see zero), which
// also zeroes it for its next user, and then freed. A frame that other users
// keep is revoked, so that KVM drops every translation of it that the
// dropped reference's mapping may have left behind. Both take one host call
// per contiguous run of frames.
//
// Frames anyone may read (the vDSO) are revoked too: under shadow paging a
// stale translation also hides whatever the guest maps at that address
// next, in the same address space or in one that reuses its page tables.
func (p *PhysMem) FreeFrames(gpas []uint64) { p.dropFrames(gpas, true) }

// dropFrames drops a reference to each frame, frees those left with none
// and, with revokeKept, revokes the others.
func (p *PhysMem) dropFrames(gpas []uint64, revokeKept bool) {
	dead := p.dropRefs(gpas)
	freed, kept := gpas[:dead], gpas[dead:]
	if revokeKept {
		p.revoke(kept)
	}
	p.zero(freed)

	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(freed) - 1; i >= 0; i-- {
		p.free = append(p.free, freed[i]/PageSize)
	}
	p.inUse -= uint64(len(freed))
}

// dropRefs drops a reference from each frame and moves the frames left
// without one to the front of gpas, returning how many there are. They stay
// off the free list until their host pages are handed back.
func (p *PhysMem) dropRefs(gpas []uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	dead := 0
	for i, gpa := range gpas {
		frame := p.liveFrameLocked(gpa)
		p.refs[frame]--
		if p.refs[frame] == 0 {
			gpas[i], gpas[dead] = gpas[dead], gpas[i]
			dead++
		}
	}
	return dead
}

func (p *PhysMem) frameCount() uint64 { return uint64(len(p.mem)) / PageSize }

func (p *PhysMem) availableLocked() uint64 {
	return p.frameCount() - p.next + uint64(len(p.free)) - p.reserved
}

func (p *PhysMem) allocLocked() uint64 {
	var frame uint64
	if n := len(p.free); n > 0 {
		frame = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		frame = p.next
		p.next++
		p.refs = append(p.refs, 0)
	}
	p.refs[frame] = 1
	p.inUse++
	return frame * PageSize
}

// liveFrameLocked returns the frame number of gpa. A gpa that is not an
// allocated frame is a bug in the kernel, not something a guest can cause.
func (p *PhysMem) liveFrameLocked(gpa uint64) uint64 {
	frame := gpa / PageSize
	if gpa&pageMask != 0 || frame == 0 || frame >= p.next || p.refs[frame] == 0 {
		panic(fmt.Sprintf("mm: %#x is not an allocated frame", gpa))
	}
	return frame
}

func (p *PhysMem) refCount(gpa uint64) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refs[p.liveFrameLocked(gpa)]
}

// reserve promises n frames to the caller: until it takes them with
// takeReserved or gives them back with unreserve, nobody else gets them. It
// lets an operation fail before it changes anything, and then not fail.
func (p *PhysMem) reserve(n uint64) error {
	if n > p.frameCount() {
		return unix.ENOMEM
	}
	for reclaimed := false; ; reclaimed = true {
		p.mu.Lock()
		available := p.availableLocked()
		if n <= available {
			p.reserved += n
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		if reclaimed || !p.reclaim(n-available) {
			return unix.ENOMEM
		}
	}
}

func (p *PhysMem) unreserve(n uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserved -= n
}

func (p *PhysMem) takeReserved() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserved--
	return p.allocLocked()
}

// takeReservedRun takes a 2 MiB-aligned run of HugePageSize/PageSize
// reserved frames, from those never handed out, and returns its start and
// end; start == end when no such run is left or too few frames are
// reserved. The frames skipped to reach the alignment become free ones.
func (p *PhysMem) takeReservedRun() (start, end uint64) {
	const n = HugePageSize / PageSize
	p.mu.Lock()
	defer p.mu.Unlock()
	base := (p.next + n - 1) &^ (n - 1)
	if p.reserved < n || base+n > p.frameCount() {
		return 0, 0
	}
	for f := base; f > p.next; f-- {
		p.free = append(p.free, f-1)
	}
	p.refs = append(p.refs, make([]uint32, base+n-p.next)...)
	for f := base; f < base+n; f++ {
		p.refs[f] = 1
	}
	p.next = base + n
	p.inUse += n
	p.reserved -= n
	return base * PageSize, (base + n) * PageSize
}

// zero replaces the contents of the frames with zeroes by handing their host
// pages back (madvise(MADV_REMOVE): the memory is shared, so MADV_DONTNEED
// would keep the contents); unmapping the pages fires KVM's MMU notifier,
// which drops every guest translation of them. It reorders gpas.
func (p *PhysMem) zero(gpas []uint64) {
	p.eachRun(gpas, func(run []byte) error { return unix.Madvise(run, unix.MADV_REMOVE) })
}

// revoke makes KVM drop every guest translation of the frames while keeping
// their contents: madvise(MADV_DONTNEED) unmaps the host pages, which fires
// KVM's MMU notifier, and since the memory is shared the pages stay in its
// backing object, to be mapped again at the next access, KVM's or the
// host's. Nothing is ever read-only, so a host write or a guest write on
// another vCPU just goes through (at worst after a minor fault): revokes
// need not be coordinated with either. It reorders gpas.
func (p *PhysMem) revoke(gpas []uint64) {
	p.eachRun(gpas, func(run []byte) error { return unix.Madvise(run, unix.MADV_DONTNEED) })
}

// eachRun sorts gpas and calls hostCall once per run of contiguous frames.
// Those calls only fail if the mapping is gone; carrying on would leave the
// guest a stale translation of memory it no longer owns, so that panics.
func (p *PhysMem) eachRun(gpas []uint64, hostCall func(run []byte) error) {
	slices.Sort(gpas)
	for len(gpas) > 0 {
		n := 1
		for n < len(gpas) && gpas[n] <= gpas[n-1]+PageSize {
			n++
		}
		start, end := gpas[0], gpas[n-1]+PageSize
		if err := hostCall(p.mem[start:end]); err != nil {
			panic(fmt.Sprintf("mm: host call on guest frames [%#x, %#x): %v", start, end, err))
		}
		gpas = gpas[n:]
	}
}

// frameBatch collects frames for one of zero, revoke or FreeFrames, so that
// contiguous frames share a host call while memory stays bounded. Whoever
// adds a frame has already written the page-table entries that stop using it.
type frameBatch struct {
	frames []uint64
	apply  func([]uint64)
}

const frameBatchSize = 512

func newFrameBatch(apply func([]uint64)) *frameBatch {
	return &frameBatch{apply: apply}
}

func (b *frameBatch) add(gpa uint64) {
	if b.frames == nil {
		b.frames = make([]uint64, 0, frameBatchSize)
	}
	b.frames = append(b.frames, gpa)
	if len(b.frames) == frameBatchSize {
		b.flush()
	}
}

func (b *frameBatch) flush() {
	if len(b.frames) > 0 {
		b.apply(b.frames)
		b.frames = b.frames[:0]
	}
}

// ResidentBytes is how much of guest-physical memory the host has backed
// with real pages now, whether or not frames are allocated: the memfd's
// block count, which costs one fstat however large the memory is.
func (p *PhysMem) ResidentBytes() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(p.fd, &st); err != nil {
		return 0, err
	}
	return uint64(st.Blocks) * 512, nil
}

// surelyZero reports, for each frame, whether the host has never backed it
// since it was last zeroed, so that its content is known to be zero without
// reading it (which would make the host back it). That holds for a page
// mincore reports absent only where the host has no swap to have moved it
// to; elsewhere every frame is reported as possibly non-zero. Frames
// handed out by AllocFrame are zero, so a copy of a surely-zero frame need
// not be written.
func (p *PhysMem) surelyZero(frames []uint64) []bool {
	zero := make([]bool, len(frames))
	var si unix.Sysinfo_t
	if len(frames) == 0 || unix.Sysinfo(&si) != nil || si.Totalswap != 0 {
		return zero
	}
	vec := make([]byte, 0, 64)
	// mincore takes a range: ask once per run of consecutive frames.
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j] == frames[j-1]+PageSize {
			j++
		}
		n := j - i
		vec = slices.Grow(vec[:0], n)[:n]
		_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&p.mem[frames[i]])), uintptr(n*PageSize), uintptr(unsafe.Pointer(&vec[0])))
		if e == 0 {
			for k, v := range vec {
				zero[i+k] = v&1 == 0
			}
		}
		i = j
	}
	return zero
}
