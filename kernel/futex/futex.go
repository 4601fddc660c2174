// Package futex is the futex wait table: threads wait on a 32-bit guest
// word and others wake them, wake them selectively by bitset, or move them
// to another word. Keys are the guest-physical addresses of the words, so
// the threads of one process (one address space) and processes that map
// the same MAP_SHARED frame meet on the same key, whether the guest asked
// for a private futex or a shared one.
package futex

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// BitsetMatchAny is the bitset of FUTEX_WAIT and FUTEX_WAKE: it matches
// every waiter.
const BitsetMatchAny = 0xffff_ffff

// bucketBits sizes the hash table: waiters on different keys in one bucket
// only share its lock.
const bucketBits = 8

// Table holds the waiters of one sandbox. It is safe for concurrent use.
type Table struct {
	buckets [1 << bucketBits]bucket
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{} }

// bucket is a FIFO list of waiters whose keys hash alike.
type bucket struct {
	mu         sync.Mutex
	head, tail *waiter
}

// waiter is one blocked Wait. Its list links, key and queued flag belong
// to the lock of the bucket it is in; Requeue moves it between buckets
// holding both locks.
type waiter struct {
	key        uint64
	bitset     uint32
	queued     bool
	prev, next *waiter
	// in is the bucket the waiter is queued in.
	in atomic.Pointer[bucket]
	// woken receives one value when a waker dequeues the waiter; it is
	// buffered so that the waker never blocks.
	woken chan struct{}
}

// waiters recycles waiters: a futex wait is a hot path of every
// multithreaded program. One goes back only with its channel empty.
var waiters = sync.Pool{New: func() any { return &waiter{woken: make(chan struct{}, 1)} }}

// hash is the index of key's bucket. Fibonacci hashing of the word index
// spreads neighbouring words.
func hash(key uint64) uint64 { return (key >> 2) * 0x9e37_79b9_7f4a_7c15 >> (64 - bucketBits) }

func (t *Table) bucket(key uint64) *bucket { return &t.buckets[hash(key)] }

func (b *bucket) push(w *waiter) {
	w.prev, w.next = b.tail, nil
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
	w.in.Store(b)
	w.queued = true
}

func (b *bucket) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.prev, w.next = nil, nil
	w.queued = false
}

// wake dequeues w and lets its Wait return.
func (b *bucket) wake(w *waiter) {
	b.remove(w)
	w.woken <- struct{}{}
}

// wakeMatching wakes up to n waiters on key whose bitset shares a bit
// with bitset, oldest first.
func (b *bucket) wakeMatching(key uint64, n int, bitset uint32) int {
	woken := 0
	for w := b.head; w != nil && woken < n; {
		next := w.next
		if w.key == key && w.bitset&bitset != 0 {
			b.wake(w)
			woken++
		}
		w = next
	}
	return woken
}

// lockPair locks the buckets of two keys, lower index first so that two
// calls locking the same pair cannot deadlock, and returns them.
func (t *Table) lockPair(key1, key2 uint64) (*bucket, *bucket) {
	i1, i2 := hash(key1), hash(key2)
	b1, b2 := &t.buckets[i1], &t.buckets[i2]
	switch {
	case i1 == i2:
		b1.mu.Lock()
	case i1 < i2:
		b1.mu.Lock()
		b2.mu.Lock()
	default:
		b2.mu.Lock()
		b1.mu.Lock()
	}
	return b1, b2
}

func unlockPair(b1, b2 *bucket) {
	b1.mu.Unlock()
	if b2 != b1 {
		b2.mu.Unlock()
	}
}

// Wait blocks the caller on key. It first calls check under the bucket's
// lock, so that no Wake on key can pass between the check and the wait:
// check loads the futex word and returns unix.EAGAIN if it no longer holds
// the expected value, and Wait returns check's error without waiting.
// Otherwise Wait returns nil once a Wake or WakeOp whose bitset shares a
// bit with bitset (or a Requeue) wakes it, unix.ETIMEDOUT once deadline
// passes (a zero deadline never does), or unix.EINTR once ctx is done. A
// wake that races with the timeout or the cancellation wins: the waker
// counted it.
func (t *Table) Wait(ctx context.Context, key uint64, check func() error, bitset uint32, deadline time.Time) error {
	w := waiters.Get().(*waiter)
	defer waiters.Put(w)
	w.key, w.bitset = key, bitset
	b := t.bucket(key)
	b.mu.Lock()
	if err := check(); err != nil {
		b.mu.Unlock()
		return err
	}
	b.push(w)
	b.mu.Unlock()

	var expired <-chan time.Time
	if !deadline.IsZero() {
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		expired = timer.C
	}
	var err error
	select {
	case <-w.woken:
		return nil
	case <-expired:
		err = unix.ETIMEDOUT
	case <-ctx.Done():
		err = unix.EINTR
	}
	if !w.dequeue() {
		// A waker took it off the queue first and has sent, or is about
		// to send under the lock we just took, its wake-up.
		<-w.woken
		return nil
	}
	return err
}

// dequeue takes a waiter that gave up off its bucket's queue. It reports
// false if a waker already did.
func (w *waiter) dequeue() bool {
	for {
		b := w.in.Load()
		b.mu.Lock()
		// Requeue may have moved w while we waited for the lock; it moves
		// waiters holding both locks, so w stays put once we hold its
		// bucket's.
		if w.in.Load() != b {
			b.mu.Unlock()
			continue
		}
		queued := w.queued
		if queued {
			b.remove(w)
		}
		b.mu.Unlock()
		return queued
	}
}

// Wake wakes up to n waiters on key whose bitset shares a bit with
// bitset, oldest first, and returns how many it woke.
func (t *Table) Wake(key uint64, n int, bitset uint32) int {
	b := t.bucket(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wakeMatching(key, n, bitset)
}

// Requeue wakes up to nWake waiters on key, then moves up to nRequeue of
// the rest to key2, whatever their bitsets, and returns how many it woke
// and moved together. check, if not nil, runs first with both buckets
// locked, and its error (unix.EAGAIN when the word changed, for
// FUTEX_CMP_REQUEUE) ends the call before anything happens. Negative
// counts fail with unix.EINVAL.
func (t *Table) Requeue(key, key2 uint64, nWake, nRequeue int, check func() error) (int, error) {
	if nWake < 0 || nRequeue < 0 {
		return 0, unix.EINVAL
	}
	b1, b2 := t.lockPair(key, key2)
	defer unlockPair(b1, b2)
	if check != nil {
		if err := check(); err != nil {
			return 0, err
		}
	}
	done := 0
	for w := b1.head; w != nil && done-nWake < nRequeue; {
		next := w.next
		if w.key != key {
			w = next
			continue
		}
		done++
		switch {
		case done <= nWake:
			b1.wake(w)
		case b1 == b2:
			// Same queue: the waiter keeps its place, as on Linux.
			w.key = key2
		default:
			b1.remove(w)
			w.key = key2
			b2.push(w)
		}
		w = next
	}
	return done, nil
}

// WakeOp runs op with the buckets of both keys locked; op changes the
// second futex word atomically and reports whether the old value passed
// the comparison FUTEX_WAKE_OP encodes. WakeOp then wakes up to n1
// waiters on key1 and, if the comparison held, up to n2 on key2, whatever
// their bitsets, and returns how many it woke. An error from op ends the
// call before anyone is woken.
func (t *Table) WakeOp(key1, key2 uint64, n1, n2 int, op func() (bool, error)) (int, error) {
	b1, b2 := t.lockPair(key1, key2)
	defer unlockPair(b1, b2)
	cond, err := op()
	if err != nil {
		return 0, err
	}
	woken := b1.wakeMatching(key1, n1, BitsetMatchAny)
	if cond {
		woken += b2.wakeMatching(key2, n2, BitsetMatchAny)
	}
	return woken, nil
}
