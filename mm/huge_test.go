package mm

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// hugeAt returns the second-level entry over va if it maps a huge page.
func hugeAt(p *PhysMem, root, va uint64) (uint64, bool) {
	path := walk(p, root, va)
	if len(path) < 3 || path[2]&pteHuge == 0 {
		return 0, false
	}
	return path[2], true
}

func TestHugePagesFollowTheAreas(t *testing.T) {
	as, p := newTestSpace(t)
	baseline := p.FramesInUse() - 1
	va := mustMmap(t, as, 0, 2*HugePageSize, rw, anon)
	require.Zero(t, va%HugePageSize, "a 2 MiB-multiple mapping starts on a 2 MiB boundary")
	l := checkInvariants(t, as, p, baseline)
	require.Equal(t, 2, l.huge)
	e, ok := hugeAt(p, as.Root(), va)
	require.True(t, ok)
	require.NotZero(t, e&pteWritable)
	require.NotZero(t, e&pteNoExec)

	_, err := as.CopyOut(va+HugePageSize-2, []byte("abcd"))
	require.NoError(t, err)
	gpa, prot, ok := as.Translate(va + HugePageSize + 1)
	require.True(t, ok)
	require.Equal(t, rw|unix.PROT_READ, prot)
	require.Equal(t, byte('d'), p.Bytes()[gpa])

	// Taking write access from one page breaks its huge page up.
	require.NoError(t, as.Mprotect(va+5*PageSize, PageSize, unix.PROT_READ))
	require.True(t, as.TakeTLBFlush())
	l = checkInvariants(t, as, p, baseline)
	require.Equal(t, 1, l.huge)
	_, ok = hugeAt(p, as.Root(), va)
	require.False(t, ok)
	_, prot, _ = as.Translate(va + 5*PageSize)
	require.Equal(t, unix.PROT_READ, prot)

	// Giving it back makes the huge page again.
	require.NoError(t, as.Mprotect(va, HugePageSize, rw))
	require.Equal(t, 2, checkInvariants(t, as, p, baseline).huge)

	// Discarded pages keep their frames: the huge page stays, zeroed.
	require.NoError(t, as.Madvise(va+HugePageSize, HugePageSize, unix.MADV_DONTNEED))
	require.Equal(t, 2, checkInvariants(t, as, p, baseline).huge)
	got := make([]byte, 2)
	_, err = as.CopyIn(got, va+HugePageSize)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0}, got)

	// A fork copies the pages; the parent keeps its huge pages.
	child, err := as.Fork()
	require.NoError(t, err)
	require.Zero(t, readLayout(t, child, p).huge, "the child's copies are pages")
	child.Release()
	require.Equal(t, 2, checkInvariants(t, as, p, baseline).huge)

	// A hole ends the huge page it is in.
	require.NoError(t, as.Munmap(va+HugePageSize+PageSize, PageSize))
	require.Equal(t, 1, checkInvariants(t, as, p, baseline).huge)

	as.Release()
	require.Equal(t, baseline, p.FramesInUse())
}

func TestSmallOrUnalignedAreasUsePages(t *testing.T) {
	as, p := newTestSpace(t)
	baseline := p.FramesInUse() - 1
	mustMmap(t, as, 0, HugePageSize-PageSize, rw, anon)
	mustMmap(t, as, 0x4000_1000, HugePageSize, rw, fixed)
	require.Zero(t, checkInvariants(t, as, p, baseline).huge)
}
