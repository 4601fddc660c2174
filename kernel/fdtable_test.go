package kernel

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/lock"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func newTestThreadGroup() *ThreadGroup {
	tg := &ThreadGroup{limits: defaultLimits(1 << 30)}
	tg.fs.creds = rootCreds()
	tg.fds = NewFDTable(tg, int(tg.limits[unix.RLIMIT_NOFILE].Cur))
	return tg
}

func placeholder() *vfs.File { return vfs.NewFile(nil, unix.O_PATH) }

func TestNoFileLimitBoundsDescriptors(t *testing.T) {
	tg := newTestThreadGroup()
	fds := tg.FDs()
	require.ErrorIs(t, fds.InstallAt(3000, placeholder(), false), unix.EBADF)

	// Raising the limit (hard limit included) lets descriptors go higher.
	require.NoError(t, tg.SetLimit(unix.RLIMIT_NOFILE, unix.Rlimit{Cur: 4096, Max: 4096}))
	require.Equal(t, 4096, fds.Limit())
	require.NoError(t, fds.InstallAt(3000, placeholder(), false))
	fd, err := fds.Install(placeholder(), 4095, false)
	require.NoError(t, err)
	require.Equal(t, int32(4095), fd)
	_, err = fds.Install(placeholder(), 4095, false)
	require.ErrorIs(t, err, unix.EMFILE)
	require.ErrorIs(t, tg.SetLimit(unix.RLIMIT_NOFILE, unix.Rlimit{Cur: 4096, Max: maxNoFile + 1}), unix.EPERM)

	// Lowering it keeps what is open and refuses new descriptors above it.
	require.NoError(t, tg.SetLimit(unix.RLIMIT_NOFILE, unix.Rlimit{Cur: 2, Max: 4096}))
	for range 2 {
		_, err := fds.Install(placeholder(), 0, false)
		require.NoError(t, err)
	}
	_, err = fds.Install(placeholder(), 0, false)
	require.ErrorIs(t, err, unix.EMFILE)
	f, err := fds.Get(3000)
	require.NoError(t, err)
	f.DecRef()
	require.ErrorIs(t, fds.InstallAt(2, placeholder(), false), unix.EBADF)
	fds.CloseAll()
}

func TestClosingADescriptorReleasesRecordLocks(t *testing.T) {
	ctx := context.Background()
	v, err := vfs.New(ctx, tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	fctx := &vfs.Context{Context: ctx, Creds: vfs.RootCredentials(), Root: v.Root(), Cwd: v.Root()}
	open := func() *vfs.File {
		f, err := v.OpenAt(fctx, nil, "/f", unix.O_RDWR|unix.O_CREAT, 0o644)
		require.NoError(t, err)
		return f
	}
	tg, other := newTestThreadGroup(), newTestThreadGroup()
	f := open()
	locks := v.Locks(f)
	r := lock.Range{Owner: tg, Start: 0, End: 9, Write: true}
	require.NoError(t, locks.SetRange(ctx, f.LockKey(), r, false))
	_, err = tg.FDs().Install(f, 0, false)
	require.NoError(t, err)
	fd, err := tg.FDs().Install(open(), 0, false)
	require.NoError(t, err)
	g := open()
	defer g.DecRef()
	_, found := locks.Conflict(g.LockKey(), other, 0, 0, false)
	require.True(t, found)
	// Closing another descriptor of the same file releases the lock.
	require.NoError(t, tg.FDs().Close(fd))
	_, found = locks.Conflict(g.LockKey(), other, 0, 0, false)
	require.False(t, found)

	// So does the process's exit.
	require.NoError(t, locks.SetRange(ctx, f.LockKey(), r, false))
	tg.FDs().CloseAll()
	_, found = locks.Conflict(g.LockKey(), other, 0, 0, false)
	require.False(t, found)
}
