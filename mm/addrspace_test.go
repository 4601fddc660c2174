package mm

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const area = 0x1000_0000

func spans(as *AddressSpace) [][2]uint64 {
	var s [][2]uint64
	for _, m := range as.Mappings() {
		s = append(s, [2]uint64{m.Start, m.End})
	}
	return s
}

func writeString(t *testing.T, as *AddressSpace, va uint64, s string) {
	t.Helper()
	n, err := as.CopyOut(va, []byte(s))
	require.NoError(t, err)
	require.Equal(t, len(s), n)
}

func readString(t *testing.T, as *AddressSpace, va uint64, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := as.CopyIn(b, va)
	require.NoError(t, err)
	return string(b)
}

func TestMunmapAndMprotectSplitAreas(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, 10*PageSize, rw, fixed)
	require.Equal(t, [][2]uint64{{area, area + 10*PageSize}}, spans(as))

	require.NoError(t, as.Munmap(area+2*PageSize, 2*PageSize))
	require.Equal(t, [][2]uint64{{area, area + 2*PageSize}, {area + 4*PageSize, area + 10*PageSize}}, spans(as))

	require.NoError(t, as.Mprotect(area+6*PageSize, PageSize, unix.PROT_READ))
	maps := as.Mappings()
	require.Len(t, maps, 4)
	require.Equal(t, Mapping{Start: area + 6*PageSize, End: area + 7*PageSize, Prot: unix.PROT_READ, Flags: unix.MAP_PRIVATE}, maps[2])
	checkInvariants(t, as, phys, baseline)

	require.NoError(t, as.Mprotect(area+6*PageSize, PageSize, rw))
	require.Equal(t, [][2]uint64{{area, area + 2*PageSize}, {area + 4*PageSize, area + 10*PageSize}}, spans(as), "equal neighbours merge back")
	mustMmap(t, as, area+2*PageSize, 2*PageSize, rw, fixed)
	require.Equal(t, [][2]uint64{{area, area + 10*PageSize}}, spans(as))
	checkInvariants(t, as, phys, baseline)
}

func TestDifferentAreasDoNotMerge(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, PageSize, rw, fixed)
	mustMmap(t, as, area+PageSize, PageSize, rw, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	mustMmap(t, as, area+2*PageSize, PageSize, rw, fixed|unix.MAP_STACK)
	mustMmap(t, as, area+3*PageSize, PageSize, unix.PROT_READ, fixed)
	require.Len(t, as.Mappings(), 4)
	as.SetName(area+3*PageSize, "[stack]")
	require.Equal(t, "[stack]", as.Mappings()[3].Name)
}

func TestMapFixedReplaces(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, 4*PageSize, rw, fixed)
	writeString(t, as, area+PageSize, "old")
	inUse := phys.FramesInUse()
	as.TakeTLBFlush()

	mustMmap(t, as, area+PageSize, 2*PageSize, unix.PROT_READ|unix.PROT_EXEC, fixed)
	require.Equal(t, "\x00\x00\x00", readString(t, as, area+PageSize, 3))
	require.Equal(t, inUse, phys.FramesInUse(), "old frames freed, new ones taken")
	require.True(t, as.TakeTLBFlush())
	require.Len(t, as.Mappings(), 3)
	checkInvariants(t, as, phys, baseline)
}

func TestMapFixedNoReplace(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	_, err := as.Mmap(area+PageSize, 2*PageSize, rw, anon|unix.MAP_FIXED_NOREPLACE)
	require.ErrorIs(t, err, unix.EEXIST)
	got := mustMmap(t, as, area+2*PageSize, PageSize, rw, anon|unix.MAP_FIXED_NOREPLACE)
	require.Equal(t, uint64(area+2*PageSize), got)
	_, err = as.Mmap(area+1, PageSize, rw, anon|unix.MAP_FIXED_NOREPLACE)
	require.ErrorIs(t, err, unix.EINVAL)
}

func TestPlacement(t *testing.T) {
	as, _ := newTestSpace(t)
	first := mustMmap(t, as, 0, 3*PageSize, rw, anon)
	require.Equal(t, uint64(testMmapBase-3*PageSize), first, "top-down from MmapBase")
	second := mustMmap(t, as, 0, PageSize, rw, anon)
	require.Equal(t, first-PageSize, second)

	require.Equal(t, uint64(area), mustMmap(t, as, area, PageSize, rw, anon), "a free hint is used")
	require.Equal(t, second-PageSize, mustMmap(t, as, area, PageSize, rw, anon), "a taken hint is not")
	require.Equal(t, uint64(area+PageSize), mustMmap(t, as, area+PageSize+123, PageSize, rw, anon), "hints are rounded down")
	require.Equal(t, uint64(minMapAddr), mustMmap(t, as, 0x1000, PageSize, rw, anon), "hints are raised to the minimum")
	require.Equal(t, second-2*PageSize, mustMmap(t, as, MaxUserTop, PageSize, rw, anon), "hints past the top are ignored")

	low := mustMmap(t, as, 0, PageSize, rw, anon|unix.MAP_32BIT)
	require.Equal(t, uint64(map32Low), low)

	require.NoError(t, as.Munmap(first+PageSize, PageSize))
	require.Equal(t, first+PageSize, mustMmap(t, as, 0, PageSize, rw, anon), "the highest gap below MmapBase")
}

func TestPlacementFallsBackAboveMmapBase(t *testing.T) {
	phys := newPhys(t, 1<<20)
	as, err := NewAddressSpace(phys, Options{UserTop: 0x100000, MmapBase: 0x20000})
	require.NoError(t, err)
	require.Equal(t, uint64(0x10000), mustMmap(t, as, 0, 0x10000, unix.PROT_NONE, anon))
	require.Equal(t, uint64(0x20000), mustMmap(t, as, 0, 0x10000, unix.PROT_NONE, anon))
	require.Equal(t, uint64(0x30000), mustMmap(t, as, 0, 0xd0000, unix.PROT_NONE, anon))
	_, err = as.Mmap(0, PageSize, unix.PROT_NONE, anon)
	require.ErrorIs(t, err, unix.ENOMEM)
	_, err = as.Mmap(0, PageSize, unix.PROT_NONE, anon|unix.MAP_32BIT)
	require.ErrorIs(t, err, unix.ENOMEM)
}

func TestMmapErrors(t *testing.T) {
	as, phys := newTestSpace(t)
	inUse := phys.FramesInUse()
	cases := []struct {
		name         string
		addr, length uint64
		prot, flags  int
		want         unix.Errno
	}{
		{"file mapping", 0, PageSize, rw, unix.MAP_PRIVATE, unix.ENODEV},
		{"zero length", 0, 0, rw, anon, unix.EINVAL},
		{"length wraps", 0, 1<<64 - 1, rw, anon, unix.ENOMEM},
		{"longer than user space", 0, MaxUserTop + PageSize, rw, anon, unix.ENOMEM},
		{"fixed past the top", MaxUserTop, PageSize, rw, fixed, unix.ENOMEM},
		{"fixed non-canonical", 1 << 63, PageSize, rw, fixed, unix.ENOMEM},
		{"fixed unaligned", area + 1, PageSize, rw, fixed, unix.EINVAL},
		{"fixed below mmap_min_addr", 0x1000, PageSize, rw, fixed, unix.EPERM},
		{"fixed at 0", 0, PageSize, rw, fixed, unix.EPERM},
		{"no map type", 0, PageSize, rw, unix.MAP_ANONYMOUS, unix.EINVAL},
		{"shared and private", 0, PageSize, rw, unix.MAP_SHARED_VALIDATE | unix.MAP_ANONYMOUS, unix.EINVAL},
		{"shared grows down", 0, PageSize, rw, unix.MAP_SHARED | unix.MAP_ANONYMOUS | unix.MAP_GROWSDOWN, unix.EINVAL},
	}
	for _, c := range cases {
		_, err := as.Mmap(c.addr, c.length, c.prot, c.flags)
		require.ErrorIs(t, err, c.want, c.name)
	}
	require.Empty(t, as.Mappings())
	require.Equal(t, inUse, phys.FramesInUse())

	va := mustMmap(t, as, 0, 1, rw|0x100, anon|unix.MAP_POPULATE|unix.MAP_NORESERVE|0x4000000)
	require.Equal(t, []Mapping{{Start: va, End: va + PageSize, Prot: rw, Flags: unix.MAP_PRIVATE | unix.MAP_NORESERVE}}, as.Mappings(),
		"unknown bits are ignored, as Linux does")
}

func TestLimitFailuresLeaveNoTrace(t *testing.T) {
	phys := newPhys(t, 16<<20)
	baseline := phys.FramesInUse()
	as := newSpace(t, phys, 8*PageSize)
	mustMmap(t, as, area, 6*PageSize, rw, fixed)
	writeString(t, as, area, "keep")
	maps, inUse := as.Mappings(), phys.FramesInUse()

	_, err := as.Mmap(0, 3*PageSize, rw, anon)
	require.ErrorIs(t, err, unix.ENOMEM)
	_, err = as.Mmap(area+4*PageSize, 5*PageSize, rw, fixed)
	require.ErrorIs(t, err, unix.ENOMEM, "replacing 2 pages by 5 needs 9")
	_, err = as.Mmap(0, 1<<40, rw, anon)
	require.ErrorIs(t, err, unix.ENOMEM)
	require.Equal(t, maps, as.Mappings())
	require.Equal(t, inUse, phys.FramesInUse())
	require.Equal(t, "keep", readString(t, as, area, 4))

	mustMmap(t, as, area, 8*PageSize, rw, fixed)
	require.Equal(t, uint64(8*PageSize), as.Resident())

	require.NoError(t, as.Mprotect(area, 8*PageSize, unix.PROT_NONE))
	reserve := mustMmap(t, as, 0, 1<<30, unix.PROT_NONE, anon)
	require.ErrorIs(t, as.Mprotect(reserve, PageSize, rw), unix.ENOMEM, "PROT_NONE pages keep their frames")
	require.NoError(t, as.Munmap(area, PageSize))
	require.NoError(t, as.Mprotect(reserve, PageSize, rw))
	checkInvariants(t, as, phys, baseline)
}

func TestLimitBelowOnePage(t *testing.T) {
	phys := newPhys(t, 1<<20)
	as := newSpace(t, phys, PageSize-1)
	_, err := as.Mmap(0, PageSize, rw, anon)
	require.ErrorIs(t, err, unix.ENOMEM)
	mustMmap(t, as, 0, PageSize, unix.PROT_NONE, anon)
}

func TestPhysMemExhaustionLeavesNoTrace(t *testing.T) {
	phys := newPhys(t, 32*PageSize)
	baseline := phys.FramesInUse()
	as := newSpace(t, phys, 0)
	_, err := as.Mmap(0, 64*PageSize, rw, anon)
	require.ErrorIs(t, err, unix.ENOMEM, "not enough frames")
	_, err = as.Mmap(0, 30*PageSize, rw, anon)
	require.ErrorIs(t, err, unix.ENOMEM, "enough frames for the pages, none for the tables")
	require.Empty(t, as.Mappings())
	require.Equal(t, uint64(1), phys.FramesInUse()-baseline, "only the root")

	mustMmap(t, as, 0, 27*PageSize, rw, anon)
	require.Equal(t, uint64(31), phys.FramesInUse()-baseline, "root, three tables, 27 pages")
	checkInvariants(t, as, phys, baseline)
}

func TestMunmap(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	require.NoError(t, as.Munmap(area, 16*PageSize), "unmapping nothing is fine")
	mustMmap(t, as, area+PageSize, PageSize, rw, fixed)
	mustMmap(t, as, area+3*PageSize, PageSize, rw, fixed)
	require.NoError(t, as.Munmap(area, 8*PageSize-100), "holes are fine, lengths round up")
	require.Empty(t, as.Mappings())

	for _, c := range []struct{ addr, length uint64 }{
		{area + 1, PageSize}, {area, 0}, {MaxUserTop + PageSize, PageSize}, {area, MaxUserTop}, {1 << 63, PageSize},
	} {
		require.ErrorIs(t, as.Munmap(c.addr, c.length), unix.EINVAL, "%#x+%#x", c.addr, c.length)
	}
	checkInvariants(t, as, phys, baseline)
}

func TestMprotectErrors(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	mustMmap(t, as, area+3*PageSize, PageSize, rw, fixed)

	require.ErrorIs(t, as.Mprotect(area, 4*PageSize, unix.PROT_READ), unix.ENOMEM, "hole in the middle")
	require.ErrorIs(t, as.Mprotect(area-PageSize, 2*PageSize, unix.PROT_READ), unix.ENOMEM, "hole at the start")
	require.ErrorIs(t, as.Mprotect(area+PageSize, 2*PageSize, unix.PROT_READ), unix.ENOMEM, "hole at the end")
	require.ErrorIs(t, as.Mprotect(0x5000_0000, PageSize, unix.PROT_READ), unix.ENOMEM, "nothing there")
	require.ErrorIs(t, as.Mprotect(area, 1<<64-PageSize, unix.PROT_READ), unix.ENOMEM, "wraps")
	require.ErrorIs(t, as.Mprotect(area+1, PageSize, unix.PROT_READ), unix.EINVAL)
	require.ErrorIs(t, as.Mprotect(area, PageSize, 0x10), unix.EINVAL)
	require.ErrorIs(t, as.Mprotect(area, PageSize, unix.PROT_GROWSDOWN|unix.PROT_GROWSUP), unix.EINVAL)
	require.ErrorIs(t, as.Mprotect(area, PageSize, unix.PROT_READ|unix.PROT_GROWSDOWN), unix.EINVAL, "not a grows-down area")
	require.ErrorIs(t, as.Mprotect(area, PageSize, unix.PROT_READ|unix.PROT_GROWSUP), unix.EINVAL)
	require.Equal(t, [][2]uint64{{area, area + 2*PageSize}, {area + 3*PageSize, area + 4*PageSize}}, spans(as))
	for _, m := range as.Mappings() {
		require.Equal(t, rw, m.Prot, "a failed mprotect changes nothing")
	}

	require.ErrorIs(t, as.Mprotect(area+1, 0, unix.PROT_READ), unix.EINVAL)
	require.NoError(t, as.Mprotect(area, 0, unix.PROT_READ), "length 0 succeeds after the alignment check")
	require.NoError(t, as.Mprotect(area, PageSize+1, unix.PROT_READ|protSem))
	require.Equal(t, unix.PROT_READ, as.Mappings()[0].Prot)
	checkInvariants(t, as, phys, baseline)
}

func TestMprotectGrowsDown(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 4*PageSize, rw, fixed|unix.MAP_GROWSDOWN)
	require.NoError(t, as.Mprotect(area+2*PageSize, PageSize, rw|unix.PROT_EXEC|unix.PROT_GROWSDOWN))
	maps := as.Mappings()
	require.Len(t, maps, 2)
	require.Equal(t, Mapping{Start: area, End: area + 3*PageSize, Prot: rw | unix.PROT_EXEC, Flags: unix.MAP_PRIVATE | unix.MAP_GROWSDOWN}, maps[0])
}

func TestMapCountLimit(t *testing.T) {
	as, _ := newTestSpace(t)
	flags := [2]int{fixed, unix.MAP_SHARED | unix.MAP_ANONYMOUS | unix.MAP_FIXED}
	mustMmap(t, as, area, 3*PageSize, unix.PROT_NONE, fixed)
	for i := 1; i < maxMapCount; i++ {
		mustMmap(t, as, area+uint64(i+2)*PageSize, PageSize, unix.PROT_NONE, flags[i%2])
	}
	_, err := as.Mmap(0, PageSize, unix.PROT_NONE, anon)
	require.ErrorIs(t, err, unix.ENOMEM)
	require.ErrorIs(t, as.Munmap(area+PageSize, PageSize), unix.ENOMEM, "would cut an area in two")
	require.ErrorIs(t, as.Mprotect(area+PageSize, PageSize, unix.PROT_READ), unix.ENOMEM, "would cut an area in three")
	_, err = as.Mremap(area, PageSize, PageSize, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, 0x5000_0000)
	require.ErrorIs(t, err, unix.ENOMEM)
	require.NoError(t, as.Mprotect(area+3*PageSize, PageSize, unix.PROT_READ), "no split, no new area")
	require.NoError(t, as.Munmap(area+3*PageSize, PageSize), "unmapping a whole area is always possible")
	require.Len(t, as.Mappings(), maxMapCount-1)
}

func TestBrk(t *testing.T) {
	phys := newPhys(t, 16<<20)
	baseline := phys.FramesInUse()
	as := newSpace(t, phys, 64*PageSize)
	const start = 0x60_0000
	as.SetBrk(start)
	require.Equal(t, uint64(start), as.Brk(0))

	require.Equal(t, uint64(start+10000), as.Brk(start+10000))
	require.Equal(t, []Mapping{{Start: start, End: start + 3*PageSize, Prot: rw, Flags: unix.MAP_PRIVATE, Name: "[heap]"}}, as.Mappings())
	writeString(t, as, start+10000-4, "tail")
	require.Equal(t, uint64(start+5*PageSize), as.Brk(start+5*PageSize))
	require.Len(t, as.Mappings(), 1, "the heap grows as one area")
	require.Equal(t, "tail", readString(t, as, start+10000-4, 4))

	require.Equal(t, uint64(start+PageSize), as.Brk(start+PageSize))
	require.Equal(t, uint64(PageSize), as.Resident())
	require.True(t, as.TakeTLBFlush())
	require.Equal(t, uint64(start+3*PageSize), as.Brk(start+3*PageSize))
	require.Equal(t, "\x00\x00\x00\x00", readString(t, as, start+10000-4, 4), "regrown pages are zero")

	require.Equal(t, uint64(start+3*PageSize), as.Brk(start-1), "below the start")
	require.Equal(t, uint64(start+3*PageSize), as.Brk(start+65*PageSize), "past the limit")
	require.Equal(t, uint64(start+3*PageSize), as.Brk(MaxUserTop+PageSize), "past the top")
	require.Equal(t, uint64(start+3*PageSize), as.Brk(1<<64-1), "wraps")
	mustMmap(t, as, start+6*PageSize, PageSize, rw, fixed)
	require.Equal(t, uint64(start+3*PageSize), as.Brk(start+5*PageSize+1), "would leave no gap below a mapping")
	require.Equal(t, uint64(start+5*PageSize), as.Brk(start+5*PageSize))
	require.Equal(t, uint64(start), as.Brk(start))
	checkInvariants(t, as, phys, baseline)
}

func TestBrkWithoutStart(t *testing.T) {
	as, _ := newTestSpace(t)
	require.Zero(t, as.Brk(0))
	require.Zero(t, as.Brk(0x1000), "nothing may be mapped at page 0")
	require.Empty(t, as.Mappings())
}

func TestMremapGrowInPlace(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	writeString(t, as, area, "data")
	got, err := as.Mremap(area, 2*PageSize, 5*PageSize, 0, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(area), got)
	require.Equal(t, [][2]uint64{{area, area + 5*PageSize}}, spans(as))
	require.Equal(t, "data", readString(t, as, area, 4))
	require.False(t, as.TakeTLBFlush())
	checkInvariants(t, as, phys, baseline)
}

func TestMremapMoves(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	mustMmap(t, as, area+2*PageSize, PageSize, unix.PROT_READ, fixed)
	writeString(t, as, area+PageSize, "moved")
	oldGPA, _, _ := as.Translate(area + PageSize)

	_, err := as.Mremap(area, 2*PageSize, 4*PageSize, 0, 0)
	require.ErrorIs(t, err, unix.ENOMEM, "blocked, and not allowed to move")
	got, err := as.Mremap(area, 2*PageSize, 4*PageSize, unix.MREMAP_MAYMOVE, 0)
	require.NoError(t, err)
	require.NotEqual(t, uint64(area), got)
	require.Equal(t, "moved", readString(t, as, got+PageSize, 5))
	newGPA, _, _ := as.Translate(got + PageSize)
	require.Equal(t, oldGPA, newGPA, "the frame moves with the page")
	_, _, ok := as.Translate(area)
	require.False(t, ok)
	require.True(t, as.TakeTLBFlush())
	require.Equal(t, [][2]uint64{{area + 2*PageSize, area + 3*PageSize}, {got, got + 4*PageSize}}, spans(as))
	checkInvariants(t, as, phys, baseline)
}

func TestMremapFixed(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, 4*PageSize, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, fixed)
	mustMmap(t, as, area+16*PageSize, 8*PageSize, unix.PROT_READ, fixed)
	writeString(t, as, area+PageSize, "x")

	const mayMoveFixed = unix.MREMAP_MAYMOVE | unix.MREMAP_FIXED
	got, err := as.Mremap(area+PageSize, 3*PageSize, 2*PageSize, mayMoveFixed, area+18*PageSize)
	require.NoError(t, err)
	require.Equal(t, uint64(area+18*PageSize), got)
	require.Equal(t, "x", readString(t, as, got, 1))
	require.Equal(t, [][2]uint64{
		{area, area + PageSize},
		{area + 16*PageSize, area + 18*PageSize},
		{area + 18*PageSize, area + 20*PageSize},
		{area + 20*PageSize, area + 24*PageSize},
	}, spans(as), "moved over the middle of another area; the old tail is gone")
	checkInvariants(t, as, phys, baseline)

	for _, c := range []struct {
		name                    string
		oldAddr, oldLen, newLen uint64
		flags                   int
		newAddr                 uint64
		want                    unix.Errno
	}{
		{"fixed needs maymove", area, PageSize, PageSize, unix.MREMAP_FIXED, area + 8*PageSize, unix.EINVAL},
		{"unaligned new address", area, PageSize, PageSize, mayMoveFixed, area + 8*PageSize + 1, unix.EINVAL},
		{"overlap", area, PageSize, 2 * PageSize, mayMoveFixed, area - PageSize, unix.EINVAL},
		{"new range past the top", area, PageSize, PageSize, mayMoveFixed, MaxUserTop, unix.EINVAL},
		{"below mmap_min_addr", area, PageSize, PageSize, mayMoveFixed, 0x1000, unix.EPERM},
		{"beyond the area", area, 2 * PageSize, 2 * PageSize, mayMoveFixed, area + 8*PageSize, unix.EFAULT},
		{"dontunmap", area, PageSize, PageSize, mayMoveFixed | unix.MREMAP_DONTUNMAP, area + 8*PageSize, unix.EINVAL},
		{"unknown flag", area, PageSize, PageSize, 8, 0, unix.EINVAL},
		{"unaligned old address", area + 1, PageSize, PageSize, 0, 0, unix.EINVAL},
		{"zero new length", area, PageSize, 0, 0, 0, unix.EINVAL},
		{"new length wraps", area, PageSize, 1<<64 - 1, 0, 0, unix.EINVAL},
		{"nothing mapped", area + 8*PageSize, PageSize, PageSize, 0, 0, unix.EFAULT},
		{"grow beyond the area", area, 2 * PageSize, 3 * PageSize, unix.MREMAP_MAYMOVE, 0, unix.EFAULT},
		{"zero old length", area, 0, PageSize, unix.MREMAP_MAYMOVE, 0, unix.EINVAL},
		{"shrink past the top", area, 1<<64 - PageSize, PageSize, 0, 0, unix.EINVAL},
	} {
		_, err := as.Mremap(c.oldAddr, c.oldLen, c.newLen, c.flags, c.newAddr)
		require.ErrorIs(t, err, c.want, c.name)
	}
	checkInvariants(t, as, phys, baseline)
}

func TestMremapShrinkAndSameSize(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, 4*PageSize, rw, fixed)
	got, err := as.Mremap(area, 4*PageSize, PageSize+1, 0, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(area), got)
	require.Equal(t, [][2]uint64{{area, area + 2*PageSize}}, spans(as))
	require.Equal(t, uint64(2*PageSize), as.Resident())
	got, err = as.Mremap(area, 2*PageSize, 2*PageSize, 0, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(area), got)
	checkInvariants(t, as, phys, baseline)
}

func TestMremapRespectsTheLimit(t *testing.T) {
	phys := newPhys(t, 16<<20)
	as := newSpace(t, phys, 4*PageSize)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	mustMmap(t, as, area+2*PageSize, PageSize, unix.PROT_NONE, fixed)
	_, err := as.Mremap(area, 2*PageSize, 5*PageSize, unix.MREMAP_MAYMOVE, 0)
	require.ErrorIs(t, err, unix.ENOMEM)
	require.Equal(t, [][2]uint64{{area, area + 2*PageSize}, {area + 2*PageSize, area + 3*PageSize}}, spans(as))
	got, err := as.Mremap(area, 2*PageSize, 4*PageSize, unix.MREMAP_MAYMOVE, 0)
	require.NoError(t, err)
	require.NotEqual(t, uint64(area), got)
}

func TestMadviseDontneedZeroes(t *testing.T) {
	for _, advice := range []int{unix.MADV_DONTNEED, unix.MADV_FREE} {
		as, phys := newTestSpace(t)
		mustMmap(t, as, area, 3*PageSize, rw, fixed)
		writeString(t, as, area+PageSize-2, "abcd")
		gpa, _, _ := as.Translate(area)
		inUse := phys.FramesInUse()
		as.TakeTLBFlush()

		require.NoError(t, as.Madvise(area, 2*PageSize, advice))
		require.Equal(t, "\x00\x00\x00\x00", readString(t, as, area+PageSize-2, 4))
		same, _, _ := as.Translate(area)
		require.Equal(t, gpa, same, "the frame is zeroed where it is")
		require.Equal(t, inUse, phys.FramesInUse())
		require.False(t, as.TakeTLBFlush(), "no entry changed")
	}
}

func TestMadviseSharedFrameIsReplaced(t *testing.T) {
	as, phys := newTestSpace(t)
	baseline := phys.FramesInUse() - 1
	mustMmap(t, as, area, PageSize, rw, fixed)
	writeString(t, as, area, "both")
	gpa, _, _ := as.Translate(area)
	phys.IncRef(gpa) // as fork will
	as.TakeTLBFlush()

	require.NoError(t, as.Madvise(area, PageSize, unix.MADV_DONTNEED))
	fresh, _, _ := as.Translate(area)
	require.NotEqual(t, gpa, fresh)
	require.Equal(t, "\x00\x00\x00\x00", readString(t, as, area, 4))
	require.Equal(t, "both", string(phys.Frame(gpa)[:4]), "the other user keeps its data")
	require.True(t, as.TakeTLBFlush())
	phys.DecRef(gpa)
	checkInvariants(t, as, phys, baseline)
}

func TestMadviseSharedMappingKeepsContents(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, PageSize, rw, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	writeString(t, as, area, "shm")
	require.NoError(t, as.Madvise(area, PageSize, unix.MADV_DONTNEED))
	require.Equal(t, "shm", readString(t, as, area, 3))
	require.ErrorIs(t, as.Madvise(area, PageSize, unix.MADV_FREE), unix.EINVAL)
}

func TestMadviseErrors(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	writeString(t, as, area, "x")
	require.ErrorIs(t, as.Madvise(area, PageSize, 12345), unix.EINVAL)
	require.ErrorIs(t, as.Madvise(area, PageSize, unix.MADV_REMOVE), unix.EINVAL)
	require.ErrorIs(t, as.Madvise(area+1, PageSize, unix.MADV_NORMAL), unix.EINVAL)
	require.ErrorIs(t, as.Madvise(area, 1<<64-1, unix.MADV_NORMAL), unix.EINVAL)
	require.ErrorIs(t, as.Madvise(1<<64-PageSize, 2*PageSize, unix.MADV_NORMAL), unix.EINVAL)
	require.NoError(t, as.Madvise(area+PageSize*100, 0, unix.MADV_DONTNEED))
	require.ErrorIs(t, as.Madvise(0x5000_0000, PageSize, unix.MADV_WILLNEED), unix.ENOMEM)
	require.ErrorIs(t, as.Madvise(area-PageSize, 2*PageSize, unix.MADV_DONTNEED), unix.ENOMEM, "mapped parts are still discarded")
	require.Equal(t, "\x00", readString(t, as, area, 1))
	for _, advice := range []int{unix.MADV_NORMAL, unix.MADV_RANDOM, unix.MADV_SEQUENTIAL, unix.MADV_WILLNEED,
		unix.MADV_HUGEPAGE, unix.MADV_NOHUGEPAGE, unix.MADV_DONTFORK, unix.MADV_DOFORK} {
		require.NoError(t, as.Madvise(area, 2*PageSize, advice))
	}
}

func TestFreedFramesAreReturnedToTheHost(t *testing.T) {
	as, phys := newTestSpace(t)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	writeString(t, as, area, "secret")
	gpa, _, _ := as.Translate(area)
	inUse := phys.FramesInUse()
	as.TakeTLBFlush()

	require.NoError(t, as.Munmap(area, 2*PageSize))
	require.Equal(t, make([]byte, PageSize), phys.Frame(gpa), "madvise(MADV_DONTNEED) ran on the freed frame")
	require.Equal(t, inUse-2, phys.FramesInUse())
	require.True(t, as.TakeTLBFlush())
	require.False(t, as.TakeTLBFlush(), "taking the flush clears it")
}

func TestTLBFlushOnlyWhenAccessIsTakenAway(t *testing.T) {
	as, _ := newTestSpace(t)
	steps := []struct {
		name  string
		do    func() error
		flush bool
	}{
		{"new mapping", func() error { _, err := as.Mmap(area, 2*PageSize, unix.PROT_READ, fixed); return err }, false},
		{"upgrade to rw", func() error { return as.Mprotect(area, 2*PageSize, rw) }, false},
		{"add exec", func() error { return as.Mprotect(area, PageSize, rw|unix.PROT_EXEC) }, false},
		{"drop exec", func() error { return as.Mprotect(area, PageSize, rw) }, true},
		{"same prot", func() error { return as.Mprotect(area, 2*PageSize, rw) }, false},
		{"drop write", func() error { return as.Mprotect(area, PageSize, unix.PROT_READ) }, true},
		{"to none", func() error { return as.Mprotect(area, PageSize, unix.PROT_NONE) }, true},
		{"back from none", func() error { return as.Mprotect(area, PageSize, rw) }, false},
		{"new area next door", func() error { _, err := as.Mmap(area+2*PageSize, PageSize, rw, fixed); return err }, false},
		{"fixed over it", func() error { _, err := as.Mmap(area, PageSize, rw, fixed); return err }, true},
		{"unmap none", func() error {
			if err := as.Mprotect(area, PageSize, unix.PROT_NONE); err != nil {
				return err
			}
			as.TakeTLBFlush()
			return as.Munmap(area, PageSize)
		}, false},
		{"unmap", func() error { return as.Munmap(area, 3*PageSize) }, true},
		{"unmap nothing", func() error { return as.Munmap(area, 3*PageSize) }, false},
	}
	for _, s := range steps {
		require.NoError(t, s.do(), s.name)
		require.Equal(t, s.flush, as.TakeTLBFlush(), s.name)
	}
}

func TestReleaseFreesEverything(t *testing.T) {
	phys := newPhys(t, 64<<20)
	baseline := phys.FramesInUse()
	as := newSpace(t, phys, 0)
	mustMmap(t, as, 0, 100*PageSize, rw, anon)
	mustMmap(t, as, area, 3*PageSize, unix.PROT_READ, fixed)
	require.NoError(t, as.Mprotect(area, PageSize, unix.PROT_NONE))
	mustMmap(t, as, 1<<40, PageSize, rw, fixed)
	as.SetBrk(0x60_0000)
	as.Brk(0x70_0000)
	require.Greater(t, phys.FramesInUse(), baseline+100)

	as.Release()
	require.Equal(t, baseline, phys.FramesInUse())
	require.Zero(t, as.Root())
	require.Zero(t, as.Resident())
	require.Empty(t, as.Mappings())
	as.Release()

	_, err := as.Mmap(0, PageSize, rw, anon)
	require.ErrorIs(t, err, unix.ENOMEM)
	_, err = as.Mmap(area, PageSize, unix.PROT_NONE, fixed)
	require.ErrorIs(t, err, unix.ENOMEM)
	require.NoError(t, as.Munmap(area, PageSize))
	_, err = as.CopyIn(make([]byte, 1), area)
	require.ErrorIs(t, err, unix.EFAULT)
	require.Equal(t, uint64(0x70_0000), as.Brk(0x80_0000))
	require.Equal(t, baseline, phys.FramesInUse())
}

func TestConcurrentUse(t *testing.T) {
	phys := newPhys(t, 64<<20)
	spaces := []*AddressSpace{newSpace(t, phys, 0), newSpace(t, phys, 0)}
	var wg sync.WaitGroup
	for g := range 8 {
		as := spaces[g%2]
		wg.Go(func() {
			for i := range 200 {
				va, err := as.Mmap(0, uint64(1+i%5)*PageSize, rw, anon)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := as.CopyOut(va, []byte{byte(g)}); err != nil {
					t.Error(err)
				}
				if err := as.Mprotect(va, PageSize, unix.PROT_READ); err != nil {
					t.Error(err)
				}
				if err := as.Munmap(va, uint64(1+i%5)*PageSize); err != nil {
					t.Error(err)
				}
				as.TakeTLBFlush()
			}
		})
	}
	wg.Wait()
	for _, as := range spaces {
		require.Zero(t, as.Resident())
		as.Release()
	}
	require.Zero(t, phys.FramesInUse())
}
