package mm

import "golang.org/x/sys/unix"

// Fork returns a copy of as for a child process (fork(2)): the same options,
// areas and break. Pages of MAP_SHARED areas map the same frames in both.
// Pages of writable private areas are copied into new frames, charged to
// the child; pages of other private areas share their frame until either
// side makes them writable (see Mprotect), so program text and guard pages
// cost nothing. The parent's page tables are not changed. On failure
// (unix.ENOMEM) nothing is left allocated and the parent is unchanged.
func (as *AddressSpace) Fork() (*AddressSpace, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	if as.tables.root == 0 {
		return nil, unix.ENOMEM
	}
	root, err := as.phys.AllocFrame()
	if err != nil {
		return nil, err
	}
	// The child is not visible to anyone else until it is returned, so its
	// fields are used without its lock.
	child := &AddressSpace{
		phys:     as.phys,
		tables:   newPageTables(as.phys, root),
		vmas:     vmaSet{tree: as.vmas.tree.Clone()},
		top:      as.top,
		mmapBase: as.mmapBase,
		limit:    as.limit,
		brkStart: as.brkStart,
		brk:      as.brk,
		// Resource limits are inherited across fork.
		limitTotal: as.limitTotal,
		limitData:  as.limitData,
	}
	// The VM's shared entries are the only ones above top.
	for i := (as.top-1)>>pml4Shift + 1; i < entriesPerTable; i++ {
		store(child.tables.slot(root, i), load(as.tables.slot(as.tables.root, i)))
	}

	var shared, copies uint64
	var sources []uint64
	as.eachFrameLocked(func(v vma, _ uint64, slot *uint64) {
		if copiedByFork(v) {
			copies++
			sources = append(sources, load(slot)&pteFrame)
		} else {
			shared++
		}
	})
	// Most of a process's writable pages were never touched (the 8 MiB
	// stack): copying them would make the host back them in both.
	holes := as.phys.surelyZero(sources)
	child.resident = shared
	if err = child.chargeLocked(copies, 0); err != nil {
		child.abandon()
		return nil, err
	}
	left := copies
	as.eachFrameLocked(func(v vma, va uint64, slot *uint64) {
		if err != nil {
			return
		}
		var childSlot *uint64
		if childSlot, err = child.tables.build(va); err != nil {
			return
		}
		e := load(slot)
		if copiedByFork(v) {
			frame := as.phys.takeReserved()
			if !holes[copies-left] {
				copy(as.phys.Frame(frame), as.phys.Frame(e&pteFrame))
			}
			left--
			e = e&^pteFrame | frame
		} else {
			as.phys.IncRef(e & pteFrame)
		}
		store(childSlot, e)
	})
	if err != nil {
		as.phys.unreserve(left)
		child.abandon()
		return nil, err
	}
	child.resident += copies
	child.settleLocked()
	return child, nil
}

// copiedByFork reports whether a fork gives the child its own copies of
// v's pages: those the parent may write and the child must not see.
func copiedByFork(v vma) bool {
	return v.flags&unix.MAP_PRIVATE != 0 && v.prot&unix.PROT_WRITE != 0
}

// eachFrameLocked calls fn for every page that holds a frame, with its area.
func (as *AddressSpace) eachFrameLocked(fn func(v vma, va uint64, slot *uint64)) {
	as.vmas.tree.Ascend(func(v vma) bool {
		as.tables.visit(v.start, v.end, func(va uint64, slot *uint64) {
			if load(slot)&pteFrame != 0 {
				fn(v, va, slot)
			}
		})
		return true
	})
}

// abandon frees what a child that Fork failed to finish holds. The child
// never ran, so no translation of its frames can be stale and, unlike
// Release, it need not revoke the frames others keep.
func (as *AddressSpace) abandon() {
	dropped := newFrameBatch(func(gpas []uint64) { as.phys.dropFrames(gpas, false) })
	as.tables.release(as.top, dropped)
	dropped.flush()
}

// sharedFramesLocked counts the frames of [start, end) that others hold a
// reference to as well.
func (as *AddressSpace) sharedFramesLocked(start, end uint64) uint64 {
	var n uint64
	as.tables.visit(start, end, func(_ uint64, slot *uint64) {
		if frame := load(slot) & pteFrame; frame != 0 && as.phys.refCount(frame) > 1 {
			n++
		}
	})
	return n
}

// unshareLocked gives up to n pages of [start, end) whose frames others
// share a copy of their own, in frames reserved for them, and returns how
// many of the n it did not use.
func (as *AddressSpace) unshareLocked(start, end, n uint64) uint64 {
	dropped := newFrameBatch(as.phys.FreeFrames)
	as.tables.visit(start, end, func(_ uint64, slot *uint64) {
		old := load(slot)
		frame := old & pteFrame
		if n == 0 || frame == 0 || as.phys.refCount(frame) == 1 {
			return
		}
		n--
		own := as.phys.takeReserved()
		copy(as.phys.Frame(own), as.phys.Frame(frame))
		store(slot, old&^pteFrame|own)
		as.flushTLB = as.flushTLB || old&ptePresent != 0
		dropped.add(frame)
	})
	dropped.flush()
	return n
}
