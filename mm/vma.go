package mm

import "github.com/google/btree"

// Mapping describes one area of an address space, as /proc/self/maps does.
type Mapping struct {
	Start, End uint64
	Prot       int    // PROT_* bits as the guest asked for them
	Flags      int    // MAP_SHARED or MAP_PRIVATE, plus MAP_GROWSDOWN, MAP_STACK, MAP_NORESERVE as given
	Name       string // "[heap]", "[stack]" or ""
}

// vma is an area [start, end) of pages with the same protection and flags.
type vma struct {
	start, end uint64
	prot       int
	flags      int
	name       string
	// frames marks an area of MapFrames: its frames belong to whoever
	// mapped them, so madvise does not discard them.
	frames bool
	// readOnly marks an area the guest may never make writable or
	// executable, move or resize (FramesReadOnly).
	readOnly bool
}

func (v vma) mergesWith(next vma) bool {
	return v.end == next.start && v.prot == next.prot && v.flags == next.flags && v.name == next.name &&
		v.frames == next.frames && v.readOnly == next.readOnly
}

// vmaSet holds sorted, non-overlapping areas keyed by start address.
type vmaSet struct {
	tree *btree.BTreeG[vma]
}

func newVMASet() vmaSet {
	return vmaSet{tree: btree.NewG(16, func(a, b vma) bool { return a.start < b.start })}
}

func (s vmaSet) len() int { return s.tree.Len() }

// containing returns the area that contains addr.
func (s vmaSet) containing(addr uint64) (vma, bool) {
	var found vma
	ok := false
	s.tree.DescendLessOrEqual(vma{start: addr}, func(v vma) bool {
		found, ok = v, addr < v.end
		return false
	})
	return found, ok
}

// overlapping returns the areas that overlap [start, end), in order.
func (s vmaSet) overlapping(start, end uint64) []vma {
	var areas []vma
	if v, ok := s.containing(start); ok {
		areas = append(areas, v)
		start = v.end
	}
	s.tree.AscendRange(vma{start: start}, vma{start: end}, func(v vma) bool {
		areas = append(areas, v)
		return true
	})
	return areas
}

func (s vmaSet) isFree(start, end uint64) bool {
	return len(s.overlapping(start, end)) == 0
}

// splits counts the areas that [start, end) would cut in two at its ends.
func (s vmaSet) splits(start, end uint64) int {
	n := 0
	for _, addr := range [2]uint64{start, end} {
		if v, ok := s.containing(addr); ok && v.start < addr {
			n++
		}
	}
	return n
}

// punchesHole reports whether removing [start, end) leaves one area in two
// pieces, the only way a removal adds an area.
func (s vmaSet) punchesHole(start, end uint64) bool {
	v, ok := s.containing(start)
	return ok && v.start < start && end < v.end
}

// splitAt makes addr an area boundary.
func (s vmaSet) splitAt(addr uint64) {
	v, ok := s.containing(addr)
	if !ok || v.start == addr {
		return
	}
	low, high := v, v
	low.end, high.start = addr, addr
	s.tree.ReplaceOrInsert(low)
	s.tree.ReplaceOrInsert(high)
}

// remove takes [start, end) out of the set, cutting the areas at its ends.
func (s vmaSet) remove(start, end uint64) {
	s.splitAt(start)
	s.splitAt(end)
	for _, v := range s.overlapping(start, end) {
		s.tree.Delete(v)
	}
}

// insert adds v, which overlaps no area, and merges it with its neighbours.
func (s vmaSet) insert(v vma) {
	s.tree.ReplaceOrInsert(v)
	s.mergeAround(v.start, v.end)
}

// protect sets the protection of [start, end), which areas cover entirely.
func (s vmaSet) protect(start, end uint64, prot int) {
	s.splitAt(start)
	s.splitAt(end)
	for _, v := range s.overlapping(start, end) {
		v.prot = prot
		s.tree.ReplaceOrInsert(v)
	}
	s.mergeAround(start, end)
}

func (s vmaSet) setName(addr uint64, name string) {
	if v, ok := s.containing(addr); ok {
		v.name = name
		s.tree.ReplaceOrInsert(v)
	}
}

// mergeAround merges compatible neighbours among the areas in or touching
// [start, end].
func (s vmaSet) mergeAround(start, end uint64) {
	areas := s.overlapping(max(start, 1)-1, end+1)
	for i := 1; i < len(areas); i++ {
		if areas[i-1].mergesWith(areas[i]) {
			s.tree.Delete(areas[i])
			areas[i].start = areas[i-1].start
			s.tree.ReplaceOrInsert(areas[i])
		}
	}
}

// highestGap returns the highest start of n free bytes within [low, high).
func (s vmaSet) highestGap(low, high, n uint64) (uint64, bool) {
	if high <= low || high-low < n {
		return 0, false
	}
	top, found := high, false
	s.tree.DescendLessOrEqual(vma{start: high - 1}, func(v vma) bool {
		if v.end < top && top-max(v.end, low) >= n {
			found = true
			return false
		}
		top = min(top, v.start)
		return top > low && top-low >= n
	})
	if found || top > low && top-low >= n {
		return top - n, true
	}
	return 0, false
}

// lowestGap returns the lowest start of n free bytes within [low, high).
func (s vmaSet) lowestGap(low, high, n uint64) (uint64, bool) {
	if high <= low || high-low < n {
		return 0, false
	}
	bottom := low
	if v, ok := s.containing(low); ok {
		bottom = v.end
	}
	found := false
	s.tree.AscendRange(vma{start: bottom}, vma{start: high}, func(v vma) bool {
		if v.start-bottom >= n {
			found = true
			return false
		}
		bottom = v.end
		return true
	})
	if found || bottom < high && high-bottom >= n {
		return bottom, true
	}
	return 0, false
}
