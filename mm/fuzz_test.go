package mm

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// opStream turns bytes into operations whose arguments are mostly units
// (pages, or bigger to reach huge pages) of a small window, so that
// operations collide, and sometimes garbage.
type opStream struct {
	data []byte
	unit uint64
}

const fuzzWindow = 0x1000_0000

func (s *opStream) byte() byte {
	if len(s.data) == 0 {
		return 0
	}
	b := s.data[0]
	s.data = s.data[1:]
	return b
}

func (s *opStream) word() uint64 {
	var w uint64
	for range 8 {
		w = w<<8 | uint64(s.byte())
	}
	return w
}

func (s *opStream) addr() uint64 {
	switch b := s.byte(); b % 8 {
	case 0:
		return s.word()
	case 1:
		return 0
	case 2:
		return fuzzWindow + uint64(s.byte())
	default:
		return fuzzWindow + uint64(b/8%64)*s.unit
	}
}

func (s *opStream) length() uint64 {
	switch b := s.byte(); b % 8 {
	case 0:
		return s.word()
	case 1:
		return 0
	case 2:
		return uint64(s.byte()) + 1
	default:
		return uint64(b/8%16+1) * s.unit
	}
}

func (s *opStream) prot() int {
	b := s.byte()
	if b%8 == 0 {
		return int(int32(s.word()))
	}
	return int(b/8) % 8
}

func (s *opStream) pick(choices ...int) int {
	b := s.byte()
	if int(b) >= 256-len(choices) {
		return int(int32(s.word()))
	}
	return choices[int(b)%len(choices)]
}

// runOps runs the operations data encodes and checks the invariants after
// each: the areas agree with the page tables in guest memory, accounting
// agrees with the frames held, an entry that lost access set the TLB flag,
// and a frame the address space let go of was handed back to the host.
func runOps(t *testing.T, data []byte, unit uint64) (huge int) {
	s := &opStream{data: data, unit: unit}
	phys := newPhys(t, 512*unit)
	baseline := phys.FramesInUse()
	as, err := NewAddressSpace(phys, Options{
		UserTop:  MaxUserTop,
		MmapBase: fuzzWindow + 256*unit,
		Limit:    uint64(s.byte()%4) * 32 * unit,
	})
	require.NoError(t, err)
	fuzzBrk := fuzzWindow + 128*unit
	as.SetBrk(fuzzBrk)
	const shared = unix.MAP_SHARED | unix.MAP_ANONYMOUS

	before := checkInvariants(t, as, phys, baseline)
	for len(s.data) > 0 {
		for va, e := range before.leaves {
			binary.LittleEndian.PutUint64(phys.Frame(e&pteFrame), va|1)
		}
		switch op := s.byte() % 8; op {
		case 0, 1:
			flags := s.pick(anon, fixed, anon|unix.MAP_FIXED_NOREPLACE, shared, shared|unix.MAP_FIXED,
				fixed|unix.MAP_GROWSDOWN, anon|unix.MAP_32BIT, unix.MAP_ANONYMOUS)
			_, _ = as.Mmap(s.addr(), s.length(), s.prot(), flags)
		case 2:
			_ = as.Munmap(s.addr(), s.length())
		case 3:
			prot := s.prot()
			if s.byte()%4 == 0 {
				prot |= unix.PROT_GROWSDOWN
			}
			_ = as.Mprotect(s.addr(), s.length(), prot)
		case 4:
			flags := s.pick(0, unix.MREMAP_MAYMOVE, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED,
				unix.MREMAP_FIXED, unix.MREMAP_MAYMOVE|unix.MREMAP_DONTUNMAP)
			_, _ = as.Mremap(s.addr(), s.length(), s.length(), flags, s.addr())
		case 5:
			advice := s.pick(unix.MADV_DONTNEED, unix.MADV_FREE, unix.MADV_NORMAL, unix.MADV_WILLNEED)
			_ = as.Madvise(s.addr(), s.length(), advice)
		case 6:
			if b := s.byte(); b%4 == 0 {
				as.Brk(s.word())
			} else {
				as.Brk(fuzzBrk + uint64(b)*unit/3)
			}
		case 7:
			_, _ = as.CopyOut(s.addr(), make([]byte, s.byte()))
		}

		after := checkInvariants(t, as, phys, baseline)
		weakened := false
		for va, e := range before.leaves {
			weakened = weakened || weakens(e, after.leaves[va])
		}
		flushed := as.TakeTLBFlush()
		require.True(t, flushed || !weakened, "an entry lost access without a TLB flush")

		stillUsed := map[uint64]bool{}
		for _, e := range after.leaves {
			stillUsed[e&pteFrame] = true
		}
		for _, table := range after.tables {
			stillUsed[table] = true
		}
		for va, e := range before.leaves {
			if frame := e & pteFrame; !stillUsed[frame] && binary.LittleEndian.Uint64(phys.Frame(frame)) != 0 {
				require.Failf(t, "a frame was freed without MADV_DONTNEED", "it mapped %#x", va)
			}
		}
		before = after
		huge += after.huge
	}
	as.Release()
	require.Equal(t, baseline, phys.FramesInUse())
	return huge
}

func FuzzAddressSpace(f *testing.F) {
	f.Add([]byte{0, 3, 1, 24, 40, 8, 2, 2, 32, 16, 3, 3, 8, 40, 8, 4, 1, 24, 24, 40, 200})
	f.Add([]byte{1, 0, 1, 3, 8, 40, 4, 1, 3, 8, 80, 3, 8, 6, 10, 6, 1, 5, 0, 3, 24, 8})
	f.Add([]byte{2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 255})
	f.Fuzz(func(t *testing.T, data []byte) { runOps(t, data, PageSize) })
}

// TestRandomOperations runs random operation streams through runOps, over
// pages and over 128 KiB units, where areas line up into huge pages.
func TestRandomOperations(t *testing.T) {
	for _, c := range []struct {
		unit       uint64
		iterations int
	}{{PageSize, 1000}, {32 * PageSize, 100}} {
		rng := rand.New(rand.NewPCG(7, 11))
		iterations := c.iterations
		if testing.Short() {
			iterations /= 20
		}
		huge := 0
		for range iterations {
			data := make([]byte, 400)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			huge += runOps(t, data, c.unit)
		}
		t.Logf("unit %d: %d huge pages seen", c.unit, huge)
		if c.unit*16 >= HugePageSize {
			require.Positive(t, huge, "no operation stream made a huge page")
		}
	}
}
