package mm

import (
	"encoding/binary"
	"maps"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const (
	testMmapBase = 0x7f00_0000_0000
	rw           = unix.PROT_READ | unix.PROT_WRITE
	anon         = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	fixed        = anon | unix.MAP_FIXED
)

func newPhys(t testing.TB, size uint64) *PhysMem {
	t.Helper()
	p, err := NewPhysMem(size)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func newSpace(t testing.TB, p *PhysMem, limit uint64) *AddressSpace {
	t.Helper()
	as, err := NewAddressSpace(p, Options{UserTop: MaxUserTop, MmapBase: testMmapBase, Limit: limit})
	require.NoError(t, err)
	return as
}

// newTestSpace is an address space over 64 MiB of guest memory.
func newTestSpace(t testing.TB) (*AddressSpace, *PhysMem) {
	t.Helper()
	p := newPhys(t, 64<<20)
	return newSpace(t, p, 0), p
}

func mustMmap(t testing.TB, as *AddressSpace, addr, length uint64, prot, flags int) uint64 {
	t.Helper()
	got, err := as.Mmap(addr, length, prot, flags)
	require.NoError(t, err)
	return got
}

// entryAt reads entry index of the table at guest-physical table straight
// from guest memory, as the hardware would.
func entryAt(p *PhysMem, table uint64, index uint64) uint64 {
	return binary.LittleEndian.Uint64(p.Bytes()[table+index*8:])
}

// walk returns the entries met on the way to va, top level first, stopping
// after the first one that is not present.
func walk(p *PhysMem, root, va uint64) []uint64 {
	var path []uint64
	table := root
	for level := 3; level >= 0; level-- {
		e := entryAt(p, table, va>>(12+9*level)&511)
		path = append(path, e)
		if e&ptePresent == 0 {
			break
		}
		table = e & pteFrame
	}
	return path
}

// leafOf is the last-level entry of va, 0 where tables are missing.
func leafOf(p *PhysMem, root, va uint64) uint64 {
	path := walk(p, root, va)
	if len(path) < 4 {
		return 0
	}
	return path[3]
}

// layout is what a walk of the whole user half finds in guest memory.
type layout struct {
	tables []uint64          // table frames below the root, root excluded
	leaves map[uint64]uint64 // va -> leaf entry, for entries holding a frame
	huge   int               // last-level tables mapped as 2 MiB pages
}

// readLayout walks as's page tables in guest memory, checking that each
// huge page maps what the last-level table behind it maps and that every
// table that could be a huge page is one.
func readLayout(t testing.TB, as *AddressSpace, p *PhysMem) layout {
	t.Helper()
	root, top := as.Root(), uint64(MaxUserTop)
	as.mu.Lock()
	huge := maps.Clone(as.tables.huge)
	as.mu.Unlock()
	l := layout{leaves: map[uint64]uint64{}}
	var walkTable func(table uint64, level int, base uint64)
	walkTable = func(table uint64, level int, base uint64) {
		span := uint64(1) << (12 + 9*level)
		for i := uint64(0); i < 512; i++ {
			va := base + i*span
			if va >= top {
				return
			}
			e := entryAt(p, table, i)
			if level == 0 {
				if e&pteFrame != 0 {
					l.leaves[va] = e
				}
				continue
			}
			if e&ptePresent == 0 {
				if e != 0 {
					require.Failf(t, "stale bits in a non-present table entry", "%#x at %#x", e, va)
				}
				continue
			}
			child := e & pteFrame
			if level == 1 && e&pteHuge != 0 {
				behind, ok := huge[table+i*8]
				require.True(t, ok, "a huge page at %#x without its table", va)
				want, ok := as.tables.hugeEntry(behind)
				require.True(t, ok, "the table behind the huge page at %#x no longer qualifies", va)
				require.Equal(t, want, e&^pteAccessedDirty, "the huge page at %#x maps something else than its table", va)
				child = behind
				l.huge++
			} else if e&^pteFrame != tableEntry {
				require.Failf(t, "wrong table entry flags", "%#x at %#x", e, va)
			} else if _, ok := as.tables.hugeEntry(child); ok && level == 1 {
				require.Failf(t, "a table that qualifies is not a huge page", "at %#x", va)
			}
			l.tables = append(l.tables, child)
			walkTable(child, level-1, va)
		}
	}
	walkTable(root, 3, 0)
	return l
}

// checkInvariants checks the areas against the page tables in guest memory
// and the frame accounting; baseline is FramesInUse before the address
// space existed.
func checkInvariants(t testing.TB, as *AddressSpace, p *PhysMem, baseline uint64) layout {
	t.Helper()
	maps := as.Mappings()
	for i, m := range maps {
		require.Less(t, m.Start, m.End)
		require.Zero(t, m.Start&pageMask)
		require.Zero(t, m.End&pageMask)
		require.GreaterOrEqual(t, m.Start, uint64(minMapAddr))
		require.LessOrEqual(t, m.End, uint64(MaxUserTop))
		if i > 0 {
			require.LessOrEqual(t, maps[i-1].End, m.Start, "areas overlap or are out of order")
		}
	}
	l := readLayout(t, as, p)

	seen := map[uint64]bool{}
	for va, e := range l.leaves {
		frame := e & pteFrame
		if seen[frame] {
			require.Failf(t, "frame mapped twice", "%#x", frame)
		}
		seen[frame] = true
		m, ok := findMapping(maps, va)
		if !ok {
			require.Failf(t, "a frame outside any area", "at %#x", va)
		}
		if want := leafEntry(frame, m.Prot); e != want {
			require.Failf(t, "wrong leaf entry", "%#x at %#x, want %#x for prot %#x", e, va, want, m.Prot)
		}
	}
	for _, m := range maps {
		if accessible(m.Prot) {
			for va := m.Start; va < m.End; va += PageSize {
				if _, ok := l.leaves[va]; !ok {
					require.Failf(t, "a page of an accessible area has no frame", "%#x", va)
				}
			}
		}
	}
	require.Equal(t, uint64(len(l.leaves))*PageSize, as.Resident())
	require.Equal(t, baseline+1+uint64(len(l.tables))+uint64(len(l.leaves)), p.FramesInUse())
	return l
}

func findMapping(maps []Mapping, va uint64) (Mapping, bool) {
	for _, m := range maps {
		if m.Start <= va && va < m.End {
			return m, true
		}
	}
	return Mapping{}, false
}
