package mm

import "golang.org/x/sys/unix"

// ReserveLow keeps guest-physical [0, n) out of the frame allocator: the VM
// owns it (page tables of its own region, the stub, per-vCPU pages). It must
// be called before any frame is allocated.
func (p *PhysMem) ReserveLow(n uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	frames := pageAlign(n) / PageSize
	if p.next != 1 || frames >= p.frameCount() {
		return unix.EINVAL
	}
	if frames > 1 {
		p.next = frames
		p.refs = make([]uint32, frames)
	}
	return nil
}

// SetMmapBase moves the top of the search for non-fixed mappings (the
// loader randomises it per process).
func (as *AddressSpace) SetMmapBase(base uint64) error {
	as.mu.Lock()
	defer as.mu.Unlock()
	if base&pageMask != 0 || base < minMapAddr || base > as.top {
		return unix.EINVAL
	}
	as.mmapBase = base
	return nil
}

// FrameFlags say how MapFrames maps frames.
type FrameFlags int

const (
	// FramesPrivate maps the frames as a private file mapping: making a page
	// writable first gives the address space a copy of its own (see
	// Mprotect), so the guest never writes the frames themselves. Without
	// it the mapping is MAP_SHARED and the guest's writes reach every
	// mapping of the frames.
	FramesPrivate FrameFlags = 1 << iota
	// FramesReadOnly keeps the guest from ever adding PROT_WRITE or
	// PROT_EXEC to the area (mprotect fails with EACCES) and from moving or
	// resizing it (mremap fails with EFAULT), as Linux treats [vvar].
	FramesReadOnly
)

// MapFrames maps frames, owned by the caller (the vDSO, the pages of a
// shared file), at [addr, addr+len(frames)*PageSize), which must be free,
// as a mapping called name. Each frame gains a reference, dropped when the
// guest unmaps it or the address space is released.
func (as *AddressSpace) MapFrames(addr uint64, frames []uint64, prot int, flags FrameFlags, name string) error {
	length := uint64(len(frames)) * PageSize
	if len(frames) == 0 || addr&pageMask != 0 || addr < minMapAddr || addr > as.top-length {
		return unix.EINVAL
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if !as.vmas.isFree(addr, addr+length) {
		return unix.EEXIST
	}
	if as.vmas.len()+1 > maxMapCount {
		return unix.ENOMEM
	}
	if err := as.tables.buildRange(addr, addr+length); err != nil {
		return err
	}
	defer as.settleLocked()
	for i, f := range frames {
		slot, err := as.tables.build(addr + uint64(i)*PageSize)
		if err != nil {
			panic("mm: MapFrames lost a table it built") // built above, never freed
		}
		as.phys.IncRef(f)
		store(slot, leafEntry(f, prot&protRWX))
		as.resident++
	}
	area := vma{start: addr, end: addr + length, prot: prot & protRWX, flags: unix.MAP_SHARED, name: name,
		frames: true, readOnly: flags&FramesReadOnly != 0}
	if flags&FramesPrivate != 0 {
		area.flags = unix.MAP_PRIVATE
	}
	as.vmas.insert(area)
	return nil
}

// Covered reports whether every page of [addr, addr+length) is mapped.
func (as *AddressSpace) Covered(addr, length uint64) bool {
	end := addr + pageAlign(length)
	if end < addr {
		return false
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, v := range as.vmas.overlapping(addr, end) {
		if v.start > addr {
			return false
		}
		addr = v.end
	}
	return addr >= end
}
