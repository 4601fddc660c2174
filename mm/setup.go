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
