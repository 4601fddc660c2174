package mm

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestReserveLowKeepsFramesFromTheAllocator(t *testing.T) {
	p, err := NewPhysMem(64 * PageSize)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.ReserveLow(8*PageSize))
	gpa, err := p.AllocFrame()
	require.NoError(t, err)
	require.GreaterOrEqual(t, gpa, uint64(8*PageSize))
	require.ErrorIs(t, p.ReserveLow(8*PageSize), unix.EINVAL, "only before the first allocation")

	q, err := NewPhysMem(4 * PageSize)
	require.NoError(t, err)
	defer q.Close()
	require.ErrorIs(t, q.ReserveLow(4*PageSize), unix.EINVAL, "nothing would be left")
}

func TestSetMmapBaseMovesTheSearch(t *testing.T) {
	p, err := NewPhysMem(256 * PageSize)
	require.NoError(t, err)
	defer p.Close()
	as, err := NewAddressSpace(p, Options{UserTop: MaxUserTop, MmapBase: MaxUserTop})
	require.NoError(t, err)
	defer as.Release()
	require.NoError(t, as.SetMmapBase(0x7000_0000_0000))
	addr, err := as.Mmap(0, PageSize, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	require.Equal(t, uint64(0x7000_0000_0000-PageSize), addr)
	require.ErrorIs(t, as.SetMmapBase(0x1001), unix.EINVAL)
	require.ErrorIs(t, as.SetMmapBase(MaxUserTop+PageSize), unix.EINVAL)
}

func TestMapFramesSharesFramesAndDropsTheReference(t *testing.T) {
	p, err := NewPhysMem(256 * PageSize)
	require.NoError(t, err)
	defer p.Close()
	frame, err := p.AllocFrame()
	require.NoError(t, err)
	copy(p.Frame(frame), "time page")
	as, err := NewAddressSpace(p, Options{UserTop: MaxUserTop, MmapBase: MaxUserTop})
	require.NoError(t, err)
	defer as.Release()
	const at = 0x7000_0000_0000
	require.NoError(t, as.MapFrames(at, []uint64{frame}, unix.PROT_READ, 0, "[vvar]"))
	require.ErrorIs(t, as.MapFrames(at, []uint64{frame}, unix.PROT_READ, 0, "[vvar]"), unix.EEXIST)
	buf := make([]byte, 9)
	_, err = as.CopyIn(buf, at)
	require.NoError(t, err)
	require.Equal(t, "time page", string(buf))
	gpa, prot, ok := as.Translate(at)
	require.True(t, ok)
	require.Equal(t, frame, gpa)
	require.Equal(t, unix.PROT_READ, prot)
	require.Equal(t, "[vvar]", as.Mappings()[0].Name)
	require.Equal(t, uint32(2), p.refCount(frame))
	require.NoError(t, as.Munmap(at, PageSize))
	require.Equal(t, uint32(1), p.refCount(frame))
	require.Equal(t, "time page", string(p.Frame(frame)[:9]), "the owner's frame survives the guest's munmap")
}

func TestCoveredSeesHoles(t *testing.T) {
	p, err := NewPhysMem(256 * PageSize)
	require.NoError(t, err)
	defer p.Close()
	as, err := NewAddressSpace(p, Options{UserTop: MaxUserTop, MmapBase: MaxUserTop})
	require.NoError(t, err)
	defer as.Release()
	addr, err := as.Mmap(0, 4*PageSize, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	require.True(t, as.Covered(addr, 4*PageSize))
	require.True(t, as.Covered(addr+PageSize, 1), "a partial page counts as its page")
	require.NoError(t, as.Mprotect(addr+PageSize, PageSize, unix.PROT_READ|unix.PROT_WRITE))
	require.True(t, as.Covered(addr, 4*PageSize), "split areas still cover")
	require.NoError(t, as.Munmap(addr+2*PageSize, PageSize))
	require.False(t, as.Covered(addr, 4*PageSize))
	require.False(t, as.Covered(addr+4*PageSize, PageSize))
	require.False(t, as.Covered(^uint64(0)-PageSize, 2*PageSize), "no wrap-around")
}

func TestMapFramesReadOnlyCannotBeWrittenOrMoved(t *testing.T) {
	p := newPhys(t, 256*PageSize)
	frame, err := p.AllocFrame()
	require.NoError(t, err)
	copy(p.Frame(frame), "time page")
	as := newSpace(t, p, 0)
	defer as.Release()
	require.NoError(t, as.MapFrames(area, []uint64{frame}, unix.PROT_READ, FramesPrivate|FramesReadOnly, "[vvar]"))
	require.Equal(t, unix.MAP_PRIVATE, as.Mappings()[0].Flags)

	require.ErrorIs(t, as.Mprotect(area, PageSize, rw), unix.EACCES)
	require.ErrorIs(t, as.Mprotect(area, PageSize, unix.PROT_READ|unix.PROT_EXEC), unix.EACCES)
	require.NoError(t, as.Mprotect(area, PageSize, unix.PROT_NONE), "taking access away is allowed")
	require.NoError(t, as.Mprotect(area, PageSize, unix.PROT_READ), "and giving read back")
	_, err = as.Mremap(area, PageSize, 2*PageSize, unix.MREMAP_MAYMOVE, 0)
	require.ErrorIs(t, err, unix.EFAULT)
	_, err = as.Mremap(area, PageSize, PageSize, unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, area+16*PageSize)
	require.ErrorIs(t, err, unix.EFAULT)
	require.ErrorIs(t, as.Madvise(area, PageSize, unix.MADV_FREE), unix.EINVAL)
	require.NoError(t, as.Madvise(area, PageSize, unix.MADV_DONTNEED))

	gpa, prot, ok := as.Translate(area)
	require.True(t, ok)
	require.Equal(t, frame, gpa)
	require.Equal(t, unix.PROT_READ, prot)
	require.Equal(t, "time page", readString(t, as, area, 9))
	_, err = as.CopyOut(area, []byte("x"))
	require.ErrorIs(t, err, unix.EFAULT)
}

func TestMapFramesPrivateCopiesBeforeAWrite(t *testing.T) {
	p := newPhys(t, 256*PageSize)
	baseline := p.FramesInUse()
	var frames []uint64
	for _, s := range []string{"code one", "code two"} {
		frame, err := p.AllocFrame()
		require.NoError(t, err)
		copy(p.Frame(frame), s)
		frames = append(frames, frame)
	}
	as := newSpace(t, p, 0)
	require.NoError(t, as.MapFrames(area, frames, unix.PROT_READ|unix.PROT_EXEC, FramesPrivate, "[vdso]"))
	other := newSpace(t, p, 0)
	require.NoError(t, other.MapFrames(area, frames, unix.PROT_READ|unix.PROT_EXEC, FramesPrivate, "[vdso]"))

	require.NoError(t, as.Mprotect(area, 2*PageSize, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC))
	for i, frame := range frames {
		gpa, _, ok := as.Translate(area + uint64(i)*PageSize)
		require.True(t, ok)
		require.NotEqual(t, frame, gpa, "a copy of its own")
		require.Equal(t, uint32(2), p.refCount(frame))
	}
	require.Equal(t, "code two", readString(t, as, area+PageSize, 8))
	_, err := as.CopyOut(area, []byte("mine"))
	require.NoError(t, err)
	require.Equal(t, "mine one", readString(t, as, area, 8))
	require.Equal(t, "code one", string(p.Frame(frames[0])[:8]), "the frames themselves are never written")
	require.Equal(t, "code one", readString(t, other, area, 8))

	require.NoError(t, as.Madvise(area, 2*PageSize, unix.MADV_DONTNEED))
	require.Equal(t, "mine one", readString(t, as, area, 8), "madvise keeps what MapFrames mapped")

	as.Release()
	other.Release()
	for _, frame := range frames {
		p.DecRef(frame)
	}
	require.Equal(t, baseline, p.FramesInUse())
}
