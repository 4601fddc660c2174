package mm

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestPinLendsGuestMemoryAndHoldsItsFrames(t *testing.T) {
	p, err := NewPhysMem(512 * PageSize)
	require.NoError(t, err)
	defer p.Close()
	as, err := NewAddressSpace(p, Options{UserTop: MaxUserTop, MmapBase: MaxUserTop})
	require.NoError(t, err)
	defer as.Release()
	addr, err := as.Mmap(0, 8*PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)

	var pin Pinned
	require.NoError(t, as.Pin(&pin, addr+100, 3*PageSize, true))
	require.Equal(t, 3*PageSize, pin.Len())
	require.Less(t, len(pin.Slices), 4, "adjacent frames are merged")
	copy(pin.Slices[0], "through the pin")
	buf := make([]byte, 15)
	_, err = as.CopyIn(buf, addr+100)
	require.NoError(t, err)
	require.Equal(t, "through the pin", string(buf))

	inUse := p.FramesInUse()
	require.NoError(t, as.Munmap(addr, 8*PageSize))
	require.Equal(t, inUse-4, p.FramesInUse(), "the four pinned frames outlive the munmap")
	pin.Release()
	require.Equal(t, inUse-8, p.FramesInUse())

	ro, err := as.Mmap(0, 2*PageSize, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	require.ErrorIs(t, as.Pin(&pin, ro, PageSize, true), unix.EFAULT, "no writing where the guest may not")
	require.NoError(t, as.Pin(&pin, ro, PageSize, false))
	pin.Release()
	require.ErrorIs(t, as.Pin(&pin, ro+PageSize, 2*PageSize, false), unix.EFAULT)
	require.Equal(t, PageSize, pin.Len(), "the accessible prefix stays pinned")
	pin.Release()
}
