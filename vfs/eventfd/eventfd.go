// Package eventfd implements eventfd(2) files: a 64-bit counter that
// writes add to and reads take.
package eventfd

import (
	"context"
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var _ vfs.Poller = (*eventFD)(nil)

// maxCount is the largest value the counter holds; a write that would
// pass it waits.
const maxCount = 1<<64 - 2

// Flags are the flags eventfd2 accepts.
const Flags = unix.EFD_SEMAPHORE | unix.EFD_NONBLOCK | unix.EFD_CLOEXEC

// eventFD is the file behind an eventfd.
type eventFD struct {
	semaphore bool

	mu    sync.Mutex
	count uint64
	// waiters are readers and writers blocked here, poll and epoll.
	waiters vfs.Queue
}

// New implements eventfd2(2): a file whose counter starts at initval.
// flags may hold EFD_SEMAPHORE and EFD_NONBLOCK, and EFD_CLOEXEC, which is
// the caller's (it belongs to the file descriptor); others are EINVAL.
func New(initval uint32, flags int) (*vfs.File, error) {
	if flags&^Flags != 0 {
		return nil, unix.EINVAL
	}
	e := &eventFD{semaphore: flags&unix.EFD_SEMAPHORE != 0, count: uint64(initval)}
	return vfs.NewFile(e, unix.O_RDWR|flags&unix.O_NONBLOCK), nil
}

// waitLocked releases e.mu until the counter changes in a way that may satisfy
// the caller (events) or ctx is done (EINTR). It never waits for a
// non-blocking file or a caller that must not wait.
func (e *eventFD) waitLocked(ctx context.Context, f *vfs.File, events uint32) error {
	if f.StatusFlags()&unix.O_NONBLOCK != 0 {
		return unix.EAGAIN
	}
	if vfs.MustNotWait(ctx) {
		return vfs.ErrWouldWait
	}
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, events)
	e.waiters.EventRegister(w)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.waiters.EventUnregister(w)
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return unix.EINTR
	}
}

// Read takes the counter (or one, for a semaphore) into dst, which must
// hold 8 bytes; it waits while the counter is zero.
func (e *eventFD) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	if len(dst) < 8 {
		return 0, unix.EINVAL
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.count == 0 {
		if err := e.waitLocked(ctx, f, unix.POLLIN); err != nil {
			return 0, err
		}
	}
	v := e.count
	if e.semaphore {
		v = 1
	}
	e.count -= v
	binary.LittleEndian.PutUint64(dst, v)
	e.waiters.Notify(unix.POLLOUT | unix.EPOLLWRNORM)
	return 8, nil
}

// Write adds the value in src, which must be 8 bytes, to the counter; it
// waits while the sum would pass the largest value the counter holds.
func (e *eventFD) Write(ctx context.Context, f *vfs.File, src []byte, _ int64) (int, error) {
	if len(src) != 8 {
		return 0, unix.EINVAL
	}
	v := binary.LittleEndian.Uint64(src)
	if v == 1<<64-1 {
		return 0, unix.EINVAL
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for maxCount-e.count < v {
		if err := e.waitLocked(ctx, f, unix.POLLOUT); err != nil {
			return 0, err
		}
	}
	e.count += v
	// Linux wakes waiters for a write of zero too: an edge for epoll.
	e.waiters.Notify(unix.POLLIN | unix.EPOLLRDNORM)
	return 8, nil
}

// Release implements vfs.FileImpl: an eventfd holds nothing outside
// itself.
func (e *eventFD) Release() {}

// Readiness implements vfs.Poller as Linux does: readable while the
// counter is not zero, writable while one more fits.
func (e *eventFD) Readiness(mask uint32) uint32 {
	e.mu.Lock()
	count := e.count
	e.mu.Unlock()
	var ev uint32
	if count > 0 {
		ev |= unix.POLLIN
	}
	if count < maxCount {
		ev |= unix.POLLOUT
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements vfs.Poller.
func (e *eventFD) EventRegister(w *vfs.Waiter) { e.waiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (e *eventFD) EventUnregister(w *vfs.Waiter) { e.waiters.EventUnregister(w) }

// AnonName implements vfs.AnonInode.
func (*eventFD) AnonName() string { return "[eventfd]" }

// Stat implements vfs.Stater.
func (*eventFD) Stat(context.Context) (unix.Statx_t, error) { return vfs.AnonStat(), nil }
