package mm

import "golang.org/x/sys/unix"

// Pinned is guest memory lent to the host for one I/O operation: its host
// bytes, with physically adjacent pages merged, and the frames it holds a
// reference to so that they cannot be freed and reused while the host
// reads or writes them.
type Pinned struct {
	Slices [][]byte
	frames []uint64
	phys   *PhysMem
}

// Len is the number of bytes pinned.
func (p *Pinned) Len() int {
	n := 0
	for _, s := range p.Slices {
		n += len(s)
	}
	return n
}

// Release drops the references. The Pinned can then be reused.
func (p *Pinned) Release() {
	if p.phys != nil {
		p.phys.unpin(p.frames)
	}
	p.Slices, p.frames = p.Slices[:0], p.frames[:0]
}

// Pin lends the host guest memory [va, va+n) for I/O, checking that the
// guest may read it (or write it, with write), as copy-in and copy-out do.
// On a page it cannot access, Pin keeps the accessible prefix and returns
// unix.EFAULT. p must be empty (new or released).
func (as *AddressSpace) Pin(p *Pinned, va, n uint64, write bool) error {
	as.mu.Lock()
	defer as.mu.Unlock()
	p.phys = as.phys
	// runStart and runEnd are the guest-physical bounds of the current run
	// of physically adjacent bytes.
	var runStart, runEnd uint64
	flush := func() {
		if runEnd > runStart {
			p.Slices = append(p.Slices, as.phys.mem[runStart:runEnd:runEnd])
		}
	}
	defer flush()
	for n > 0 {
		e, ok := as.entryLocked(va)
		if !ok || write && e&pteWritable == 0 {
			return unix.EFAULT
		}
		frame := e & pteFrame
		start := frame + va&pageMask
		size := min(PageSize-va&pageMask, n)
		as.phys.IncRef(frame)
		p.frames = append(p.frames, frame)
		if start != runEnd {
			flush()
			runStart = start
		}
		runEnd = start + size
		va += size
		n -= size
	}
	return nil
}

// unpin drops pins' references. Unlike FreeFrames it does not revoke
// frames that stay in use: pinning changed no page-table entry, so there
// are no stale translations to drop. A frame the guest unmapped while it
// was pinned is freed here.
func (p *PhysMem) unpin(gpas []uint64) { p.dropFrames(gpas, false) }
