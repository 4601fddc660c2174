package mm

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestNewPhysMemRejectsBadSizes(t *testing.T) {
	for _, size := range []uint64{0, 1<<64 - 1, 1 << 63} {
		_, err := NewPhysMem(size)
		require.ErrorIs(t, err, unix.EINVAL, "size %#x", size)
	}
}

func TestPhysMemAllocatesEveryFrameButZeroOnce(t *testing.T) {
	p := newPhys(t, 8*PageSize+1)
	require.Equal(t, uint64(9*PageSize), p.Size())
	require.Len(t, p.Bytes(), 9*PageSize)

	seen := map[uint64]bool{}
	for range 8 {
		gpa, err := p.AllocFrame()
		require.NoError(t, err)
		require.NotZero(t, gpa)
		require.Zero(t, gpa&pageMask)
		require.False(t, seen[gpa])
		seen[gpa] = true
	}
	_, err := p.AllocFrame()
	require.ErrorIs(t, err, unix.ENOMEM)
	require.Equal(t, uint64(8), p.FramesInUse())
}

func TestPhysMemFreedFrameComesBackZeroed(t *testing.T) {
	p := newPhys(t, 4*PageSize)
	gpa, err := p.AllocFrame()
	require.NoError(t, err)
	copy(p.Frame(gpa+123), "secret")
	require.Equal(t, byte('s'), p.Bytes()[gpa])

	p.DecRef(gpa)
	require.Zero(t, p.FramesInUse())
	require.Equal(t, make([]byte, PageSize), p.Frame(gpa))

	again, err := p.AllocFrame()
	require.NoError(t, err)
	require.Equal(t, gpa, again, "the free list is reused before fresh frames")
	require.Equal(t, make([]byte, PageSize), p.Frame(again))
}

func TestPhysMemSharedFrameSurvivesOneDecRef(t *testing.T) {
	p := newPhys(t, 4*PageSize)
	gpa, err := p.AllocFrame()
	require.NoError(t, err)
	p.IncRef(gpa)
	copy(p.Frame(gpa), "kept")

	p.DecRef(gpa)
	require.Equal(t, uint64(1), p.FramesInUse())
	require.Equal(t, "kept", string(p.Frame(gpa)[:4]))
	copy(p.Frame(gpa), "still writable")

	p.DecRef(gpa)
	require.Zero(t, p.FramesInUse())
	require.Panics(t, func() { p.DecRef(gpa) })
	require.Panics(t, func() { p.IncRef(gpa + 1) })
}

func TestPhysMemFreeFramesInAnyOrder(t *testing.T) {
	p := newPhys(t, 1100*PageSize)
	var frames []uint64
	for range 1000 {
		gpa, err := p.AllocFrame()
		require.NoError(t, err)
		p.Frame(gpa)[7] = 0xaa
		frames = append(frames, gpa)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(frames), func(i, j int) { frames[i], frames[j] = frames[j], frames[i] })
	freed := append([]uint64(nil), frames...)
	p.FreeFrames(freed)
	require.Zero(t, p.FramesInUse())
	for _, gpa := range frames {
		require.Zero(t, p.Frame(gpa)[7])
	}
	first, err := p.AllocFrame()
	require.NoError(t, err)
	second, err := p.AllocFrame()
	require.NoError(t, err)
	require.Equal(t, first+PageSize, second, "freed frames are handed out in ascending order")
}

func TestPhysMemFreeReturnsHostPages(t *testing.T) {
	p := newPhys(t, 64*PageSize)
	before, err := p.ResidentBytes()
	require.NoError(t, err)
	var frames []uint64
	for range 8 {
		gpa, err := p.AllocFrame()
		require.NoError(t, err)
		p.Frame(gpa)[0] = 1
		frames = append(frames, gpa)
	}
	p.revoke(append([]uint64(nil), frames...))
	revoked, err := p.ResidentBytes()
	require.NoError(t, err)
	require.Equal(t, before+8*PageSize, revoked, "revoked frames keep their pages")
	p.FreeFrames(frames)
	after, err := p.ResidentBytes()
	require.NoError(t, err)
	require.Equal(t, before, after)
}

func TestPhysMemReservation(t *testing.T) {
	p := newPhys(t, 4*PageSize)
	require.NoError(t, p.reserve(2))
	require.ErrorIs(t, p.reserve(2), unix.ENOMEM)
	_, err := p.AllocFrame()
	require.NoError(t, err)
	_, err = p.AllocFrame()
	require.ErrorIs(t, err, unix.ENOMEM, "reserved frames are not handed to others")
	require.NotZero(t, p.takeReserved())
	p.unreserve(1)
	_, err = p.AllocFrame()
	require.NoError(t, err)
}

// TestPhysMemRevokeKeepsContentsAndTheHostMapping checks that revoked
// frames keep their bytes and that the host mapping stays whole and
// writable, rather than cut into pieces that would pile up towards
// vm.max_map_count.
func TestPhysMemRevokeKeepsContentsAndTheHostMapping(t *testing.T) {
	p := newPhys(t, 64*PageSize)
	var frames []uint64
	for i := range 10 {
		gpa, err := p.AllocFrame()
		require.NoError(t, err)
		p.Frame(gpa)[0] = byte(i + 1)
		frames = append(frames, gpa)
	}
	p.revoke([]uint64{frames[1], frames[2], frames[5], frames[9]})
	for i, gpa := range frames {
		require.Equal(t, byte(i+1), p.Frame(gpa)[0])
		p.Frame(gpa)[1] = 1
	}
	base := uint64(uintptr(unsafe.Pointer(&p.Bytes()[0])))
	require.Equal(t, []string{"rw-s"}, hostMappingsOver(t, base, base+p.Size()))
}

// hostMappingsOver lists the permissions of this process's mappings that
// overlap [start, end).
func hostMappingsOver(t *testing.T, start, end uint64) []string {
	f, err := os.Open("/proc/self/maps")
	require.NoError(t, err)
	defer f.Close()
	var perms []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var lo, hi uint64
		var perm string
		_, err := fmt.Sscanf(strings.Replace(scanner.Text(), "-", " ", 1), "%x %x %s", &lo, &hi, &perm)
		require.NoError(t, err)
		if lo < end && start < hi {
			perms = append(perms, perm)
		}
	}
	require.NoError(t, scanner.Err())
	return perms
}

func TestResidentBytesCountsTouchedPages(t *testing.T) {
	p, err := NewPhysMem(64 * PageSize)
	require.NoError(t, err)
	defer p.Close()
	before, err := p.ResidentBytes()
	require.NoError(t, err)
	for i := 0; i < 8; i++ {
		p.Bytes()[i*PageSize] = 1
	}
	after, err := p.ResidentBytes()
	require.NoError(t, err)
	require.Equal(t, before+8*PageSize, after)
}

// TestHostWritesSurviveRevokes writes into a MAP_SHARED frame of one
// address space from the host while another address space keeps mapping
// and unmapping the same frame, which revokes it each time. A revoke that
// write-protected the frame's host page for a moment, as revokes once did,
// kills the program at the next host write.
func TestHostWritesSurviveRevokes(t *testing.T) {
	phys := newPhys(t, 64<<20)
	a := newSpace(t, phys, 0)
	defer a.Release()
	b := newSpace(t, phys, 0)
	defer b.Release()
	va := mustMmap(t, a, area, PageSize, rw, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	frame, _, ok := a.Translate(va)
	require.True(t, ok)

	stop := make(chan struct{})
	written := make(chan error, 1)
	go func() {
		src := make([]byte, PageSize)
		for i := byte(1); ; i++ {
			select {
			case <-stop:
				written <- nil
				return
			default:
			}
			for j := range src {
				src[j] = i
			}
			if _, err := a.CopyOut(va, src); err != nil {
				written <- err
				return
			}
		}
	}()
	for range 2000 {
		require.NoError(t, b.MapFrames(area, []uint64{frame}, rw, 0, ""))
		require.NoError(t, b.Munmap(area, PageSize))
	}
	close(stop)
	require.NoError(t, <-written)
	page := make([]byte, PageSize)
	_, err := a.CopyIn(page, va)
	require.NoError(t, err)
	for _, c := range page {
		require.Equal(t, page[0], c, "the host's writes landed whole")
	}
	require.Equal(t, uint32(1), phys.refCount(frame))
}
