package mm

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestLeafEntryBitsForEveryProt(t *testing.T) {
	const (
		p  = ptePresent
		w  = pteWritable
		u  = pteUser
		nx = pteNoExec
	)
	cases := []struct {
		prot int
		bits uint64
	}{
		{unix.PROT_READ, p | u | nx},
		{unix.PROT_WRITE, p | w | u | nx},
		{unix.PROT_EXEC, p | u},
		{unix.PROT_READ | unix.PROT_WRITE, p | w | u | nx},
		{unix.PROT_READ | unix.PROT_EXEC, p | u},
		{unix.PROT_READ | unix.PROT_WRITE | unix.PROT_EXEC, p | w | u},
	}
	as, phys := newTestSpace(t)
	base := mustMmap(t, as, 0x40_0000, uint64(len(cases))*PageSize, unix.PROT_NONE, fixed)
	for i, c := range cases {
		va := base + uint64(i)*PageSize
		require.NoError(t, as.Mprotect(va, PageSize, c.prot))
		path := walk(phys, as.Root(), va)
		require.Len(t, path, 4)
		for level, e := range path[:3] {
			require.Equal(t, tableEntry, e&^pteFrame, "level %d", 3-level)
			require.NotZero(t, e&pteFrame)
		}
		require.Equal(t, c.bits, path[3]&^pteFrame, "prot %#x", c.prot)

		gpa, prot, ok := as.Translate(va + 5)
		require.True(t, ok)
		require.Equal(t, path[3]&pteFrame+5, gpa)
		require.Equal(t, c.prot|unix.PROT_READ, prot, "x86 cannot deny reads of a present page")
	}
}

func TestProtNoneIsNotPresentButKeepsItsFrame(t *testing.T) {
	as, phys := newTestSpace(t)
	va := mustMmap(t, as, 0, 2*PageSize, unix.PROT_NONE, anon)
	require.Zero(t, leafOf(phys, as.Root(), va), "a fresh PROT_NONE area has no frames")
	_, _, ok := as.Translate(va)
	require.False(t, ok)

	require.NoError(t, as.Mprotect(va, 2*PageSize, rw))
	_, err := as.CopyOut(va+PageSize-2, []byte("data"))
	require.NoError(t, err)
	gpa, _, ok := as.Translate(va)
	require.True(t, ok)

	require.NoError(t, as.Mprotect(va, 2*PageSize, unix.PROT_NONE))
	e := leafOf(phys, as.Root(), va)
	require.Zero(t, e&ptePresent)
	require.Equal(t, gpa&pteFrame, e, "the frame stays with the page, out of the guest's reach")
	_, _, ok = as.Translate(va)
	require.False(t, ok)
	_, err = as.CopyIn(make([]byte, 1), va)
	require.ErrorIs(t, err, unix.EFAULT)

	require.NoError(t, as.Mprotect(va, 2*PageSize, unix.PROT_READ))
	got := make([]byte, 4)
	_, err = as.CopyIn(got, va+PageSize-2)
	require.NoError(t, err)
	require.Equal(t, "data", string(got), "contents survive PROT_NONE")
}

func TestMunmapClearsEntries(t *testing.T) {
	as, phys := newTestSpace(t)
	va := mustMmap(t, as, 0, 3*PageSize, rw, anon)
	require.NoError(t, as.Munmap(va+PageSize, PageSize))
	require.NotZero(t, leafOf(phys, as.Root(), va))
	require.Zero(t, leafOf(phys, as.Root(), va+PageSize))
	require.NotZero(t, leafOf(phys, as.Root(), va+2*PageSize))
}

func TestSharedPML4EntriesAreInstalledAndKept(t *testing.T) {
	phys := newPhys(t, 1<<20)
	vmTable, err := phys.AllocFrame()
	require.NoError(t, err)
	copy(phys.Frame(vmTable), "vm-owned")
	baseline := phys.FramesInUse()

	const userTop = 0x7f80_0000_0000 // PML4 slot 255 belongs to the VM
	shared := []PML4Entry{{Index: 255, Value: vmTable | tableEntry}, {Index: 511, Value: vmTable | ptePresent}}
	as, err := NewAddressSpace(phys, Options{UserTop: userTop, MmapBase: 0x7000_0000_0000, SharedPML4: shared})
	require.NoError(t, err)
	root := as.Root()
	require.Equal(t, vmTable|tableEntry, entryAt(phys, root, 255))
	require.Equal(t, vmTable|ptePresent, entryAt(phys, root, 511))

	mustMmap(t, as, 0, 5*PageSize, rw, anon)
	mustMmap(t, as, userTop-PageSize, PageSize, rw, fixed)
	_, err = as.Mmap(userTop, PageSize, rw, fixed)
	require.ErrorIs(t, err, unix.ENOMEM, "the VM's slot is not user space")
	_, err = as.CopyIn(make([]byte, 8), userTop)
	require.ErrorIs(t, err, unix.EFAULT)
	require.ErrorIs(t, as.Munmap(userTop, PageSize), unix.EINVAL)

	as.Release()
	require.Equal(t, baseline, phys.FramesInUse())
	require.Equal(t, "vm-owned", string(phys.Frame(vmTable)[:8]))
}

func TestNewAddressSpaceRejectsBadOptions(t *testing.T) {
	phys := newPhys(t, 1<<20)
	good := Options{UserTop: MaxUserTop, MmapBase: testMmapBase}
	bad := map[string]func(o *Options){
		"unaligned top":       func(o *Options) { o.UserTop-- },
		"top too high":        func(o *Options) { o.UserTop = 1 << 47 },
		"no room":             func(o *Options) { o.UserTop = minMapAddr },
		"base above top":      func(o *Options) { o.MmapBase = MaxUserTop + PageSize },
		"base below min":      func(o *Options) { o.MmapBase = 0 },
		"unaligned base":      func(o *Options) { o.MmapBase++ },
		"index out of range":  func(o *Options) { o.SharedPML4 = []PML4Entry{{Index: 512}} },
		"negative index":      func(o *Options) { o.SharedPML4 = []PML4Entry{{Index: -1}} },
		"index in user space": func(o *Options) { o.SharedPML4 = []PML4Entry{{Index: 255}} },
		"index twice":         func(o *Options) { o.SharedPML4 = []PML4Entry{{Index: 300}, {Index: 300}} },
	}
	for name, change := range bad {
		o := good
		change(&o)
		_, err := NewAddressSpace(phys, o)
		require.ErrorIs(t, err, unix.EINVAL, name)
	}
	require.Zero(t, phys.FramesInUse())
}
