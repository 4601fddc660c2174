// Package pipe implements pipes: anonymous pipes (pipe2) and the pipes
// behind FIFOs of file systems.
package pipe

import (
	"context"
	"math/bits"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var _ vfs.Poller = (*end)(nil)

// DefaultCapacity is the number of bytes a new pipe buffers (Linux's
// default); F_SETPIPE_SZ changes it per pipe.
const DefaultCapacity = 64 << 10

// DefaultMaxSize is the default of /proc/sys/fs/pipe-max-size: the largest
// capacity a process without CAP_SYS_RESOURCE may give a pipe.
const DefaultMaxSize = 1 << 20

// pageSize is the unit of pipe capacities.
const pageSize = 4096

// AtomicMax is PIPE_BUF: writes of at most this many bytes are never
// interleaved with other writes.
const AtomicMax = 4096

// inodes numbers anonymous pipes for fstat.
var inodes atomic.Uint64

// Pipe is a byte stream with a bounded buffer, shared by its read and
// write ends.
type Pipe struct {
	ino uint64

	mu sync.Mutex
	// buf is the ring of queued bytes. It grows as data queues, up to
	// size, so that a large pipe costs memory only when it holds data,
	// as Linux allocates a pipe's pages on demand.
	buf     []byte
	head    int
	count   int
	size    int // capacity in bytes: a power of two number of pages
	readers int
	writers int
	// rOpens and wOpens count the opens of each side, so that a FIFO
	// open waiting for a partner sees one that came and went.
	rOpens, wOpens uint64
	// changed is closed and replaced whenever the state changes.
	changed chan struct{}
	// sleepers counts the readers and writers waiting for a change. A
	// caller that must not wait (the exitless worker) leaves a read or
	// write that would wake one to the caller's own thread: the woken
	// thread would otherwise wait for the core the worker keeps polling
	// on, which on a two-core host made a pipe ping-pong a third slower.
	sleepers int
	// waiters are told of readiness changes (poll, epoll) of both ends.
	waiters vfs.Queue
}

// NewFIFO returns a pipe for a file system's FIFO inode; ends are made by
// Open.
func NewFIFO() *Pipe {
	return &Pipe{ino: inodes.Add(1), size: DefaultCapacity, changed: make(chan struct{})}
}

// New implements pipe2(2): it returns the read and write ends. flags may
// hold O_NONBLOCK, which both ends get, and O_CLOEXEC, which is the
// caller's (it belongs to the file descriptors).
func New(flags int) (r, w *vfs.File, err error) {
	if flags&^(unix.O_NONBLOCK|unix.O_CLOEXEC) != 0 {
		return nil, nil, unix.EINVAL
	}
	p := NewFIFO()
	p.readers, p.writers, p.rOpens, p.wOpens = 1, 1, 1, 1
	nb := flags & unix.O_NONBLOCK
	r = vfs.NewFile(&end{p: p, read: true}, unix.O_RDONLY|nb)
	w = vfs.NewFile(&end{p: p, write: true}, unix.O_WRONLY|nb)
	return r, w, nil
}

// RoundSize is Linux's round_pipe_size: the capacity F_SETPIPE_SZ gives
// for a request of n bytes, a power of two number of pages, at least one;
// 0 when n is beyond the largest capacity Linux allows (2 GiB).
func RoundSize(n uint64) int {
	if n > 1<<31 {
		return 0
	}
	if n <= pageSize {
		return pageSize
	}
	return 1 << bits.Len64(n-1)
}

// Capacity returns the number of bytes the pipe buffers (F_GETPIPE_SZ).
func (p *Pipe) Capacity() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// Free returns the number of bytes a write could queue now.
func (p *Pipe) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size - p.count
}

// SetCapacity implements F_SETPIPE_SZ once the caller has rounded size
// with RoundSize and checked it against the limits: EBUSY if more bytes
// are queued than size holds.
func (p *Pipe) SetCapacity(size int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count > size {
		return unix.EBUSY
	}
	if len(p.buf) > size {
		p.relocateLocked(size)
	}
	p.size = size
	p.notifyLocked(unix.POLLOUT | unix.EPOLLWRNORM)
	return nil
}

// Immediate reports whether a read (or, with write, a write of n bytes)
// through an end with the nonblock flag would finish now without waiting
// and without waking a sleeper: what a caller that must not wait can do.
// The answer may be stale by the time the call runs, which then says so
// with vfs.ErrWouldWait.
func (p *Pipe) Immediate(write, nonblock bool, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if write {
		switch {
		case p.readers == 0:
			return true // EPIPE
		case p.size-p.count >= min(n, p.size):
			return p.sleepers == 0
		}
		return nonblock && p.count == p.size // EAGAIN
	}
	if p.count > 0 {
		return p.sleepers == 0
	}
	return p.writers == 0 || nonblock // end of file, or EAGAIN
}

// notifyLocked wakes the pipe's blocked readers and writers and tells its
// waiters that events may have become ready.
func (p *Pipe) notifyLocked(events uint32) {
	close(p.changed)
	p.changed = make(chan struct{})
	p.waiters.Notify(events)
}

// waitLocked releases p.mu until the pipe changes or ctx is cancelled
// (EINTR).
func (p *Pipe) waitLocked(ctx context.Context) error {
	ch := p.changed
	p.sleepers++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.sleepers--
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return unix.EINTR
	}
}

// Open implements open(2) of a FIFO: a reader waits for a writer and a
// writer for a reader unless O_NONBLOCK is set (a non-blocking writer
// without readers gets ENXIO); O_RDWR never waits.
func (p *Pipe) Open(ctx context.Context, flags int) (vfs.FileImpl, error) {
	return p.open(ctx, flags, true)
}

// open opens one more end of p. Only a FIFO's opens wait for a partner:
// Linux's fifo_open does not wait, nor refuse a lone writer, on a pipe
// reopened through /proc/<pid>/fd.
func (p *Pipe) open(ctx context.Context, flags int, fifo bool) (vfs.FileImpl, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	nonblock := flags&unix.O_NONBLOCK != 0
	wait := fifo && !nonblock
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		if p.writers == 0 && wait && vfs.MustNotWait(ctx) {
			return nil, vfs.ErrWouldWait
		}
		p.readers++
		p.rOpens++
		p.notifyLocked(vfs.AllEvents)
		for w := p.wOpens; p.writers == 0 && wait && p.wOpens == w; {
			if err := p.waitLocked(ctx); err != nil {
				p.readers--
				p.notifyLocked(vfs.AllEvents)
				return nil, err
			}
		}
		return &end{p: p, read: true}, nil
	case unix.O_WRONLY:
		if fifo && nonblock && p.readers == 0 {
			return nil, unix.ENXIO
		}
		if p.readers == 0 && wait && vfs.MustNotWait(ctx) {
			return nil, vfs.ErrWouldWait
		}
		p.writers++
		p.wOpens++
		p.notifyLocked(vfs.AllEvents)
		for r := p.rOpens; p.readers == 0 && wait && p.rOpens == r; {
			if err := p.waitLocked(ctx); err != nil {
				p.writers--
				p.notifyLocked(vfs.AllEvents)
				return nil, err
			}
		}
		return &end{p: p, write: true}, nil
	case unix.O_RDWR:
		p.readers++
		p.writers++
		p.rOpens++
		p.wOpens++
		p.notifyLocked(vfs.AllEvents)
		return &end{p: p, read: true, write: true}, nil
	}
	return nil, unix.EINVAL
}

// peekLocked copies up to len(dst) buffered bytes into dst, leaving
// them queued.
func (p *Pipe) peekLocked(dst []byte) int {
	n := min(len(dst), p.count)
	if n == 0 {
		return 0
	}
	first := min(n, len(p.buf)-p.head)
	copy(dst, p.buf[p.head:p.head+first])
	copy(dst[first:n], p.buf)
	return n
}

// readLocked moves up to len(dst) buffered bytes into dst.
func (p *Pipe) readLocked(dst []byte) int {
	n := p.peekLocked(dst)
	if n > 0 {
		p.head = (p.head + n) % len(p.buf)
		p.count -= n
	}
	return n
}

// relocateLocked moves the queued bytes to the start of a new ring of
// ring bytes, which must hold them.
func (p *Pipe) relocateLocked(ring int) {
	buf := make([]byte, ring)
	p.peekLocked(buf)
	p.buf, p.head = buf, 0
}

// writeLocked appends as much of src as fits.
func (p *Pipe) writeLocked(src []byte) int {
	n := min(len(src), p.size-p.count)
	if n == 0 {
		return 0
	}
	if want := p.count + n; len(p.buf) < want {
		p.relocateLocked(min(p.size, max(DefaultCapacity, 1<<bits.Len(uint(want-1)))))
	}
	tail := (p.head + p.count) % len(p.buf)
	first := min(n, len(p.buf)-tail)
	copy(p.buf[tail:], src[:first])
	copy(p.buf, src[first:n])
	p.count += n
	return n
}

// Reopen implements vfs.Reopener: opening /proc/<pid>/fd/N of a pipe
// adds an end to it, without waiting for a partner.
func (e *end) Reopen(ctx context.Context, flags int) (*vfs.File, error) {
	impl, err := e.p.open(ctx, flags, false)
	if err != nil {
		return nil, err
	}
	return vfs.NewFile(impl, flags), nil
}

// end is one end of a pipe (both for a FIFO opened O_RDWR).
type end struct {
	p           *Pipe
	read, write bool
	released    atomic.Bool
}

func (e *end) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.count > 0 {
			if p.sleepers > 0 && vfs.MustNotWait(ctx) {
				return 0, vfs.ErrWouldWait // see sleepers
			}
			n := p.readLocked(dst)
			p.notifyLocked(unix.POLLOUT | unix.EPOLLWRNORM)
			return n, nil
		}
		if p.writers == 0 {
			return 0, nil
		}
		if f.StatusFlags()&unix.O_NONBLOCK != 0 {
			return 0, unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			return 0, vfs.ErrWouldWait
		}
		if err := p.waitLocked(ctx); err != nil {
			return 0, err
		}
	}
}

func (e *end) Write(ctx context.Context, f *vfs.File, src []byte, _ int64) (int, error) {
	if len(src) == 0 {
		return 0, nil
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	// A caller that must not wait gets the write only if all of it fits
	// now, so that it never has to return a blocking write cut short.
	if vfs.MustNotWait(ctx) && f.StatusFlags()&unix.O_NONBLOCK == 0 && p.readers > 0 && p.size-p.count < len(src) {
		return 0, vfs.ErrWouldWait
	}
	if p.sleepers > 0 && vfs.MustNotWait(ctx) {
		return 0, vfs.ErrWouldWait // see sleepers
	}
	written := 0
	for {
		if p.readers == 0 {
			if written > 0 {
				return written, nil
			}
			return 0, unix.EPIPE
		}
		free := p.size - p.count
		if free > 0 && (len(src) > AtomicMax || free >= len(src)) {
			written += p.writeLocked(src[written:])
			p.notifyLocked(unix.POLLIN | unix.EPOLLRDNORM)
			if written == len(src) {
				return written, nil
			}
			continue
		}
		if f.StatusFlags()&unix.O_NONBLOCK != 0 {
			if written > 0 {
				return written, nil
			}
			return 0, unix.EAGAIN
		}
		if err := p.waitLocked(ctx); err != nil {
			if written > 0 {
				return written, nil
			}
			return 0, err
		}
	}
}

// Release closes the end; a pipe without readers and writers drops its
// data.
func (e *end) Release() {
	if e.released.Swap(true) {
		return
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.read {
		p.readers--
	}
	if e.write {
		p.writers--
	}
	if p.readers == 0 && p.writers == 0 {
		p.buf, p.head, p.count = nil, 0, 0
	}
	p.notifyLocked(vfs.AllEvents)
}

// Readiness reports POLLIN/POLLOUT, POLLHUP once all writers are gone,
// and POLLERR on a write end without readers.
func (e *end) Readiness(mask uint32) uint32 {
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var ev uint32
	if e.read {
		if p.count > 0 {
			ev |= unix.POLLIN | unix.EPOLLRDNORM
		}
		if p.writers == 0 && p.wOpens > 0 {
			ev |= unix.POLLHUP
		}
	}
	if e.write {
		if p.size-p.count >= AtomicMax {
			ev |= unix.POLLOUT | unix.EPOLLWRNORM
		}
		if p.readers == 0 {
			ev |= unix.POLLERR
		}
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements vfs.Poller: w hears of changes on either end,
// which it tells apart by their events.
func (e *end) EventRegister(w *vfs.Waiter) {
	e.p.waiters.EventRegister(w)
}

// EventUnregister implements vfs.Poller.
func (e *end) EventUnregister(w *vfs.Waiter) {
	e.p.waiters.EventUnregister(w)
}

// Queued implements FIONREAD.
func (e *end) Queued() int {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	return e.p.count
}

// Stat answers fstat on an anonymous pipe.
func (e *end) Stat(context.Context) (unix.Statx_t, error) {
	return unix.Statx_t{
		Mask:    unix.STATX_BASIC_STATS,
		Mode:    unix.S_IFIFO | 0o600,
		Nlink:   1,
		Ino:     e.p.ino,
		Blksize: AtomicMax,
	}, nil
}
