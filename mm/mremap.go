package mm

import "golang.org/x/sys/unix"

// Mremap implements mremap(2) with MREMAP_MAYMOVE and MREMAP_FIXED. Moving
// keeps the frames: their entries move to the new address. MREMAP_DONTUNMAP
// and old_len 0 (duplicating a shared mapping) fail with EINVAL.
func (as *AddressSpace) Mremap(oldAddr, oldLen, newLen uint64, flags int, newAddr uint64) (uint64, error) {
	if flags&^(unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED|unix.MREMAP_DONTUNMAP) != 0 || oldAddr&pageMask != 0 {
		return 0, unix.EINVAL
	}
	newLen = pageAlign(newLen)
	if newLen == 0 {
		return 0, unix.EINVAL
	}
	fixed := flags&unix.MREMAP_FIXED != 0
	if fixed || flags&unix.MREMAP_DONTUNMAP != 0 {
		if newAddr&pageMask != 0 || flags&unix.MREMAP_MAYMOVE == 0 || flags&unix.MREMAP_DONTUNMAP != 0 {
			return 0, unix.EINVAL
		}
	}
	oldLen = pageAlign(oldLen)

	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	area, ok := as.vmas.containing(oldAddr)
	if !ok {
		return 0, unix.EFAULT
	}
	// Linux refuses to grow [vvar] (VM_DONTEXPAND) with EFAULT. Moving it is
	// refused too: the vDSO finds the time page at a fixed distance below
	// its code.
	if area.readOnly {
		return 0, unix.EFAULT
	}
	if fixed {
		return as.mremapFixedLocked(area, oldAddr, oldLen, newLen, newAddr)
	}
	switch {
	case newLen == oldLen:
		return oldAddr, nil
	case newLen < oldLen:
		if !as.inUserRange(oldAddr+newLen, oldLen-newLen) {
			return 0, unix.EINVAL
		}
		if err := as.munmapLocked(oldAddr+newLen, oldAddr+oldLen); err != nil {
			return 0, err
		}
		return oldAddr, nil
	}
	if err := remapValid(area, oldAddr, oldLen); err != nil {
		return 0, err
	}
	growth := newLen - oldLen
	if err := as.expandLocked(growth, isData(area.prot, area.flags, area.name)); err != nil {
		return 0, err
	}
	if oldAddr+oldLen == area.end && growth <= as.top-area.end && as.vmas.isFree(area.end, area.end+growth) {
		extension := area
		extension.start, extension.end = area.end, area.end+growth
		if err := as.mapLocked(extension); err != nil {
			return 0, err
		}
		return oldAddr, nil
	}
	if flags&unix.MREMAP_MAYMOVE == 0 {
		return 0, unix.ENOMEM
	}
	dst, err := as.findFreeLocked(newLen)
	if err != nil {
		return 0, err
	}
	if err := as.moveLocked(area, oldAddr, oldLen, dst, newLen); err != nil {
		return 0, err
	}
	return dst, nil
}

// remapValid checks that [addr, addr+length) lies in area, which is what
// mremap may resize or move.
func remapValid(area vma, addr, length uint64) error {
	if length == 0 {
		return unix.EINVAL
	}
	if length > area.end-addr {
		return unix.EFAULT
	}
	return nil
}

// mremapFixedLocked moves [oldAddr, oldAddr+min(oldLen, newLen)) of area to
// newAddr, replacing what is there, and unmaps the rest of the old range.
func (as *AddressSpace) mremapFixedLocked(area vma, oldAddr, oldLen, newLen, newAddr uint64) (uint64, error) {
	if newLen > as.top || newAddr > as.top-newLen {
		return 0, unix.EINVAL
	}
	oldEnd := oldAddr + min(oldLen, as.top)
	if oldEnd > newAddr && newAddr+newLen > oldAddr {
		return 0, unix.EINVAL
	}
	if newAddr < minMapAddr {
		return 0, unix.EPERM
	}
	moved := min(oldLen, newLen)
	if moved < oldLen && !as.inUserRange(oldAddr+moved, oldLen-moved) {
		return 0, unix.EINVAL
	}
	if err := remapValid(area, oldAddr, moved); err != nil {
		return 0, err
	}
	if err := as.expandLocked(newLen-moved, isData(area.prot, area.flags, area.name)); err != nil {
		return 0, err
	}
	if err := as.moveLocked(area, oldAddr, moved, newAddr, newLen); err != nil {
		return 0, err
	}
	if moved < oldLen {
		as.unmapLocked(oldAddr+moved, oldAddr+oldLen)
	}
	return newAddr, nil
}

// moveLocked moves the pages of [from, from+length), part of area, to dst,
// replacing whatever is mapped at [dst, dst+newLen), and grows the moved
// area to newLen with fresh pages. It either succeeds or changes nothing.
func (as *AddressSpace) moveLocked(area vma, from, length, dst, newLen uint64) error {
	if as.vmas.len() >= maxMapCount-3 {
		return unix.ENOMEM
	}
	var growth uint64
	if accessible(area.prot) {
		growth = (newLen - length) / PageSize
	}
	if err := as.chargeLocked(growth, as.framesInLocked(dst, dst+newLen)); err != nil {
		return err
	}
	if err := as.buildLocked(dst+length, dst+newLen, growth); err != nil {
		return err
	}
	var buildErr error
	as.tables.visit(from, from+length, func(va uint64, slot *uint64) {
		if buildErr == nil && load(slot)&pteFrame != 0 {
			_, buildErr = as.tables.build(dst + va - from)
		}
	})
	if buildErr != nil {
		as.phys.unreserve(growth)
		return buildErr
	}

	as.unmapLocked(dst, dst+newLen)
	revoked := newFrameBatch(as.phys.revoke)
	as.tables.visit(from, from+length, func(va uint64, slot *uint64) {
		e := load(slot)
		if e&pteFrame == 0 {
			return
		}
		to, err := as.tables.build(dst + va - from)
		if err != nil {
			panic("mm: mremap lost a table it built") // built above, never freed
		}
		store(to, e)
		store(slot, 0)
		if e&ptePresent != 0 {
			as.flushTLB = true
			revoked.add(e & pteFrame)
		}
	})
	revoked.flush()
	as.vmas.remove(from, from+length)
	as.protectLocked(dst+length, dst+newLen, area.prot)
	moved := area
	moved.start, moved.end = dst, dst+newLen
	as.vmas.insert(moved)
	return nil
}
