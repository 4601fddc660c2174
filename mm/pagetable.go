package mm

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// x86-64 page-table entry bits.
const (
	ptePresent  uint64 = 1 << 0
	pteWritable uint64 = 1 << 1
	pteUser     uint64 = 1 << 2
	pteNoExec   uint64 = 1 << 63
	pteFrame    uint64 = 0x000f_ffff_ffff_f000
	// pteAccessedDirty are set by the guest's page walker, not by us.
	pteAccessedDirty uint64 = 1<<5 | 1<<6
	// pteHuge in a second-level entry makes it map a 2 MiB page.
	pteHuge uint64 = 1 << 7

	// tableEntry links a lower-level table; the leaf decides the permissions.
	tableEntry = ptePresent | pteWritable | pteUser
)

const (
	entriesPerTable = 512
	pml4Shift       = 39
	// leafTableSpan is how much address space one last-level table maps,
	// and the size of a huge page.
	leafTableSpan = entriesPerTable * PageSize
	// HugePageSize is the size of the large pages the page tables use
	// where an area allows.
	HugePageSize = leafTableSpan
)

const protRWX = unix.PROT_READ | unix.PROT_WRITE | unix.PROT_EXEC

func accessible(prot int) bool { return prot&protRWX != 0 }

// leafEntry is the entry that maps frame with prot. A PROT_NONE page keeps
// its frame (Linux keeps the contents) in an entry the hardware sees as not
// present.
func leafEntry(frame uint64, prot int) uint64 {
	if !accessible(prot) {
		return frame
	}
	e := frame | ptePresent | pteUser
	if prot&unix.PROT_WRITE != 0 {
		e |= pteWritable
	}
	if prot&unix.PROT_EXEC == 0 {
		e |= pteNoExec
	}
	return e
}

// entryProt is what a present entry lets the guest do.
func entryProt(e uint64) int {
	prot := unix.PROT_READ
	if e&pteWritable != 0 {
		prot |= unix.PROT_WRITE
	}
	if e&pteNoExec == 0 {
		prot |= unix.PROT_EXEC
	}
	return prot
}

// weakens reports whether replacing entry old by next takes away something
// the guest may have cached: the page, its frame, write or execute access.
func weakens(old, next uint64) bool {
	if old&ptePresent == 0 {
		return false
	}
	return next&ptePresent == 0 ||
		old&pteFrame != next&pteFrame ||
		old&pteWritable != 0 && next&pteWritable == 0 ||
		old&pteNoExec == 0 && next&pteNoExec != 0
}

// pageTables is a 4-level tree whose tables are frames of phys. Entries are
// read and written atomically: the guest's page walker reads them
// concurrently and must never see half an entry.
//
// A last-level table whose 512 entries map 512 contiguous frames of a 2 MiB
// aligned run with the same permissions is also mapped as one 2 MiB page:
// the second-level entry above it maps the run itself (pteHuge), which
// saves the guest's TLB and its page walks. The last-level table stays in
// place and stays authoritative: every walk here goes through it, a walk
// that may write one of its entries first points the second-level entry
// back at it ("demotes"), and settle maps the tables that qualify as huge
// pages again. The two forms always translate every address alike, so the
// guest may use either; a change of form still asks for a TLB flush
// (resized), because some processors must not hold both at once.
type pageTables struct {
	phys *PhysMem
	root uint64 // 0 once released
	// huge maps each second-level entry that maps a 2 MiB page, by
	// guest-physical address, to the last-level table behind it.
	huge map[uint64]uint64
	// touched holds the last-level tables, by the address of the entry
	// above them, that walks may have changed since the last settle.
	touched map[uint64]uint64
	// resized is set when an entry changes between the two forms.
	resized bool
}

func newPageTables(phys *PhysMem, root uint64) pageTables {
	return pageTables{phys: phys, root: root, huge: map[uint64]uint64{}, touched: map[uint64]uint64{}}
}

func tableIndex(va uint64, level int) uint64 {
	return va >> (12 + 9*level) % entriesPerTable
}

func (pt *pageTables) slot(table, index uint64) *uint64 {
	return pt.entry(table + index*8)
}

// entry is the page-table entry at guest-physical address gpa.
func (pt *pageTables) entry(gpa uint64) *uint64 {
	return (*uint64)(unsafe.Pointer(&pt.phys.mem[gpa]))
}

func load(slot *uint64) uint64 { return atomic.LoadUint64(slot) }

func store(slot *uint64, e uint64) { atomic.StoreUint64(slot, e) }

// child returns the table below entry index of a table at level (1 to 3),
// following a huge page to its last-level table; for writing, it demotes
// that page first and notes the last-level table for settle.
func (pt *pageTables) child(table uint64, level int, index uint64, forWrite bool) (uint64, bool) {
	gpa := table + index*8
	e := load(pt.entry(gpa))
	switch {
	case e&ptePresent == 0:
		return 0, false
	case level == 1 && e&pteHuge != 0:
		t := pt.huge[gpa]
		if forWrite {
			store(pt.entry(gpa), t|tableEntry)
			delete(pt.huge, gpa)
			pt.touched[gpa] = t
			pt.resized = true
		}
		return t, true
	case level == 1 && forWrite:
		pt.touched[gpa] = e & pteFrame
	}
	return e & pteFrame, true
}

// leaf returns the last-level entry for va, or nil if a table on the way is
// missing. It is for reading only: a huge page may map va meanwhile.
func (pt *pageTables) leaf(va uint64) *uint64 {
	if pt.root == 0 {
		return nil
	}
	table := pt.root
	for level := 3; level > 0; level-- {
		t, ok := pt.child(table, level, tableIndex(va, level), false)
		if !ok {
			return nil
		}
		table = t
	}
	return pt.slot(table, tableIndex(va, 0))
}

// build creates the missing tables on the way to va's leaf entry and returns
// that entry, ready to be written. Tables are not counted against any
// address-space limit.
func (pt *pageTables) build(va uint64) (*uint64, error) {
	if pt.root == 0 {
		return nil, unix.ENOMEM
	}
	table := pt.root
	for level := 3; level > 0; level-- {
		index := tableIndex(va, level)
		if t, ok := pt.child(table, level, index, true); ok {
			table = t
			continue
		}
		frame, err := pt.phys.AllocFrame()
		if err != nil {
			return nil, err
		}
		store(pt.slot(table, index), frame|tableEntry)
		if level == 1 {
			pt.touched[table+index*8] = frame
		}
		table = frame
	}
	return pt.slot(table, tableIndex(va, 0)), nil
}

// buildRange creates every table [start, end) needs. On failure the tables
// made so far stay: they are empty and harmless.
func (pt *pageTables) buildRange(start, end uint64) error {
	for va := start &^ (leafTableSpan - 1); va < end; va += leafTableSpan {
		if _, err := pt.build(va); err != nil {
			return err
		}
	}
	return nil
}

// visit calls fn with the leaf entry of every page of [start, end) whose
// tables exist, in address order, skipping missing subtrees whole. fn may
// write the entries.
func (pt *pageTables) visit(start, end uint64, fn func(va uint64, slot *uint64)) {
	if pt.root != 0 && start < end {
		pt.visitTable(pt.root, 3, start, end, fn)
	}
}

func (pt *pageTables) visitTable(table uint64, level int, start, end uint64, fn func(va uint64, slot *uint64)) {
	shift := 12 + 9*level
	for va := start; va < end; {
		next := (va>>shift + 1) << shift
		index := va >> shift % entriesPerTable
		if level == 0 {
			fn(va, pt.slot(table, index))
		} else if t, ok := pt.child(table, level, index, true); ok {
			pt.visitTable(t, level-1, va, min(next, end), fn)
		}
		va = next
	}
}

// settle maps as 2 MiB pages the last-level tables walks have touched that
// qualify.
func (pt *pageTables) settle() {
	for gpa, table := range pt.touched {
		if e, ok := pt.hugeEntry(table); ok {
			store(pt.entry(gpa), e)
			pt.huge[gpa] = table
			pt.resized = true
		}
	}
	clear(pt.touched)
}

// hugeEntry returns the second-level entry that maps what a last-level
// table maps as one 2 MiB page, if it can.
func (pt *pageTables) hugeEntry(table uint64) (uint64, bool) {
	first := load(pt.slot(table, 0))
	frame := first & pteFrame
	if first&ptePresent == 0 || frame%HugePageSize != 0 {
		return 0, false
	}
	flags := first &^ (pteFrame | pteAccessedDirty)
	for i := uint64(1); i < entriesPerTable; i++ {
		if load(pt.slot(table, i))&^pteAccessedDirty != frame+i*PageSize|flags {
			return 0, false
		}
	}
	return frame | flags | pteHuge, true
}

// release hands every table below [0, top) to freed, then the root, after
// the frames their leaf entries hold. Top-level entries above top (the VM's
// shared ones) are never looked at.
func (pt *pageTables) release(top uint64, freed *frameBatch) {
	pt.releaseTable(pt.root, 3, 0, top, freed)
	freed.add(pt.root)
	pt.root = 0
	clear(pt.huge)
	clear(pt.touched)
}

func (pt *pageTables) releaseTable(table uint64, level int, start, end uint64, freed *frameBatch) {
	shift := 12 + 9*level
	for va := start; va < end; {
		next := (va>>shift + 1) << shift
		index := va >> shift % entriesPerTable
		if level == 0 {
			if frame := load(pt.slot(table, index)) & pteFrame; frame != 0 {
				freed.add(frame)
			}
		} else if t, ok := pt.child(table, level, index, false); ok {
			pt.releaseTable(t, level-1, va, min(next, end), freed)
			freed.add(t)
		}
		va = next
	}
}
