package mm

import "golang.org/x/sys/unix"

// FilePages supplies the pages of a private file mapping to MapFile.
type FilePages interface {
	// Frame returns the frame holding page i of the mapping (a page
	// cache's), to be shared until the mapping writes it, or 0 for a page
	// of the mapping's own, which Fill writes.
	Frame(i uint64) uint64
	// Fill writes the contents of page i, a page of the mapping's own,
	// into dst, which holds zeros.
	Fill(i uint64, dst []byte)
}

// MapFile implements mmap(2) of a file with MAP_PRIVATE: it places and
// checks the mapping as Mmap does, and maps page i to pages.Frame(i). If
// prot lets the guest write, every page gets a frame of its own, a copy,
// at once: the guest never takes a page fault (see AddressSpace), and the
// exit a fault costs takes longer than the copy. Otherwise the frames are shared,
// read-only, and Mprotect or Fork copies them where a page becomes
// writable, as for any private page that others share; the frames must
// never be written by the guest. Pages whose Frame is 0 get a frame of
// their own, filled by Fill. Each shared frame gains a reference.
func (as *AddressSpace) MapFile(addr, length uint64, prot, flags int, pages FilePages) (uint64, error) {
	if length == 0 {
		return 0, unix.EINVAL
	}
	if flags&unix.MAP_TYPE != unix.MAP_PRIVATE {
		return 0, unix.EINVAL
	}
	addr, length, flags, err := mapRequest(addr, length, flags)
	if err != nil {
		return 0, err
	}
	prot &= protRWX

	as.mu.Lock()
	defer as.mu.Unlock()
	defer as.settleLocked()
	start, err := as.placeLocked(addr, length, flags)
	if err != nil {
		return 0, err
	}
	end := start + length
	if flags&unix.MAP_FIXED_NOREPLACE != 0 && !as.vmas.isFree(start, end) {
		return 0, unix.EEXIST
	}
	if as.tables.root == 0 || as.vmas.len()+as.vmas.splits(start, end)+1 > maxMapCount {
		return 0, unix.ENOMEM
	}
	n := length / PageSize
	if n > as.phys.frameCount() {
		return 0, unix.ENOMEM
	}
	writable := prot&unix.PROT_WRITE != 0
	own := n
	if !writable {
		own = 0
		for i := range n {
			if pages.Frame(i) == 0 {
				own++
			}
		}
	}
	if as.limit != 0 && (as.resident-as.framesInLocked(start, end)+n)*PageSize > as.limit {
		return 0, unix.ENOMEM
	}
	if err := as.phys.reserve(own); err != nil {
		return 0, err
	}
	if err := as.tables.buildRange(start, end); err != nil {
		as.phys.unreserve(own)
		return 0, err
	}
	as.unmapLocked(start, end)
	as.tables.visit(start, end, func(va uint64, slot *uint64) {
		i := (va - start) / PageSize
		frame := pages.Frame(i)
		switch {
		case frame != 0 && !writable:
			as.phys.IncRef(frame)
		case frame != 0:
			mine := as.phys.takeReserved()
			copy(as.phys.Frame(mine), as.phys.Frame(frame))
			frame = mine
		default:
			frame = as.phys.takeReserved()
			pages.Fill(i, as.phys.Frame(frame))
		}
		store(slot, leafEntry(frame, prot))
		as.resident++
	})
	as.vmas.insert(vma{start: start, end: end, prot: prot, flags: flags & keptMapFlags})
	return start, nil
}

// SharedFrames returns the frames mapped by the pages of MAP_SHARED areas
// within [addr, addr+length), so that the kernel can write back those
// holding a host file's pages (msync, munmap).
func (as *AddressSpace) SharedFrames(addr, length uint64) []uint64 {
	end := addr + pageAlign(length)
	if end <= addr {
		return nil
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	var frames []uint64
	for _, v := range as.vmas.overlapping(addr, end) {
		if v.flags&unix.MAP_SHARED == 0 {
			continue
		}
		as.tables.visit(max(v.start, addr), min(v.end, end), func(_ uint64, slot *uint64) {
			if frame := load(slot) & pteFrame; frame != 0 {
				frames = append(frames, frame)
			}
		})
	}
	return frames
}
