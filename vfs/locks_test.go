package vfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs/lock"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

func TestLocksGoWithTheLastReference(t *testing.T) {
	v, ctx := newVFS(t)
	writeFile(t, v, ctx, "/f", "data")
	f1, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	f2, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	defer f2.DecRef()
	locks := v.Locks(f1)
	require.Same(t, locks, v.Locks(f2), "two opens of one file share its locks")
	require.NoError(t, locks.Flock(ctx, f1.LockKey(), f1, true, false))
	f1.IncRef() // a dup holds the lock too
	f1.DecRef()
	require.ErrorIs(t, locks.Flock(ctx, f2.LockKey(), f2, true, false), unix.EWOULDBLOCK)
	f1.DecRef()
	require.NoError(t, locks.Flock(ctx, f2.LockKey(), f2, true, false))
}

func TestFilesWithoutAPathLockInTheSandboxTable(t *testing.T) {
	v, ctx := newVFS(t)
	other, otherCtx := newVFS(t)
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer w.DecRef()
	locks := v.Locks(r)
	require.Same(t, locks, other.Locks(r), "a file stays with the table it was first locked in")
	writeFile(t, other, otherCtx, "/g", "")
	g, err := other.OpenAt(otherCtx, nil, "/g", unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer g.DecRef()
	require.NotSame(t, locks, other.Locks(g), "every sandbox has its own table")
	require.NoError(t, locks.Flock(ctx, r.LockKey(), r, true, false))
	r.DecRef()
	require.NoError(t, locks.Flock(ctx, r.LockKey(), w, true, false), "the pipe end's lock went with it")
}

func TestClosingReleasesRecordLocks(t *testing.T) {
	v, ctx := newVFS(t)
	writeFile(t, v, ctx, "/f", "data")
	f1, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	defer f1.DecRef()
	f2, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	defer f2.DecRef()
	type process struct{ pid int }
	p, q := &process{1}, &process{2}
	locks := v.Locks(f1)
	require.NoError(t, locks.SetRange(ctx, f1.LockKey(), lockRange(p), false))
	require.ErrorIs(t, locks.SetRange(ctx, f1.LockKey(), lockRange(q), false), unix.EAGAIN)
	// Closing any descriptor of the file releases the process's locks.
	f2.ReleaseLocks(p)
	require.NoError(t, locks.SetRange(ctx, f1.LockKey(), lockRange(q), false))
}

func lockRange(owner any) lock.Range {
	return lock.Range{Owner: owner, Start: 0, End: 10, Write: true}
}
