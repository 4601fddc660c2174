package mm

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// MaxUserTop is the end of the user half of the x86-64 address space
	// less its last page: Linux's TASK_SIZE.
	MaxUserTop = 0x7fff_ffff_f000

	// minMapAddr is the lowest address a mapping may use (vm.mmap_min_addr).
	minMapAddr = 0x10000

	// maxMapCount is how many areas one address space may hold (vm.max_map_count).
	maxMapCount = 65530

	// MAP_32BIT places mappings in [1 GiB, 2 GiB) on x86-64.
	map32Low  = 0x4000_0000
	map32High = 0x8000_0000

	// protSem is PROT_SEM, which Linux accepts and ignores; x/sys/unix lacks it.
	protSem = 0x8

	// keptMapFlags are the mmap flags an area remembers.
	keptMapFlags = unix.MAP_SHARED | unix.MAP_PRIVATE | unix.MAP_GROWSDOWN | unix.MAP_STACK | unix.MAP_NORESERVE
)

// Options configures an address space.
type Options struct {
	// UserTop is the exclusive upper bound of user mappings: MaxUserTop, or
	// lower if the VM keeps the top of the user half for itself.
	UserTop uint64
	// MmapBase is where the top-down search for mappings without a fixed
	// address starts (the loader randomises it).
	MmapBase uint64
	// Limit is how many bytes of user frames the address space may hold;
	// past it operations fail with ENOMEM. 0 leaves only PhysMem's own bound.
	Limit uint64
	// SharedPML4 are top-level entries the VM owns (the stub and its slots).
	// They are installed in the root and never walked, changed or freed here,
	// and must lie above UserTop.
	SharedPML4 []PML4Entry
}

// PML4Entry is one top-level page-table entry.
type PML4Entry struct {
	Index int
	Value uint64
}

// AddressSpace is the memory of one guest process: a 4-level page-table tree
// whose root is the guest's CR3, and the areas (VMAs) mapped in it. Every
// page of an area the guest may access has its own frame and a present
// entry, so a well-behaved guest never takes a page fault.
//
// Under shadow paging KVM does not see the host write a page-table entry.
// So whenever an entry that was present changes, the old frame is either
// handed back to the host (PhysMem.FreeFrames) or revoked (PhysMem.revoke),
// either of which makes KVM drop its translations, and TakeTLBFlush reports
// that the guest must flush its TLB. Page-table pages are never freed or
// reused before Release.
//
// All methods are safe for concurrent use.
type AddressSpace struct {
	mu       sync.Mutex
	phys     *PhysMem
	tables   pageTables
	vmas     vmaSet
	top      uint64
	mmapBase uint64
	limit    uint64 // bytes of user frames allowed, 0 for no limit of its own
	resident uint64 // user frames held, in pages
	brkStart uint64
	brk      uint64
	flushTLB bool
	// limitTotal and limitData are RLIMIT_AS and RLIMIT_DATA in bytes.
	limitTotal, limitData uint64
}

// NewAddressSpace makes an empty address space whose root holds o.SharedPML4.
func NewAddressSpace(p *PhysMem, o Options) (*AddressSpace, error) {
	if o.UserTop&pageMask != 0 || o.UserTop <= minMapAddr || o.UserTop > MaxUserTop ||
		o.MmapBase&pageMask != 0 || o.MmapBase < minMapAddr || o.MmapBase > o.UserTop {
		return nil, unix.EINVAL
	}
	var taken [entriesPerTable]bool
	for _, e := range o.SharedPML4 {
		if e.Index < 0 || e.Index >= entriesPerTable || taken[e.Index] || uint64(e.Index)<<pml4Shift < o.UserTop {
			return nil, unix.EINVAL
		}
		taken[e.Index] = true
	}
	root, err := p.AllocFrame()
	if err != nil {
		return nil, err
	}
	as := &AddressSpace{
		phys:       p,
		tables:     newPageTables(p, root),
		vmas:       newVMASet(),
		top:        o.UserTop,
		mmapBase:   o.MmapBase,
		limit:      o.Limit,
		limitTotal: noLimit,
		limitData:  noLimit,
	}
	for _, e := range o.SharedPML4 {
		store(as.tables.slot(root, uint64(e.Index)), e.Value)
	}
	return as, nil
}

// Root is the guest-physical address of the top-level table, the guest's
// CR3; 0 after Release.
func (as *AddressSpace) Root() uint64 {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.tables.root
}

// Mmap implements mmap(2) for anonymous memory; file mappings fail with
// ENODEV. Like Linux, it ignores flags and protection bits it does not know.
func (as *AddressSpace) Mmap(addr, length uint64, prot, flags int) (uint64, error) {
	if flags&unix.MAP_ANONYMOUS == 0 {
		return 0, unix.ENODEV
	}
	if length == 0 {
		return 0, unix.EINVAL
	}
	addr, length, flags, err := mapRequest(addr, length, flags)
	if err != nil {
		return 0, err
	}

	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	start, err := as.placeLocked(addr, length, flags)
	if err != nil {
		return 0, err
	}
	if flags&unix.MAP_FIXED_NOREPLACE != 0 && !as.vmas.isFree(start, start+length) {
		return 0, unix.EEXIST
	}
	switch flags & unix.MAP_TYPE {
	case unix.MAP_PRIVATE:
	case unix.MAP_SHARED:
		if flags&unix.MAP_GROWSDOWN != 0 {
			return 0, unix.EINVAL
		}
	default:
		return 0, unix.EINVAL
	}
	area := vma{start: start, end: start + length, prot: prot & protRWX, flags: flags & keptMapFlags}
	if err := as.mapLocked(area); err != nil {
		return 0, err
	}
	return start, nil
}

// placeLocked picks where a mapping of length bytes goes, as Linux's
// get_unmapped_area does.
func (as *AddressSpace) placeLocked(addr, length uint64, flags int) (uint64, error) {
	if length > as.top {
		return 0, unix.ENOMEM
	}
	if flags&unix.MAP_FIXED != 0 {
		switch {
		case addr > as.top-length:
			return 0, unix.ENOMEM
		case addr&pageMask != 0:
			return 0, unix.EINVAL
		case addr < minMapAddr:
			return 0, unix.EPERM
		}
		return addr, nil
	}
	if addr != 0 && addr <= as.top-length && as.vmas.isFree(addr, addr+length) {
		return addr, nil
	}
	if flags&unix.MAP_32BIT != 0 {
		if start, ok := as.vmas.lowestGap(map32Low, min(map32High, as.top), length); ok {
			return start, nil
		}
		return 0, unix.ENOMEM
	}
	return as.findFreeLocked(length)
}

// findFreeLocked searches top-down below MmapBase, then anywhere. Like
// Linux, it puts a mapping whose length is a multiple of 2 MiB on a 2 MiB
// boundary where it can, so that it can use huge pages.
func (as *AddressSpace) findFreeLocked(length uint64) (uint64, error) {
	if length%HugePageSize == 0 {
		slack := uint64(HugePageSize - PageSize)
		if start, ok := as.vmas.highestGap(minMapAddr, as.mmapBase, length+slack); ok {
			return (start + slack) &^ (HugePageSize - 1), nil
		}
		if start, ok := as.vmas.lowestGap(minMapAddr, as.top, length+slack); ok {
			return (start + slack) &^ (HugePageSize - 1), nil
		}
	}
	if start, ok := as.vmas.highestGap(minMapAddr, as.mmapBase, length); ok {
		return start, nil
	}
	if start, ok := as.vmas.lowestGap(minMapAddr, as.top, length); ok {
		return start, nil
	}
	return 0, unix.ENOMEM
}

// mapLocked replaces whatever is mapped in area's range by area, with a
// fresh frame for every page if the guest may access it. It either succeeds
// or changes nothing.
func (as *AddressSpace) mapLocked(area vma) error {
	if as.tables.root == 0 || as.vmas.len()+as.vmas.splits(area.start, area.end)+1 > maxMapCount {
		return unix.ENOMEM
	}
	var need uint64
	if accessible(area.prot) {
		need = (area.end - area.start) / PageSize
	}
	if err := as.chargeLocked(need, as.framesInLocked(area.start, area.end)); err != nil {
		return err
	}
	if err := as.buildLocked(area.start, area.end, need); err != nil {
		return err
	}
	as.unmapLocked(area.start, area.end)
	as.protectLocked(area.start, area.end, area.prot)
	as.vmas.insert(area)
	return nil
}

// chargeLocked reserves n frames for an operation that first frees released
// frames of this address space, failing with ENOMEM past the limit.
func (as *AddressSpace) chargeLocked(n, released uint64) error {
	if n == 0 {
		return nil
	}
	if as.limit != 0 && (as.resident-released+n)*PageSize > as.limit {
		return unix.ENOMEM
	}
	return as.phys.reserve(n)
}

// buildLocked creates the tables of [start, end) if reserved (charged)
// frames are to be placed there, and gives the reservation back on failure.
func (as *AddressSpace) buildLocked(start, end, reserved uint64) error {
	if reserved == 0 {
		return nil
	}
	if err := as.tables.buildRange(start, end); err != nil {
		as.phys.unreserve(reserved)
		return err
	}
	return nil
}

// framesInLocked counts the frames held by the pages of [start, end).
func (as *AddressSpace) framesInLocked(start, end uint64) uint64 {
	var n uint64
	as.tables.visit(start, end, func(_ uint64, slot *uint64) {
		if load(slot)&pteFrame != 0 {
			n++
		}
	})
	return n
}

// unmapLocked removes [start, end): entries first, then the frames.
func (as *AddressSpace) unmapLocked(start, end uint64) {
	freed := newFrameBatch(as.phys.FreeFrames)
	as.tables.visit(start, end, func(_ uint64, slot *uint64) {
		old := load(slot)
		if old&pteFrame == 0 {
			return
		}
		store(slot, 0)
		as.flushTLB = as.flushTLB || old&ptePresent != 0
		as.resident--
		freed.add(old & pteFrame)
	})
	freed.flush()
	as.vmas.remove(start, end)
}

// protectLocked rewrites the entries of [start, end) for prot. If prot lets
// the guest in, pages without a frame take one of the frames reserved for
// them, and the tables must exist. A 2 MiB-aligned stretch of such pages
// takes an aligned run of frames where there is one, so that it can be
// mapped as a huge page.
func (as *AddressSpace) protectLocked(start, end uint64, prot int) {
	revoked := newFrameBatch(as.phys.revoke)
	fill := accessible(prot)
	var run, runEnd uint64 // the next frame of the run being placed, and its end
	as.tables.visit(start, end, func(va uint64, slot *uint64) {
		old := load(slot)
		frame := old & pteFrame
		if frame == 0 {
			if !fill {
				return
			}
			if va%HugePageSize == 0 && end-va >= HugePageSize && emptyTable(slot) {
				run, runEnd = as.phys.takeReservedRun()
			}
			if run < runEnd {
				frame = run
				run += PageSize
			} else {
				frame = as.phys.takeReserved()
			}
			as.resident++
		}
		next := leafEntry(frame, prot)
		store(slot, next)
		if weakens(old, next) {
			as.flushTLB = true
			revoked.add(frame)
		}
	})
	revoked.flush()
}

// emptyTable reports whether the last-level table whose first entry is at
// slot holds no frame.
func emptyTable(slot *uint64) bool {
	entries := unsafe.Slice(slot, entriesPerTable)
	for i := range entries {
		if load(&entries[i])&pteFrame != 0 {
			return false
		}
	}
	return true
}

// Munmap implements munmap(2).
func (as *AddressSpace) Munmap(addr, length uint64) error {
	if addr&pageMask != 0 || !as.inUserRange(addr, length) {
		return unix.EINVAL
	}
	length = pageAlign(length)
	if length == 0 {
		return unix.EINVAL
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	return as.munmapLocked(addr, addr+length)
}

// inUserRange is munmap's check of a range against TASK_SIZE.
func (as *AddressSpace) inUserRange(addr, length uint64) bool {
	return addr <= as.top && length <= as.top-addr
}

func (as *AddressSpace) munmapLocked(start, end uint64) error {
	if as.vmas.len() >= maxMapCount && as.vmas.punchesHole(start, end) {
		return unix.ENOMEM
	}
	as.unmapLocked(start, end)
	return nil
}

// Mprotect implements mprotect(2). Unlike Linux, which changes the areas it
// meets before a hole, it changes nothing when it fails. Making a private
// area writable first gives it its own copy of every frame it shares (see
// Fork), as Linux's copy-on-write fault would.
func (as *AddressSpace) Mprotect(addr, length uint64, prot int) error {
	grows := prot & (unix.PROT_GROWSDOWN | unix.PROT_GROWSUP)
	prot &^= grows
	if grows == unix.PROT_GROWSDOWN|unix.PROT_GROWSUP || addr&pageMask != 0 {
		return unix.EINVAL
	}
	if length == 0 {
		return nil
	}
	end := addr + pageAlign(length)
	if end <= addr {
		return unix.ENOMEM
	}
	if prot&^(protRWX|protSem) != 0 {
		return unix.EINVAL
	}
	prot &= protRWX

	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	areas := as.vmas.overlapping(addr, end)
	if len(areas) == 0 {
		return unix.ENOMEM
	}
	if grows == unix.PROT_GROWSDOWN {
		if areas[0].flags&unix.MAP_GROWSDOWN == 0 {
			return unix.EINVAL
		}
		addr = areas[0].start
	} else if areas[0].start > addr {
		return unix.ENOMEM
	} else if grows == unix.PROT_GROWSUP {
		return unix.EINVAL // no area grows up on x86-64
	}
	covered := addr
	for _, v := range areas {
		if v.start > covered {
			return unix.ENOMEM
		}
		if v.readOnly && prot&^unix.PROT_READ != 0 {
			return unix.EACCES
		}
		covered = v.end
	}
	if covered < end {
		return unix.ENOMEM
	}
	if as.vmas.len()+as.vmas.splits(addr, end) > maxMapCount {
		return unix.ENOMEM
	}
	if err := as.protectFitsLocked(areas, addr, end, prot); err != nil {
		return err
	}

	var need, copies uint64
	if accessible(prot) {
		need = (end-addr)/PageSize - as.framesInLocked(addr, end)
	}
	// A private page that becomes writable must not write a frame that the
	// other side of a fork still maps.
	unshared := func(v vma) bool {
		return prot&unix.PROT_WRITE != 0 && v.prot&unix.PROT_WRITE == 0 && v.flags&unix.MAP_PRIVATE != 0
	}
	for _, v := range areas {
		if unshared(v) {
			copies += as.sharedFramesLocked(max(v.start, addr), min(v.end, end))
		}
	}
	// A copy replaces a frame this address space already holds.
	if err := as.chargeLocked(need+copies, copies); err != nil {
		return err
	}
	if err := as.buildLocked(addr, end, need+copies); err != nil {
		return err
	}
	for _, v := range areas {
		if unshared(v) {
			copies = as.unshareLocked(max(v.start, addr), min(v.end, end), copies)
		}
	}
	// Others may have dropped their references since the frames were counted.
	as.phys.unreserve(copies)
	as.protectLocked(addr, end, prot)
	as.vmas.protect(addr, end, prot)
	return nil
}

// Madvise implements madvise(2). MADV_DONTNEED and MADV_FREE make private
// anonymous pages read back as zero; a MAP_SHARED area keeps its contents,
// as Linux's shared memory does, and so does an area of MapFrames (the
// vDSO), whose pages Linux maps again from where they came from. Other
// accepted advice has no effect.
func (as *AddressSpace) Madvise(addr, length uint64, advice int) error {
	switch advice {
	case unix.MADV_DONTNEED, unix.MADV_FREE, unix.MADV_NORMAL, unix.MADV_RANDOM,
		unix.MADV_SEQUENTIAL, unix.MADV_WILLNEED, unix.MADV_HUGEPAGE, unix.MADV_NOHUGEPAGE,
		unix.MADV_DONTFORK, unix.MADV_DOFORK, unix.MADV_DONTDUMP, unix.MADV_DODUMP,
		unix.MADV_COLD, unix.MADV_PAGEOUT:
	default:
		return unix.EINVAL
	}
	aligned := pageAlign(length)
	if addr&pageMask != 0 || length != 0 && aligned == 0 || addr+aligned < addr {
		return unix.EINVAL
	}
	end := addr + aligned
	if end == addr {
		return nil
	}

	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	areas := as.vmas.overlapping(addr, end)
	discard := advice == unix.MADV_DONTNEED || advice == unix.MADV_FREE
	var covered uint64
	for _, v := range areas {
		covered += min(v.end, end) - max(v.start, addr)
		// Linux frees only anonymous private memory.
		if advice == unix.MADV_FREE && (v.flags&unix.MAP_SHARED != 0 || v.frames) {
			return unix.EINVAL
		}
	}
	for _, v := range areas {
		if discard && v.flags&unix.MAP_PRIVATE != 0 && !v.frames {
			if err := as.discardLocked(max(v.start, addr), min(v.end, end)); err != nil {
				return err
			}
		}
	}
	if covered < end-addr {
		return unix.ENOMEM
	}
	return nil
}

// discardLocked zeroes the pages of [start, end). A frame only this address
// space uses is zeroed where it is, which keeps its entry; one that others
// share is replaced by a fresh frame.
func (as *AddressSpace) discardLocked(start, end uint64) error {
	shared := as.sharedFramesLocked(start, end)
	if err := as.chargeLocked(shared, shared); err != nil {
		return err
	}
	zeroed := newFrameBatch(as.phys.zero)
	dropped := newFrameBatch(as.phys.FreeFrames)
	as.tables.visit(start, end, func(_ uint64, slot *uint64) {
		old := load(slot)
		frame := old & pteFrame
		switch {
		case frame == 0:
		case as.phys.refCount(frame) == 1:
			zeroed.add(frame)
		case shared > 0:
			shared--
			store(slot, old&^pteFrame|as.phys.takeReserved())
			as.flushTLB = as.flushTLB || old&ptePresent != 0
			dropped.add(frame)
		}
	})
	zeroed.flush()
	dropped.flush()
	// Others may have dropped their references since the frames were counted.
	as.phys.unreserve(shared)
	return nil
}

// SetBrk sets the initial program break: the end of bss, page aligned.
func (as *AddressSpace) SetBrk(start uint64) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.brkStart, as.brk = start, start
}

// Brk implements brk(2): it moves the break to addr and returns the new
// break, or returns the old one if addr is 0, below the initial break, or
// cannot be mapped.
func (as *AddressSpace) Brk(addr uint64) uint64 {
	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	if addr < as.brkStart {
		return as.brk
	}
	newTop, oldTop := pageAlign(addr), pageAlign(as.brk)
	switch {
	case newTop < addr:
		return as.brk
	case newTop == oldTop:
	case newTop < oldTop:
		if as.munmapLocked(newTop, oldTop) != nil {
			return as.brk
		}
	default:
		// Linux keeps a free page above the heap.
		if oldTop < minMapAddr || newTop > as.top || !as.vmas.isFree(oldTop, newTop+PageSize) ||
			!as.fitsLocked(newTop-oldTop, true) {
			return as.brk
		}
		heap := vma{start: oldTop, end: newTop, prot: unix.PROT_READ | unix.PROT_WRITE, flags: unix.MAP_PRIVATE, name: "[heap]"}
		if as.mapLocked(heap) != nil {
			return as.brk
		}
	}
	as.brk = addr
	return addr
}

// settleLocked maps what qualifies as huge pages after an operation, and
// asks for a TLB flush if a mapping changed form.
func (as *AddressSpace) settleLocked() {
	as.tables.settle()
	if as.tables.resized {
		as.tables.resized = false
		as.flushTLB = true
	}
}

// TakeTLBFlush reports whether a present page-table entry was changed or
// removed, or a mapping changed between pages and a huge page, since the
// last call; the guest must then flush its TLB before user code runs again.
func (as *AddressSpace) TakeTLBFlush() bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	flush := as.flushTLB
	as.flushTLB = false
	return flush
}

// Mappings lists the areas in address order.
func (as *AddressSpace) Mappings() []Mapping {
	as.mu.Lock()
	defer as.mu.Unlock()
	maps := make([]Mapping, 0, as.vmas.len())
	as.vmas.tree.Ascend(func(v vma) bool {
		maps = append(maps, Mapping{Start: v.start, End: v.end, Prot: v.prot, Flags: v.flags, Name: v.name})
		return true
	})
	return maps
}

// SetName labels the area that contains start, e.g. "[stack]".
func (as *AddressSpace) SetName(start uint64, name string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.vmas.setName(start, name)
}

// Translate returns the guest-physical address va maps to and what the guest
// may do there; ok is false where the guest would fault on any access.
func (as *AddressSpace) Translate(va uint64) (gpa uint64, prot int, ok bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	e, ok := as.entryLocked(va)
	if !ok {
		return 0, 0, false
	}
	return e&pteFrame | va&pageMask, entryProt(e), true
}

// entryLocked returns the present user entry that maps va.
func (as *AddressSpace) entryLocked(va uint64) (uint64, bool) {
	if va >= as.top {
		return 0, false
	}
	slot := as.tables.leaf(va)
	if slot == nil {
		return 0, false
	}
	e := load(slot)
	return e, e&ptePresent != 0
}

// Resident is how many bytes of user frames the address space holds.
func (as *AddressSpace) Resident() uint64 {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.resident * PageSize
}

// Release frees every frame and page-table page of the address space except
// the VM's shared subtrees. No vCPU may be running on Root() any more.
// Afterwards the address space is empty and cannot map anything.
func (as *AddressSpace) Release() {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.tables.root == 0 {
		return
	}
	freed := newFrameBatch(as.phys.FreeFrames)
	as.tables.release(as.top, freed)
	freed.flush()
	as.vmas.tree.Clear(false)
	as.resident = 0
}

// mapRequest normalises an mmap request as Linux does before placing it:
// MAP_FIXED_NOREPLACE implies MAP_FIXED, a hint is page-aligned and kept
// above mmap_min_addr, and the length is rounded up to whole pages
// (ENOMEM where that overflows).
func mapRequest(addr, length uint64, flags int) (uint64, uint64, int, error) {
	if flags&unix.MAP_FIXED_NOREPLACE != 0 {
		flags |= unix.MAP_FIXED
	}
	if flags&unix.MAP_FIXED == 0 {
		addr &^= pageMask
		if addr != 0 && addr < minMapAddr {
			addr = minMapAddr
		}
	}
	length = pageAlign(length)
	if length == 0 {
		return 0, 0, 0, unix.ENOMEM
	}
	return addr, length, flags, nil
}
