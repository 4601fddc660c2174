package mm

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// testFile is a file for the page cache that counts its reads.
type testFile struct {
	data  []byte
	reads int
	err   error
}

func (f *testFile) read(dst []byte, off int64) (int, error) {
	f.reads++
	if f.err != nil {
		return 0, f.err
	}
	if off >= int64(len(f.data)) {
		return 0, nil
	}
	return copy(dst, f.data[off:]), nil
}

// newTestFile holds pages full of 'a', 'b', ... and then tail bytes of
// the next letter.
func newTestFile(pages, tail int) *testFile {
	var data []byte
	for i := range pages {
		data = append(data, bytes.Repeat([]byte{byte('a' + i)}, PageSize)...)
	}
	return &testFile{data: append(data, bytes.Repeat([]byte{byte('a' + pages)}, tail)...)}
}

var testID = FileID{Dev: 1, Ino: 2}

func version(f *testFile, writes uint64) FileVersion {
	return FileVersion{Size: int64(len(f.data)), Writes: writes}
}

func TestPageCacheReadsEachPageOnce(t *testing.T) {
	p := newPhys(t, 16<<20)
	c := NewPageCache(p)
	f := newTestFile(3, 100)
	v := version(f, 0)

	frames, err := c.Pages(testID, v, 0, 6, f.read)
	require.NoError(t, err)
	require.Len(t, frames, 6)
	require.Equal(t, 1, f.reads, "consecutive pages are read with one call")
	for i, want := range []byte{'a', 'b', 'c', 'd'} {
		require.NotZero(t, frames[i])
		require.Equal(t, want, p.Frame(frames[i])[0])
	}
	require.Equal(t, make([]byte, PageSize-100), p.Frame(frames[3])[100:], "the last page is zero past the end of the file")
	require.Equal(t, []uint64{0, 0}, frames[4:], "pages past the end of the file")
	require.Equal(t, PageCacheStats{CopiedBytes: 3*PageSize + 100, CachedBytes: 4 * PageSize}, c.Stats())

	again, err := c.Pages(testID, v, 1, 2, f.read)
	require.NoError(t, err)
	require.Equal(t, frames[1:3], again)
	require.Equal(t, 1, f.reads, "cached pages are not read again")
	require.Equal(t, uint64(2), c.Stats().HitPages)
	require.True(t, p.Shared(frames[1]), "the cache and the caller hold the frame")

	c.Release(frames)
	c.Release(again)
	require.Equal(t, uint64(4), p.FramesInUse(), "the cache keeps its pages")
	c.Invalidate(testID)
	require.Zero(t, p.FramesInUse())
	require.Zero(t, c.Stats().CachedBytes)
}

func TestPageCacheDropsAChangedFile(t *testing.T) {
	p := newPhys(t, 16<<20)
	c := NewPageCache(p)
	as := newSpace(t, p, 0)
	f := newTestFile(2, 0)

	frames, err := c.Pages(testID, version(f, 0), 0, 2, f.read)
	require.NoError(t, err)
	addr, err := as.MapFile(0, 2*PageSize, unix.PROT_READ, unix.MAP_PRIVATE, framePagesForTest(frames))
	require.NoError(t, err)
	c.Release(frames)

	f.data[0] = 'X'
	changed, err := c.Pages(testID, version(f, 1), 0, 2, f.read)
	require.NoError(t, err)
	require.Equal(t, 2, f.reads, "a new version is read again")
	require.Equal(t, byte('X'), p.Frame(changed[0])[0])
	require.NotEqual(t, frames[0], changed[0])

	got := make([]byte, 1)
	_, err = as.CopyIn(got, addr)
	require.NoError(t, err)
	require.Equal(t, "a", string(got), "a mapping keeps the pages it mapped")
	require.False(t, p.Shared(frames[0]), "the cache no longer holds the old frame")

	c.Release(changed)
	as.Release()
	c.Invalidate(testID)
	require.Zero(t, p.FramesInUse(), "nothing leaks")
}

func TestPageCacheReadErrorKeepsNothing(t *testing.T) {
	p := newPhys(t, 16<<20)
	c := NewPageCache(p)
	f := newTestFile(2, 0)
	frames, err := c.Pages(testID, version(f, 0), 0, 1, f.read)
	require.NoError(t, err)
	c.Release(frames)
	f.err = unix.EIO
	_, err = c.Pages(testID, version(f, 0), 0, 2, f.read)
	require.True(t, errors.Is(err, unix.EIO))
	require.Equal(t, uint64(1), p.FramesInUse(), "only the page read before")
	_, err = c.Pages(testID, version(f, 0), 0, 1<<40, f.read)
	require.Equal(t, unix.ENOMEM, err, "more pages than guest memory")
}

func TestPageCacheGivesBackUnmappedPagesWhenMemoryRunsShort(t *testing.T) {
	p := newPhys(t, 4<<20)
	c := NewPageCache(p)
	as := newSpace(t, p, 0)
	old := newTestFile(256, 0) // 1 MiB, the least recently used
	recent := newTestFile(256, 0)

	oldFrames, err := c.Pages(FileID{Ino: 1}, version(old, 0), 0, 256, old.read)
	require.NoError(t, err)
	mapped, err := as.MapFile(0, PageSize, unix.PROT_READ, unix.MAP_PRIVATE, framePagesForTest(oldFrames[:1]))
	require.NoError(t, err)
	c.Release(oldFrames)
	recentFrames, err := c.Pages(FileID{Ino: 2}, version(recent, 0), 0, 256, recent.read)
	require.NoError(t, err)
	c.Release(recentFrames)
	require.Equal(t, uint64(512*PageSize), c.Stats().CachedBytes)

	// 2 MiB more than is free: the old file's unmapped pages go first.
	_, err = as.Mmap(0, 2<<20, rw, anon)
	require.NoError(t, err)
	cached := c.Stats().CachedBytes
	require.Less(t, cached, uint64(512*PageSize))
	require.True(t, p.Shared(oldFrames[0]), "the mapped page stays cached")

	got := make([]byte, 1)
	_, err = as.CopyIn(got, mapped)
	require.NoError(t, err)
	require.Equal(t, "a", string(got))

	// What nothing can free still fails.
	_, err = as.Mmap(0, 4<<20, rw, anon)
	require.Equal(t, unix.ENOMEM, err)
	require.Equal(t, uint64(PageSize), c.Stats().CachedBytes, "only the mapped page is left")
}

// framePagesForTest maps frames as they are; 0 reads as zeros.
type framePagesForTest []uint64

func (p framePagesForTest) Frame(i uint64) uint64 { return p[i] }

func (framePagesForTest) Fill(uint64, []byte) {}

func TestMapFileSharesUntilWritten(t *testing.T) {
	p := newPhys(t, 16<<20)
	c := NewPageCache(p)
	as := newSpace(t, p, 0)
	f := newTestFile(4, 0)
	frames, err := c.Pages(testID, version(f, 0), 0, 4, f.read)
	require.NoError(t, err)
	defer c.Release(frames)

	ro, err := as.MapFile(0, 4*PageSize, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE, framePagesForTest(frames))
	require.NoError(t, err)
	for i, frame := range frames {
		gpa, prot, ok := as.Translate(ro + uint64(i)*PageSize)
		require.True(t, ok)
		require.Equal(t, frame, gpa, "a read-only page is the cached frame")
		require.Equal(t, unix.PROT_READ|unix.PROT_EXEC, prot)
	}
	_, err = as.CopyOut(ro, []byte("x"))
	require.Equal(t, unix.EFAULT, err, "the kernel does not write a cached frame either")

	rwAddr, err := as.MapFile(0, 4*PageSize, rw, unix.MAP_PRIVATE, framePagesForTest(frames))
	require.NoError(t, err)
	gpa, _, _ := as.Translate(rwAddr)
	require.NotEqual(t, frames[0], gpa, "a writable page is a copy")
	_, err = as.CopyOut(rwAddr, []byte("x"))
	require.NoError(t, err)
	require.Equal(t, byte('a'), p.Frame(frames[0])[0])
	require.Equal(t, byte('x'), p.Frame(gpa)[0])

	child, err := as.Fork()
	require.NoError(t, err)
	childGPA, _, _ := child.Translate(ro + PageSize)
	require.Equal(t, frames[1], childGPA, "fork shares read-only file pages")

	require.NoError(t, as.Mprotect(ro, 2*PageSize, rw))
	_, err = as.CopyOut(ro, bytes.Repeat([]byte("y"), 2*PageSize))
	require.NoError(t, err)
	for i := range 2 {
		gpa, _, _ := as.Translate(ro + uint64(i)*PageSize)
		require.NotEqual(t, frames[i], gpa)
		require.Equal(t, byte('a'+i), p.Frame(frames[i])[0], "the cached frame is never written")
	}
	require.True(t, as.TakeTLBFlush(), "the guest drops its read-only translations")
	got := make([]byte, 1)
	_, err = child.CopyIn(got, ro)
	require.NoError(t, err)
	require.Equal(t, "a", string(got))

	// MAP_FIXED over the mapping, and then no mapping at all.
	_, err = as.MapFile(ro, PageSize, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_FIXED, framePagesForTest(frames[3:]))
	require.NoError(t, err)
	gpa, _, _ = as.Translate(ro)
	require.Equal(t, frames[3], gpa)
	_, err = as.MapFile(ro, PageSize, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_FIXED_NOREPLACE, framePagesForTest(frames))
	require.Equal(t, unix.EEXIST, err)
	_, err = as.MapFile(0, PageSize, unix.PROT_READ, unix.MAP_SHARED, framePagesForTest(frames))
	require.Equal(t, unix.EINVAL, err)

	child.Release()
	as.Release()
	require.Equal(t, uint64(4), p.FramesInUse(), "only the cached pages are left")
	for _, frame := range frames {
		require.True(t, p.Shared(frame), "the cache and this test hold the frame")
	}
}

func TestMapFileRespectsTheLimit(t *testing.T) {
	p := newPhys(t, 16<<20)
	c := NewPageCache(p)
	as := newSpace(t, p, 4*PageSize)
	f := newTestFile(8, 0)
	frames, err := c.Pages(testID, version(f, 0), 0, 8, f.read)
	require.NoError(t, err)
	defer c.Release(frames)
	_, err = as.MapFile(0, 8*PageSize, unix.PROT_READ, unix.MAP_PRIVATE, framePagesForTest(frames))
	require.Equal(t, unix.ENOMEM, err, "shared pages count against the address space's limit")
	_, err = as.MapFile(0, 4*PageSize, unix.PROT_READ, unix.MAP_PRIVATE, framePagesForTest(frames))
	require.NoError(t, err)
	require.Equal(t, uint64(4*PageSize), as.Resident())
}

func TestSharedFramesListsOnlySharedAreas(t *testing.T) {
	as, p := newTestSpace(t)
	frames := make([]uint64, 2)
	for i := range frames {
		gpa, err := p.AllocFrame()
		require.NoError(t, err)
		frames[i] = gpa
	}
	const shared = 0x10_0000
	require.NoError(t, as.MapFrames(shared, frames, rw, 0, ""))
	private := mustMmap(t, as, shared+4*PageSize, 2*PageSize, rw, anon)
	require.Equal(t, frames, as.SharedFrames(shared, private+2*PageSize-shared))
	require.Equal(t, frames[1:], as.SharedFrames(shared+PageSize, 1))
	require.Empty(t, as.SharedFrames(private, 2*PageSize))
	require.Empty(t, as.SharedFrames(shared, 0))
	require.Empty(t, as.SharedFrames(^uint64(0)&^pageMask, 2*PageSize), "a range that wraps")
}

// TestRandomFileMappingsNeverWriteTheCache runs random operations on
// private file mappings of cached pages, in an address space and its
// forks: no page the guest may write is ever a cached frame, the cached
// frames keep the file's bytes, and everything is given back at the end.
func TestRandomFileMappingsNeverWriteTheCache(t *testing.T) {
	const window, pages = 0x1000_0000, 16
	rng := rand.New(rand.NewPCG(3, 5))
	for range 200 {
		p := newPhys(t, 16<<20)
		c := NewPageCache(p)
		f := newTestFile(pages, 0)
		frames, err := c.Pages(testID, version(f, 0), 0, pages, f.read)
		require.NoError(t, err)
		cached := map[uint64]byte{}
		for i, gpa := range frames {
			cached[gpa] = byte('a' + i)
		}
		spaces := []*AddressSpace{newSpace(t, p, 0)}
		addr := func() uint64 { return window + uint64(rng.IntN(32))*PageSize }
		length := func() uint64 { return uint64(rng.IntN(pages)+1) * PageSize }
		prot := func() int { return rng.IntN(8) }
		for range 40 {
			as := spaces[rng.IntN(len(spaces))]
			switch rng.IntN(8) {
			case 0, 1:
				first := rng.IntN(pages)
				flags := unix.MAP_PRIVATE
				if rng.IntN(2) == 0 {
					flags |= unix.MAP_FIXED
				}
				n := uint64(pages-first) * PageSize
				_, _ = as.MapFile(addr(), min(length(), n), prot(), flags, framePagesForTest(frames[first:]))
			case 2:
				_ = as.Mprotect(addr(), length(), prot())
			case 3:
				_ = as.Munmap(addr(), length())
			case 4:
				if len(spaces) < 3 {
					child, err := as.Fork()
					require.NoError(t, err)
					spaces = append(spaces, child)
				}
			case 5:
				_, _ = as.CopyOut(addr(), bytes.Repeat([]byte{'W'}, int(length())))
			case 6:
				_ = as.Madvise(addr(), length(), unix.MADV_DONTNEED)
			case 7:
				_, _ = as.Mremap(addr(), length(), length(), unix.MREMAP_MAYMOVE, 0)
			}
			for _, as := range spaces {
				for va := uint64(window); va < window+64*PageSize; va += PageSize {
					gpa, prot, ok := as.Translate(va)
					if _, isCached := cached[gpa&^pageMask]; ok && isCached {
						require.Zero(t, prot&unix.PROT_WRITE, "a writable page maps a cached frame at %#x", va)
					}
				}
				as.TakeTLBFlush()
			}
			for gpa, b := range cached {
				require.Equal(t, bytes.Repeat([]byte{b}, PageSize), p.Frame(gpa), "a cached frame changed")
			}
		}
		for _, as := range spaces {
			as.Release()
		}
		c.Release(frames)
		require.Equal(t, uint64(pages), p.FramesInUse(), "only the cache's pages are left")
		c.Invalidate(testID)
		require.Zero(t, p.FramesInUse())
	}
}
