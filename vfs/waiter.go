package vfs

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// AllEvents is the hint a file passes to Queue.Notify when it cannot say
// which events changed (an end opened or closed).
const AllEvents = ^uint32(0)

// A Waiter is told when the readiness of a file it is registered with may
// have changed. Make one with NewWaiter and pass it to File.EventRegister;
// every registration must be undone with File.EventUnregister.
type Waiter struct {
	fn         func(events uint32)
	q          *Queue
	prev, next *Waiter
}

// NewWaiter returns a waiter that calls fn with the events (unix.POLLIN,
// unix.POLLOUT, ...; AllEvents when unknown) that may have become ready.
// fn runs on the goroutine that changed the file, with the file's locks
// held: it must not block, and must not call into the file or register or
// unregister waiters of that file.
func NewWaiter(fn func(events uint32)) *Waiter {
	return &Waiter{fn: fn}
}

// NewChanWaiter returns a waiter that makes ch ready (a send that does not
// block, so ch should have room for one) on any event in mask, POLLERR and
// POLLHUP included.
func NewChanWaiter(ch chan<- struct{}, mask uint32) *Waiter {
	mask |= unix.POLLERR | unix.POLLHUP
	return NewWaiter(func(events uint32) {
		if events&mask == 0 {
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
}

// Queue is the list of waiters on a file's readiness, which the file
// notifies of every change. Its zero value is an empty queue; Notify on an
// empty queue costs one atomic load, so files notify without asking
// whether anyone listens.
type Queue struct {
	n    atomic.Int32
	mu   sync.Mutex
	head *Waiter
}

// EventRegister adds w to q. A waiter is on one queue at a time.
func (q *Queue) EventRegister(w *Waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.q != nil {
		panic("vfs: waiter registered twice")
	}
	w.q, w.prev, w.next = q, nil, q.head
	if q.head != nil {
		q.head.prev = w
	}
	q.head = w
	q.n.Add(1)
}

// EventUnregister removes w from q; once it returns, w is not called
// again. Removing a waiter that is not on q does nothing.
func (q *Queue) EventUnregister(w *Waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.q != q {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.q, w.prev, w.next = nil, nil, nil
	q.n.Add(-1)
}

// Notify tells every waiter that the events in events may have become
// ready.
func (q *Queue) Notify(events uint32) {
	if q.n.Load() == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for w := q.head; w != nil; w = w.next {
		w.fn(events)
	}
}

// EventRegister registers w for readiness changes of f. Files that are not
// Pollers never change (they are always ready), and w is never called.
func (f *File) EventRegister(w *Waiter) {
	if p, ok := f.impl.(Poller); ok && !f.isPath() {
		p.EventRegister(w)
	}
}

// EventUnregister undoes EventRegister.
func (f *File) EventUnregister(w *Waiter) {
	if p, ok := f.impl.(Poller); ok && !f.isPath() {
		p.EventUnregister(w)
	}
}

// CanPoll reports whether f's readiness can change, which epoll requires
// of the files it watches (Linux refuses regular files and directories
// with EPERM).
func (f *File) CanPoll() bool {
	_, ok := f.impl.(Poller)
	return ok && !f.isPath()
}
