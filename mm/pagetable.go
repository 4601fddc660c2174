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

	// tableEntry links a lower-level table; the leaf decides the permissions.
	tableEntry = ptePresent | pteWritable | pteUser
)

const (
	entriesPerTable = 512
	pml4Shift       = 39
	// leafTableSpan is how much address space one last-level table maps.
	leafTableSpan = entriesPerTable * PageSize
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
type pageTables struct {
	phys *PhysMem
	root uint64 // 0 once released
}

func tableIndex(va uint64, level int) uint64 {
	return va >> (12 + 9*level) % entriesPerTable
}

func (pt *pageTables) slot(table, index uint64) *uint64 {
	return (*uint64)(unsafe.Pointer(&pt.phys.mem[table+index*8]))
}

func load(slot *uint64) uint64 { return atomic.LoadUint64(slot) }

func store(slot *uint64, e uint64) { atomic.StoreUint64(slot, e) }

// leaf returns the last-level entry for va, or nil if a table on the way is
// missing.
func (pt *pageTables) leaf(va uint64) *uint64 {
	if pt.root == 0 {
		return nil
	}
	table := pt.root
	for level := 3; level > 0; level-- {
		e := load(pt.slot(table, tableIndex(va, level)))
		if e&ptePresent == 0 {
			return nil
		}
		table = e & pteFrame
	}
	return pt.slot(table, tableIndex(va, 0))
}

// build creates the missing tables on the way to va's leaf entry. Tables are
// not counted against any address-space limit.
func (pt *pageTables) build(va uint64) error {
	if pt.root == 0 {
		return unix.ENOMEM
	}
	table := pt.root
	for level := 3; level > 0; level-- {
		slot := pt.slot(table, tableIndex(va, level))
		e := load(slot)
		if e&ptePresent == 0 {
			frame, err := pt.phys.AllocFrame()
			if err != nil {
				return err
			}
			e = frame | tableEntry
			store(slot, e)
		}
		table = e & pteFrame
	}
	return nil
}

// buildRange creates every table [start, end) needs. On failure the tables
// made so far stay: they are empty and harmless.
func (pt *pageTables) buildRange(start, end uint64) error {
	for va := start &^ (leafTableSpan - 1); va < end; va += leafTableSpan {
		if err := pt.build(va); err != nil {
			return err
		}
	}
	return nil
}

// visit calls fn with the leaf entry of every page of [start, end) whose
// tables exist, in address order, skipping missing subtrees whole.
func (pt *pageTables) visit(start, end uint64, fn func(va uint64, slot *uint64)) {
	if pt.root != 0 && start < end {
		pt.visitTable(pt.root, 3, start, end, fn)
	}
}

func (pt *pageTables) visitTable(table uint64, level int, start, end uint64, fn func(va uint64, slot *uint64)) {
	shift := 12 + 9*level
	for va := start; va < end; {
		next := (va>>shift + 1) << shift
		slot := pt.slot(table, va>>shift%entriesPerTable)
		if level == 0 {
			fn(va, slot)
		} else if e := load(slot); e&ptePresent != 0 {
			pt.visitTable(e&pteFrame, level-1, va, min(next, end), fn)
		}
		va = next
	}
}

// release hands every table below [0, top) to freed, then the root, after
// the frames their leaf entries hold. Top-level entries above top (the VM's
// shared ones) are never looked at.
func (pt *pageTables) release(top uint64, freed *frameBatch) {
	pt.releaseTable(pt.root, 3, 0, top, freed)
	freed.add(pt.root)
	pt.root = 0
}

func (pt *pageTables) releaseTable(table uint64, level int, start, end uint64, freed *frameBatch) {
	shift := 12 + 9*level
	for va := start; va < end; {
		next := (va>>shift + 1) << shift
		e := load(pt.slot(table, va>>shift%entriesPerTable))
		switch {
		case level == 0:
			if frame := e & pteFrame; frame != 0 {
				freed.add(frame)
			}
		case e&ptePresent != 0:
			pt.releaseTable(e&pteFrame, level-1, va, min(next, end), freed)
			freed.add(e & pteFrame)
		}
		va = next
	}
}
