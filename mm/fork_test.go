package mm

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const sharedAnon = unix.MAP_SHARED | unix.MAP_ANONYMOUS | unix.MAP_FIXED

func gpaOf(t *testing.T, as *AddressSpace, va uint64) uint64 {
	t.Helper()
	gpa, _, ok := as.Translate(va)
	require.True(t, ok)
	return gpa
}

func mustFork(t *testing.T, as *AddressSpace) *AddressSpace {
	t.Helper()
	child, err := as.Fork()
	require.NoError(t, err)
	return child
}

// forkLayout maps, at area, a writable private page holding "private", a
// shared page holding "shared" and a read-only private page holding "text".
func forkLayout(t *testing.T, as *AddressSpace) {
	t.Helper()
	mustMmap(t, as, area, PageSize, rw, fixed)
	writeString(t, as, area, "private")
	mustMmap(t, as, area+PageSize, PageSize, rw, sharedAnon)
	writeString(t, as, area+PageSize, "shared")
	mustMmap(t, as, area+2*PageSize, PageSize, rw, fixed)
	writeString(t, as, area+2*PageSize, "text")
	require.NoError(t, as.Mprotect(area+2*PageSize, PageSize, unix.PROT_READ|unix.PROT_EXEC))
}

func TestForkCopiesWritablePrivatePages(t *testing.T) {
	as, _ := newTestSpace(t)
	defer as.Release()
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	writeString(t, as, area, "parent")
	as.TakeTLBFlush()

	child := mustFork(t, as)
	defer child.Release()
	require.False(t, as.TakeTLBFlush(), "fork changes no entry of the parent")
	require.NotEqual(t, gpaOf(t, as, area), gpaOf(t, child, area))
	require.Equal(t, "parent", readString(t, child, area, 6))
	require.Equal(t, as.Resident(), child.Resident())

	writeString(t, child, area, "child!")
	require.Equal(t, "parent", readString(t, as, area, 6))
	writeString(t, as, area+PageSize, "later")
	require.Equal(t, "\x00\x00\x00\x00\x00", readString(t, child, area+PageSize, 5))
}

func TestForkSharesMapSharedPages(t *testing.T) {
	as, phys := newTestSpace(t)
	defer as.Release()
	mustMmap(t, as, area, PageSize, rw, sharedAnon)
	child := mustFork(t, as)
	defer child.Release()

	require.Equal(t, gpaOf(t, as, area), gpaOf(t, child, area))
	require.Equal(t, uint32(2), phys.refCount(gpaOf(t, as, area)))
	writeString(t, as, area, "from parent")
	require.Equal(t, "from parent", readString(t, child, area, 11))
	writeString(t, child, area, "from child!")
	require.Equal(t, "from child!", readString(t, as, area, 11))
}

func TestForkSharesReadOnlyPrivatePagesUntilWritable(t *testing.T) {
	as, phys := newTestSpace(t)
	defer as.Release()
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	writeString(t, as, area, "text")
	writeString(t, as, area+PageSize, "guard")
	require.NoError(t, as.Mprotect(area, PageSize, unix.PROT_READ|unix.PROT_EXEC))
	require.NoError(t, as.Mprotect(area+PageSize, PageSize, unix.PROT_NONE))
	text := gpaOf(t, as, area)

	child := mustFork(t, as)
	defer child.Release()
	require.Equal(t, text, gpaOf(t, child, area))
	require.Equal(t, uint32(2), phys.refCount(text))
	require.Equal(t, as.Resident(), child.Resident())
	child.TakeTLBFlush()

	inUse := phys.FramesInUse()
	require.NoError(t, child.Mprotect(area, 2*PageSize, rw))
	require.Equal(t, inUse+2, phys.FramesInUse(), "both pages copied")
	require.True(t, child.TakeTLBFlush(), "a present entry changed frame")
	require.NotEqual(t, text, gpaOf(t, child, area))
	require.Equal(t, uint32(1), phys.refCount(text))
	require.Equal(t, "text", readString(t, child, area, 4))
	require.Equal(t, "guard", readString(t, child, area+PageSize, 5))
	require.Equal(t, as.Resident(), child.Resident())

	writeString(t, child, area, "TEXT")
	writeString(t, child, area+PageSize, "GUARD")
	require.Equal(t, "text", readString(t, as, area, 4))
	require.NoError(t, as.Mprotect(area, 2*PageSize, rw))
	require.Equal(t, text, gpaOf(t, as, area), "no longer shared, so not copied")
	require.Equal(t, "guard", readString(t, as, area+PageSize, 5))
}

func TestMprotectCopyFailsCleanlyWithoutMemory(t *testing.T) {
	phys := newPhys(t, 64*PageSize)
	as := newSpace(t, phys, 0)
	defer as.Release()
	mustMmap(t, as, area, PageSize, unix.PROT_READ, fixed)
	child := mustFork(t, as)
	defer child.Release()
	var filler []uint64
	for {
		f, err := phys.AllocFrame()
		if err != nil {
			break
		}
		filler = append(filler, f)
	}
	require.ErrorIs(t, child.Mprotect(area, PageSize, rw), unix.ENOMEM)
	require.Equal(t, unix.PROT_READ, child.Mappings()[0].Prot)
	require.Equal(t, gpaOf(t, as, area), gpaOf(t, child, area))
	phys.FreeFrames(filler)
	require.NoError(t, child.Mprotect(area, PageSize, rw))
	require.NotEqual(t, gpaOf(t, as, area), gpaOf(t, child, area))
}

func TestForkKeepsOptionsAreasAndBreak(t *testing.T) {
	phys := newPhys(t, 64<<20)
	shared := []PML4Entry{{Index: 511, Value: 0x1234_5000 | tableEntry}}
	as, err := NewAddressSpace(phys, Options{UserTop: MaxUserTop, MmapBase: testMmapBase, Limit: 1 << 20, SharedPML4: shared})
	require.NoError(t, err)
	defer as.Release()
	as.SetBrk(0x2000_0000)
	require.Equal(t, uint64(0x2000_3005), as.Brk(0x2000_3005))
	forkLayout(t, as)
	mustMmap(t, as, 0x3000_0000, 1<<30, unix.PROT_NONE, fixed|unix.MAP_NORESERVE)
	stack := mustMmap(t, as, 0, 4*PageSize, rw, anon|unix.MAP_GROWSDOWN|unix.MAP_STACK)
	as.SetName(stack, "[stack]")

	child := mustFork(t, as)
	defer child.Release()
	require.Equal(t, as.Mappings(), child.Mappings())
	require.Equal(t, as.Brk(0), child.Brk(0))
	require.Equal(t, shared[0].Value, entryAt(phys, child.Root(), 511))
	require.NotEqual(t, as.Root(), child.Root())

	parent, forked := readLayout(t, as, phys), readLayout(t, child, phys)
	require.Len(t, forked.tables, len(parent.tables), "no tables for pages without frames")
	require.Len(t, forked.leaves, len(parent.leaves))
	for va, e := range parent.leaves {
		require.Equal(t, e&^pteFrame, forked.leaves[va]&^pteFrame, "entry flags at %#x", va)
	}

	require.Equal(t, mustMmap(t, as, 0, PageSize, rw, anon), mustMmap(t, child, 0, PageSize, rw, anon), "same mmap base")
	_, err = child.Mmap(0, 1<<20, rw, anon)
	require.ErrorIs(t, err, unix.ENOMEM, "same limit")
	require.Equal(t, uint64(0x2000_5000), child.Brk(0x2000_5000))
	require.Equal(t, uint64(0x2000_3005), as.Brk(0), "brk is per process")
}

func TestForkFailsCleanlyWithoutMemory(t *testing.T) {
	phys := newPhys(t, 128*PageSize)
	baseline := phys.FramesInUse()
	as := newSpace(t, phys, 0)
	defer as.Release()
	mustMmap(t, as, area+3*PageSize, 7*PageSize, rw, fixed)
	forkLayout(t, as)
	inUse := phys.FramesInUse()
	// The child needs a root, three tables and eight copies.
	const needed = 12

	for spare := 0; spare <= needed; spare++ {
		var filler []uint64
		for {
			f, err := phys.AllocFrame()
			if err != nil {
				break
			}
			filler = append(filler, f)
		}
		phys.FreeFrames(filler[:spare])
		child, err := as.Fork()
		if spare < needed {
			require.ErrorIs(t, err, unix.ENOMEM, "with %d spare frames", spare)
			require.Nil(t, child)
		} else {
			require.NoError(t, err)
			child.Release()
		}
		phys.FreeFrames(filler[spare:])
		require.Equal(t, inUse, phys.FramesInUse(), "with %d spare frames", spare)
		require.Zero(t, phys.reserved, "no frame stays promised")
		require.Equal(t, uint32(1), phys.refCount(gpaOf(t, as, area+PageSize)))
		require.Equal(t, uint32(1), phys.refCount(gpaOf(t, as, area+2*PageSize)))
		checkInvariants(t, as, phys, baseline)
		require.Equal(t, "private", readString(t, as, area, 7))
	}
}

func TestForkFailsPastTheLimit(t *testing.T) {
	phys := newPhys(t, 64<<20)
	baseline := phys.FramesInUse()
	owned, err := phys.AllocFrame()
	require.NoError(t, err)
	as := newSpace(t, phys, 4*PageSize)
	defer as.Release()
	mustMmap(t, as, area, 4*PageSize, rw, fixed)
	// Frames given to MapFrames count as resident without being charged,
	// which takes the parent past its limit; the child's copies would too.
	require.NoError(t, as.MapFrames(area+8*PageSize, []uint64{owned}, unix.PROT_READ, 0, "[vvar]"))
	inUse := phys.FramesInUse()

	_, err = as.Fork()
	require.ErrorIs(t, err, unix.ENOMEM)
	require.Equal(t, inUse, phys.FramesInUse())
	require.Equal(t, uint32(2), phys.refCount(owned))

	require.NoError(t, as.Mprotect(area, 4*PageSize, unix.PROT_READ))
	child := mustFork(t, as)
	require.Equal(t, as.Resident(), child.Resident())
	child.Release()
	as.Release()
	phys.DecRef(owned)
	require.Equal(t, baseline, phys.FramesInUse())
}

func TestForkReleaseOrder(t *testing.T) {
	for _, parentFirst := range []bool{true, false} {
		t.Run(map[bool]string{true: "parent first", false: "child first"}[parentFirst], func(t *testing.T) {
			phys := newPhys(t, 64<<20)
			baseline := phys.FramesInUse()
			as := newSpace(t, phys, 0)
			forkLayout(t, as)
			child := mustFork(t, as)
			writeString(t, child, area, "child's")

			first, second := as, child
			if !parentFirst {
				first, second = child, as
			}
			first.Release()
			_, err := first.Fork()
			require.ErrorIs(t, err, unix.ENOMEM, "a released address space cannot fork")
			want := map[*AddressSpace]string{as: "private", child: "child's"}[second]
			require.Equal(t, want, readString(t, second, area, 7))
			require.Equal(t, "shared", readString(t, second, area+PageSize, 6))
			require.Equal(t, "text", readString(t, second, area+2*PageSize, 4))
			writeString(t, second, area+PageSize, "still writable")
			second.Release()
			require.Equal(t, baseline, phys.FramesInUse())
		})
	}
}

func TestForkOfAFork(t *testing.T) {
	phys := newPhys(t, 64<<20)
	baseline := phys.FramesInUse()
	as := newSpace(t, phys, 0)
	forkLayout(t, as)
	child := mustFork(t, as)
	writeString(t, child, area, "child's")
	grandchild := mustFork(t, child)
	require.Equal(t, "child's", readString(t, grandchild, area, 7))
	writeString(t, grandchild, area, "grandch")

	for as, want := range map[*AddressSpace]string{as: "private", child: "child's", grandchild: "grandch"} {
		require.Equal(t, want, readString(t, as, area, 7))
	}
	require.Equal(t, uint32(3), phys.refCount(gpaOf(t, as, area+PageSize)))
	require.Equal(t, uint32(3), phys.refCount(gpaOf(t, as, area+2*PageSize)))
	writeString(t, grandchild, area+PageSize, "all of us")
	require.Equal(t, "all of us", readString(t, as, area+PageSize, 9))

	child.Release()
	require.Equal(t, "all of us", readString(t, grandchild, area+PageSize, 9))
	as.Release()
	require.Equal(t, "text", readString(t, grandchild, area+2*PageSize, 4))
	grandchild.Release()
	require.Equal(t, baseline, phys.FramesInUse())
}

func TestForkWhileTheParentChanges(t *testing.T) {
	phys := newPhys(t, 64<<20)
	baseline := phys.FramesInUse()
	as := newSpace(t, phys, 0)
	forkLayout(t, as)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			at := uint64(area + 16*PageSize)
			if _, err := as.Mmap(at, 4*PageSize, rw, fixed); err != nil {
				panic(err)
			}
			if _, err := as.CopyOut(at, []byte{byte(i)}); err != nil {
				panic(err)
			}
			if err := as.Munmap(at, 4*PageSize); err != nil {
				panic(err)
			}
		}
	}()
	for range 50 {
		child := mustFork(t, as)
		require.Equal(t, "private", readString(t, child, area, 7))
		child.Release()
	}
	wg.Wait()
	as.Release()
	require.Equal(t, baseline, phys.FramesInUse())
}
