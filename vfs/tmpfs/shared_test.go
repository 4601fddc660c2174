package tmpfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

// fakePages hands out host pages and counts references, as the kernel's
// guest frames would.
type fakePages struct {
	pages map[uint64][]byte
	refs  map[uint64]int
	next  uint64
}

func (f *fakePages) Alloc() (uint64, []byte, error) {
	f.next++
	f.pages[f.next] = make([]byte, 4096)
	f.refs[f.next] = 1
	return f.next, f.pages[f.next], nil
}

func (f *fakePages) Unref(id uint64) { f.refs[id]-- }

func (f *fakePages) Mapped(id uint64) bool { return f.refs[id] > 1 }

func TestSharedPagesAreTheFilesBytes(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/shared", unix.O_RDWR|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(ctx, 2*4096))
	_, err = f.PWrite(ctx, []byte("before"), 4096+10)
	require.NoError(t, err)
	pages := &fakePages{pages: map[uint64][]byte{}, refs: map[uint64]int{}}
	sharer := f.Impl().(vfs.Sharer)
	ids, err := sharer.Share(ctx, 0, 2*4096, pages)
	require.NoError(t, err)
	require.Len(t, ids, 2)
	require.Equal(t, "before", string(pages.pages[ids[1]][10:16]), "sharing copies the page in")

	copy(pages.pages[ids[1]][20:], "via the mapping")
	buf := make([]byte, 15)
	_, err = f.PRead(ctx, buf, 4096+20)
	require.NoError(t, err)
	require.Equal(t, "via the mapping", string(buf), "reads see writes made through the pages")

	_, err = f.PWrite(ctx, []byte("by write"), 4096+40)
	require.NoError(t, err)
	require.Equal(t, "by write", string(pages.pages[ids[1]][40:48]), "writes reach the pages")

	again, err := sharer.Share(ctx, 4096, 4096, pages)
	require.NoError(t, err)
	require.Equal(t, ids[1:], again, "a page is shared once")

	_, err = sharer.Share(ctx, 0, 4096, &fakePages{pages: map[uint64][]byte{}, refs: map[uint64]int{}})
	require.ErrorIs(t, err, unix.ENODEV, "one sandbox's pages only")
	_, err = sharer.Share(ctx, 100, 4096, pages)
	require.ErrorIs(t, err, unix.EINVAL)

	require.NoError(t, f.Truncate(ctx, 4096+30))
	require.Equal(t, make([]byte, 4096-30), pages.pages[ids[1]][30:], "truncation zeroes the shared tail")

	require.NoError(t, v.UnlinkAt(ctx, nil, "/shared", 0))
	f.DecRef()
	require.Equal(t, map[uint64]int{ids[0]: 0, ids[1]: 0}, pages.refs, "the file drops its pages when it is gone")
}
