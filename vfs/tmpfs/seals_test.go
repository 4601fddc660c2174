package tmpfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func TestTmpfsFilesAreNotSealable(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	defer f.DecRef()
	s := f.Impl().(vfs.Sealer)
	require.Equal(t, uint32(unix.F_SEAL_SEAL), s.Seals())
	require.ErrorIs(t, s.AddSeals(unix.F_SEAL_WRITE), unix.EPERM)
	_, ok := f.Impl().(vfs.Namer).ProcName()
	require.False(t, ok)
}

func TestMemfdSeals(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/m", unix.O_RDWR|unix.O_CREAT, 0o777)
	require.NoError(t, err)
	defer f.DecRef()
	require.NoError(t, tmpfs.MakeMemfd(f, "name", 0))
	name, ok := f.Impl().(vfs.Namer).ProcName()
	require.True(t, ok)
	require.Equal(t, "/memfd:name (deleted)", name)
	s := f.Impl().(vfs.Sealer)
	_, err = f.Write(ctx, []byte("0123456789"))
	require.NoError(t, err)

	// A shared mapping keeps F_SEAL_WRITE out until it goes.
	pages := &fakePages{pages: map[uint64][]byte{}, refs: map[uint64]int{}}
	ids, err := f.Impl().(vfs.Sharer).Share(ctx, 0, 4096, pages)
	require.NoError(t, err)
	pages.refs[ids[0]]++
	require.ErrorIs(t, s.AddSeals(unix.F_SEAL_WRITE), unix.EBUSY)
	require.NoError(t, s.AddSeals(unix.F_SEAL_FUTURE_WRITE))
	pages.refs[ids[0]]--
	require.NoError(t, s.AddSeals(unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK))
	_, err = f.PWrite(ctx, []byte("x"), 0)
	require.ErrorIs(t, err, unix.EPERM)
	n, err := f.PWrite(ctx, nil, 0)
	require.NoError(t, err)
	require.Zero(t, n)
	require.ErrorIs(t, f.Truncate(ctx, 5), unix.EPERM)
	require.NoError(t, f.Truncate(ctx, 20))

	require.NoError(t, s.AddSeals(unix.F_SEAL_GROW|unix.F_SEAL_SEAL))
	require.ErrorIs(t, f.Truncate(ctx, 30), unix.EPERM)
	require.ErrorIs(t, f.Allocate(ctx, unix.FALLOC_FL_KEEP_SIZE, 0, 21), unix.EPERM)
	require.NoError(t, f.Allocate(ctx, 0, 0, 20))
	require.ErrorIs(t, s.AddSeals(unix.F_SEAL_EXEC), unix.EPERM)
	require.Equal(t, uint32(unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE), s.Seals())
}

func TestSealExecMakesAnExecutableFileReadOnly(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/m", unix.O_RDWR|unix.O_CREAT, 0o755)
	require.NoError(t, err)
	defer f.DecRef()
	require.NoError(t, tmpfs.MakeMemfd(f, "", 0))
	s := f.Impl().(vfs.Sealer)
	require.NoError(t, s.AddSeals(unix.F_SEAL_EXEC))
	require.Equal(t, uint32(unix.F_SEAL_EXEC|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE), s.Seals())
	_, err = f.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, unix.EPERM)
}
