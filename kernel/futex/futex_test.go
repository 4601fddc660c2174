package futex

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const (
	keyA = 0x10_0000
	keyB = 0x20_0040
)

func ok() error { return nil }

// queued counts the waiters queued on key.
func (t *Table) queued(key uint64) int {
	b := t.bucket(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for w := b.head; w != nil; w = w.next {
		if w.key == key {
			n++
		}
	}
	return n
}

// empty reports whether no waiter is queued anywhere.
func (t *Table) empty() bool {
	for i := range t.buckets {
		b := &t.buckets[i]
		b.mu.Lock()
		head := b.head
		b.mu.Unlock()
		if head != nil {
			return false
		}
	}
	return true
}

// result is how one background Wait ended.
type result struct {
	id  int
	err error
}

// startWaiters starts one Wait per bitset on key, in order, each queued
// before the next starts, and returns where they report.
func startWaiters(t *testing.T, tbl *Table, key uint64, bitsets ...uint32) chan result {
	t.Helper()
	done := make(chan result, len(bitsets))
	for i, bs := range bitsets {
		before := tbl.queued(key)
		go func() {
			done <- result{i, tbl.Wait(context.Background(), key, ok, bs, time.Time{})}
		}()
		require.Eventually(t, func() bool { return tbl.queued(key) == before+1 }, 5*time.Second, time.Millisecond)
	}
	return done
}

// woken collects n results and returns the ids, all of which must be nil
// errors.
func woken(t *testing.T, done chan result, n int) []int {
	t.Helper()
	var ids []int
	for range n {
		select {
		case r := <-done:
			require.NoError(t, r.err)
			ids = append(ids, r.id)
		case <-time.After(5 * time.Second):
			t.Fatal("a woken waiter did not return")
		}
	}
	return ids
}

func requireNoneReturns(t *testing.T, done chan result) {
	t.Helper()
	select {
	case r := <-done:
		t.Fatalf("waiter %d returned %v without a wake", r.id, r.err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestWakeWakesWaitersOldestFirst(t *testing.T) {
	tbl := NewTable()
	require.Zero(t, tbl.Wake(keyA, 1, BitsetMatchAny), "nobody waits")
	done := startWaiters(t, tbl, keyA, BitsetMatchAny, BitsetMatchAny, BitsetMatchAny)
	require.Zero(t, tbl.Wake(keyB, 10, BitsetMatchAny), "another key")
	require.Zero(t, tbl.Wake(keyA, 0, BitsetMatchAny))
	requireNoneReturns(t, done)

	require.Equal(t, 2, tbl.Wake(keyA, 2, BitsetMatchAny))
	require.ElementsMatch(t, []int{0, 1}, woken(t, done, 2))
	require.Equal(t, 1, tbl.queued(keyA))
	require.Equal(t, 1, tbl.Wake(keyA, 5, BitsetMatchAny))
	require.Equal(t, []int{2}, woken(t, done, 1))
	require.True(t, tbl.empty())
}

func TestWaitChecksTheWordUnderTheLock(t *testing.T) {
	tbl := NewTable()
	calls := 0
	err := tbl.Wait(context.Background(), keyA, func() error {
		calls++
		require.False(t, tbl.bucket(keyA).mu.TryLock(), "check runs with the bucket locked")
		return unix.EAGAIN
	}, BitsetMatchAny, time.Time{})
	require.ErrorIs(t, err, unix.EAGAIN)
	require.Equal(t, 1, calls)
	require.True(t, tbl.empty())
}

// TestNoWakeIsLostBetweenCheckAndSleep is the futex guarantee: a waker
// that changes the word and then wakes either makes the check fail or
// finds the waiter queued.
func TestNoWakeIsLostBetweenCheckAndSleep(t *testing.T) {
	tbl := NewTable()
	for range 2000 {
		var word atomic.Uint32
		done := make(chan error, 1)
		go func() {
			done <- tbl.Wait(context.Background(), keyA, func() error {
				if word.Load() != 0 {
					return unix.EAGAIN
				}
				return nil
			}, BitsetMatchAny, time.Time{})
		}()
		word.Store(1)
		tbl.Wake(keyA, 1, BitsetMatchAny)
		select {
		case err := <-done:
			if err != nil {
				require.ErrorIs(t, err, unix.EAGAIN)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the wake was lost")
		}
	}
	require.True(t, tbl.empty())
}

func TestBitsetsSelectWaiters(t *testing.T) {
	tbl := NewTable()
	done := startWaiters(t, tbl, keyA, 0b001, 0b010, 0b011, 0b100)
	require.Zero(t, tbl.Wake(keyA, 10, 0b1000))
	require.Equal(t, 1, tbl.Wake(keyA, 1, 0b010), "the oldest that matches")
	require.Equal(t, []int{1}, woken(t, done, 1))
	require.Equal(t, 2, tbl.Wake(keyA, 10, 0b001))
	require.ElementsMatch(t, []int{0, 2}, woken(t, done, 2))
	requireNoneReturns(t, done)
	require.Equal(t, 1, tbl.Wake(keyA, 10, BitsetMatchAny))
	require.Equal(t, []int{3}, woken(t, done, 1))
}

func TestRequeueMovesWaiters(t *testing.T) {
	tbl := NewTable()
	done := startWaiters(t, tbl, keyA, 1, 2, 4, 8, 16)
	n, err := tbl.Requeue(keyA, keyB, 1, 2, nil)
	require.NoError(t, err)
	require.Equal(t, 3, n, "one woken and two moved")
	require.Equal(t, []int{0}, woken(t, done, 1))
	require.Equal(t, 2, tbl.queued(keyA))
	require.Equal(t, 2, tbl.queued(keyB))

	require.Zero(t, tbl.Wake(keyA, 10, 2|4), "the moved waiters left keyA")
	require.Equal(t, 2, tbl.Wake(keyB, 10, 2|4), "and kept their bitsets")
	require.ElementsMatch(t, []int{1, 2}, woken(t, done, 2))

	n, err = tbl.Requeue(keyA, keyB, 0, 0, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = tbl.Requeue(keyA, keyB, 0, 10, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, 2, tbl.Wake(keyB, 10, BitsetMatchAny))
	require.ElementsMatch(t, []int{3, 4}, woken(t, done, 2))
	require.True(t, tbl.empty())
}

// sameBucket returns a key other than key that hashes to its bucket.
func sameBucket(key uint64) uint64 {
	for other := key + 4; ; other += 4 {
		if hash(other) == hash(key) {
			return other
		}
	}
}

func TestRequeueWithinOneBucket(t *testing.T) {
	tbl := NewTable()
	key2 := sameBucket(keyA)
	done := startWaiters(t, tbl, keyA, 1, 1, 1)
	n, err := tbl.Requeue(keyA, key2, 0, 2, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, 1, tbl.queued(keyA))
	require.Equal(t, 2, tbl.queued(key2))
	require.Equal(t, 2, tbl.Wake(key2, 10, 1))
	require.ElementsMatch(t, []int{0, 1}, woken(t, done, 2))

	n, err = tbl.Requeue(keyA, keyA, 0, 5, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n, "requeueing onto the same key counts")
	require.Equal(t, 1, tbl.Wake(keyA, 1, 1))
	require.Equal(t, []int{2}, woken(t, done, 1))
}

func TestCmpRequeueChecksFirst(t *testing.T) {
	tbl := NewTable()
	done := startWaiters(t, tbl, keyA, 1, 1)
	n, err := tbl.Requeue(keyA, keyB, 1, 1, func() error {
		require.False(t, tbl.bucket(keyA).mu.TryLock())
		require.False(t, tbl.bucket(keyB).mu.TryLock())
		return unix.EAGAIN
	})
	require.ErrorIs(t, err, unix.EAGAIN)
	require.Zero(t, n)
	requireNoneReturns(t, done)
	require.Equal(t, 2, tbl.queued(keyA))

	_, err = tbl.Requeue(keyA, keyB, -1, 1, nil)
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = tbl.Requeue(keyA, keyB, 1, -1, nil)
	require.ErrorIs(t, err, unix.EINVAL)

	n, err = tbl.Requeue(keyA, keyB, 1, 1, ok)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []int{0}, woken(t, done, 1))
	require.Equal(t, 1, tbl.Wake(keyB, 1, 1))
	require.Equal(t, []int{1}, woken(t, done, 1))
}

func TestWakeOp(t *testing.T) {
	tbl := NewTable()
	done := startWaiters(t, tbl, keyA, 1, 2, 4)
	doneB := startWaiters(t, tbl, keyB, 1, 2, 4)

	n, err := tbl.WakeOp(keyA, keyB, 1, 1, func() (bool, error) {
		require.False(t, tbl.bucket(keyA).mu.TryLock())
		require.False(t, tbl.bucket(keyB).mu.TryLock())
		return false, unix.ENOSYS
	})
	require.ErrorIs(t, err, unix.ENOSYS)
	require.Zero(t, n)
	requireNoneReturns(t, done)
	requireNoneReturns(t, doneB)

	n, err = tbl.WakeOp(keyA, keyB, 1, 1, func() (bool, error) { return false, nil })
	require.NoError(t, err)
	require.Equal(t, 1, n, "the comparison failed: keyA only")
	require.Equal(t, []int{0}, woken(t, done, 1))
	requireNoneReturns(t, doneB)

	n, err = tbl.WakeOp(keyA, keyB, 1, 2, func() (bool, error) { return true, nil })
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []int{1}, woken(t, done, 1))
	require.ElementsMatch(t, []int{0, 1}, woken(t, doneB, 2))

	n, err = tbl.WakeOp(keyB, keyB, 1, 1, func() (bool, error) { return true, nil })
	require.NoError(t, err)
	require.Equal(t, 1, n, "the same key: one waiter left to wake")
	require.Equal(t, []int{2}, woken(t, doneB, 1))
	require.Equal(t, 1, tbl.Wake(keyA, 1, BitsetMatchAny))
	require.Equal(t, []int{2}, woken(t, done, 1))
	require.True(t, tbl.empty())
}

func TestWaitTimesOut(t *testing.T) {
	tbl := NewTable()
	start := time.Now()
	err := tbl.Wait(context.Background(), keyA, ok, BitsetMatchAny, start.Add(10*time.Millisecond))
	require.ErrorIs(t, err, unix.ETIMEDOUT)
	require.GreaterOrEqual(t, time.Since(start), 10*time.Millisecond)
	require.True(t, tbl.empty(), "a timed-out waiter leaves the queue")

	err = tbl.Wait(context.Background(), keyA, ok, BitsetMatchAny, start.Add(-time.Hour))
	require.ErrorIs(t, err, unix.ETIMEDOUT, "a deadline in the past")
	err = tbl.Wait(context.Background(), keyA, func() error { return unix.EAGAIN }, BitsetMatchAny, start.Add(-time.Hour))
	require.ErrorIs(t, err, unix.EAGAIN, "the check comes first")
	require.True(t, tbl.empty())
}

func TestWaitIsCancelled(t *testing.T) {
	tbl := NewTable()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tbl.Wait(ctx, keyA, ok, BitsetMatchAny, time.Now().Add(time.Hour)) }()
	require.Eventually(t, func() bool { return tbl.queued(keyA) == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, unix.EINTR)
	require.True(t, tbl.empty(), "a cancelled waiter leaves the queue")
	require.Zero(t, tbl.Wake(keyA, 1, BitsetMatchAny))

	require.ErrorIs(t, tbl.Wait(ctx, keyA, ok, BitsetMatchAny, time.Time{}), unix.EINTR, "already cancelled")
	require.True(t, tbl.empty())
}

// TestWakeRacingWithTimeoutIsNotLost races wakes against deadlines and
// cancellations: every wake a waker counts must reach a waiter as success.
func TestWakeRacingWithTimeoutIsNotLost(t *testing.T) {
	tbl := NewTable()
	const rounds = 2000
	var wakes, successes atomic.Int64
	var wg sync.WaitGroup
	for i := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		key := uint64(keyA + 4*(i%8))
		wg.Add(2)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(time.Duration(i%50) * time.Microsecond)
			switch err := tbl.Wait(ctx, key, ok, BitsetMatchAny, deadline); err {
			case nil:
				successes.Add(1)
			case unix.ETIMEDOUT, unix.EINTR:
			default:
				t.Errorf("Wait: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%40) * time.Microsecond)
			if i%3 == 0 {
				cancel()
			}
			wakes.Add(int64(tbl.Wake(key, 1, BitsetMatchAny)))
			cancel()
		}()
	}
	wg.Wait()
	require.Equal(t, wakes.Load(), successes.Load())
	require.True(t, tbl.empty())
}

// TestRequeueRacingWithTimeout moves waiters between two keys while they
// time out: each must find the bucket it is in to leave.
func TestRequeueRacingWithTimeout(t *testing.T) {
	tbl := NewTable()
	stop := make(chan struct{})
	var mover sync.WaitGroup
	var moved atomic.Int64
	mover.Add(1)
	go func() {
		defer mover.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, _ := tbl.Requeue(keyA, keyB, 0, 1<<30, nil)
			m, _ := tbl.Requeue(keyB, keyA, 0, 1<<30, nil)
			moved.Add(int64(n + m))
		}
	}()
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := tbl.Wait(context.Background(), keyA, ok, BitsetMatchAny, time.Now().Add(time.Duration(i%20)*100*time.Microsecond))
			if err != unix.ETIMEDOUT {
				t.Errorf("Wait: %v", err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	mover.Wait()
	require.Positive(t, moved.Load())
	require.True(t, tbl.empty())
}
