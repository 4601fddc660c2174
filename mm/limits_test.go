package mm

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestAddressSpaceLimit(t *testing.T) {
	as, _ := newTestSpace(t)
	as.SetVMLimits(8*PageSize, noLimit)
	require.ErrorIs(t, as.MayMap(0, 9*PageSize, unix.PROT_NONE, anon), unix.ENOMEM)
	require.NoError(t, as.MayMap(0, 8*PageSize, unix.PROT_NONE, anon))
	addr := mustMmap(t, as, 0, 6*PageSize, rw, anon)
	require.ErrorIs(t, as.MayMap(0, 3*PageSize, rw, anon), unix.ENOMEM)
	require.NoError(t, as.MayMap(addr, 6*PageSize, unix.PROT_READ, fixed), "replaced pages count once")

	_, err := as.Mremap(addr, 6*PageSize, 9*PageSize, unix.MREMAP_MAYMOVE, 0)
	require.ErrorIs(t, err, unix.ENOMEM)
	_, err = as.Mremap(addr, 6*PageSize, 8*PageSize, unix.MREMAP_MAYMOVE, 0)
	require.NoError(t, err)

	child, err := as.Fork()
	require.NoError(t, err)
	defer child.Release()
	require.ErrorIs(t, child.MayMap(0, PageSize, rw, anon), unix.ENOMEM, "limits are inherited across fork")
}

func TestDataLimit(t *testing.T) {
	as, _ := newTestSpace(t)
	as.SetVMLimits(noLimit, 4*PageSize)
	require.ErrorIs(t, as.MayMap(0, 5*PageSize, rw, anon), unix.ENOMEM)
	require.NoError(t, as.MayMap(0, 5*PageSize, unix.PROT_READ, anon), "read-only memory is not data")
	require.NoError(t, as.MayMap(0, 5*PageSize, rw, unix.MAP_SHARED|unix.MAP_ANONYMOUS), "shared memory is not data")
	require.NoError(t, as.MayMap(0, 5*PageSize, rw, anon|unix.MAP_GROWSDOWN), "a stack is not data")

	ro := mustMmap(t, as, 0, 5*PageSize, unix.PROT_READ, anon)
	require.ErrorIs(t, as.Mprotect(ro, 5*PageSize, rw), unix.ENOMEM)
	require.NoError(t, as.Mprotect(ro, 2*PageSize, rw))

	const start = 0x60_0000
	as.SetBrk(start)
	require.Equal(t, uint64(start), as.Brk(start+3*PageSize), "the heap is data")
	require.Equal(t, uint64(start+2*PageSize), as.Brk(start+2*PageSize))

	// Lowering the limit below what is mapped keeps it; growth fails.
	as.SetVMLimits(noLimit, PageSize)
	require.Len(t, as.Mappings(), 3)
	require.Equal(t, uint64(start+2*PageSize), as.Brk(start+3*PageSize))
}
