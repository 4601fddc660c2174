package lock_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs/lock"
)

type owner struct{ name string }

func TestFlockSharedAndExclusive(t *testing.T) {
	tb := lock.NewTable()
	ctx := context.Background()
	a, b := &owner{"a"}, &owner{"b"}
	require.NoError(t, tb.Flock(ctx, "f", a, true, false))
	require.ErrorIs(t, tb.Flock(ctx, "f", b, false, false), unix.EWOULDBLOCK)
	require.NoError(t, tb.Flock(ctx, "other", b, true, false), "locks on another key do not conflict")
	require.NoError(t, tb.Flock(ctx, "f", a, false, false), "converted to shared")
	require.NoError(t, tb.Flock(ctx, "f", b, false, false))
	require.ErrorIs(t, tb.Flock(ctx, "f", b, true, false), unix.EWOULDBLOCK)
	// The failed conversion gave up b's shared lock, as on Linux.
	tb.Funlock("f", a)
	require.NoError(t, tb.Flock(ctx, "f", a, true, false))
}

func TestRecordLocksSplitAndMerge(t *testing.T) {
	tb := lock.NewTable()
	ctx := context.Background()
	p, q := &owner{"p"}, &owner{"q"}
	require.NoError(t, tb.SetRange(ctx, "f", lock.Range{Owner: p, PID: 7, Start: 0, End: 9, Write: true}, false))
	require.NoError(t, tb.SetRange(ctx, "f", lock.Range{Owner: p, PID: 7, Start: 10, End: 19, Write: true}, false))
	c, found := tb.Conflict("f", q, 15, 15, false)
	require.True(t, found)
	require.Equal(t, lock.Range{Owner: p, PID: 7, Start: 0, End: 19, Write: true}, c, "adjacent locks merge")
	_, found = tb.Conflict("f", p, 0, 100, true)
	require.False(t, found, "an owner's own locks never conflict")

	tb.Unlock("f", p, 5, 6)
	_, found = tb.Conflict("f", q, 5, 6, true)
	require.False(t, found)
	c, found = tb.Conflict("f", q, 0, math.MaxInt64, true)
	require.True(t, found)
	require.Equal(t, int64(0), c.Start)
	require.Equal(t, int64(4), c.End)
	require.ErrorIs(t, tb.SetRange(ctx, "f", lock.Range{Owner: q, Start: 4, End: 5}, false), unix.EAGAIN)
	require.NoError(t, tb.SetRange(ctx, "f", lock.Range{Owner: q, Start: 5, End: 6}, false))

	tb.Release("f", p)
	require.NoError(t, tb.SetRange(ctx, "f", lock.Range{Owner: q, Start: 0, End: math.MaxInt64, Write: true}, false))
}

func TestWaitEndsWhenTheLockGoes(t *testing.T) {
	tb := lock.NewTable()
	ctx := context.Background()
	a, b := &owner{"a"}, &owner{"b"}
	require.NoError(t, tb.SetRange(ctx, "f", lock.Range{Owner: a, End: 10, Write: true}, false))
	require.NoError(t, tb.Flock(ctx, "f", a, true, false))
	done := make(chan error, 2)
	go func() { done <- tb.SetRange(ctx, "f", lock.Range{Owner: b, End: 10, Write: true}, true) }()
	go func() { done <- tb.Flock(ctx, "f", b, true, true) }()
	select {
	case err := <-done:
		t.Fatalf("a wait ended while the locks were held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	tb.Release("f", a)
	require.NoError(t, <-done)
	require.NoError(t, <-done)
}

func TestWaitEndsWithEINTRWhenCancelled(t *testing.T) {
	tb := lock.NewTable()
	a, b := &owner{"a"}, &owner{"b"}
	require.NoError(t, tb.Flock(context.Background(), "f", a, true, false))
	require.NoError(t, tb.SetRange(context.Background(), "f", lock.Range{Owner: a, End: 10, Write: true}, false))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- tb.Flock(ctx, "f", b, false, true) }()
	go func() { done <- tb.SetRange(ctx, "f", lock.Range{Owner: b, End: 10}, true) }()
	cancel()
	require.ErrorIs(t, <-done, unix.EINTR)
	require.ErrorIs(t, <-done, unix.EINTR)
}

func TestTablesAreIndependent(t *testing.T) {
	ctx := context.Background()
	a, b := &owner{"a"}, &owner{"b"}
	t1, t2 := lock.NewTable(), lock.NewTable()
	require.NoError(t, t1.Flock(ctx, "f", a, true, false))
	require.NoError(t, t2.Flock(ctx, "f", b, true, false))
}
