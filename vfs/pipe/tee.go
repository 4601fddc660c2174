package pipe

import (
	"context"

	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// Of returns the pipe behind f, if f is a pipe end.
func Of(f *vfs.File) (*Pipe, bool) {
	e, ok := f.Impl().(*end)
	if !ok {
		return nil, false
	}
	return e.p, true
}

// Peek copies up to len(dst) buffered bytes of the pipe that f reads into
// dst without consuming them (tee(2)). Like a read it waits for data,
// unless nonblock, and returns 0 once the pipe is empty and has no
// writers.
func Peek(ctx context.Context, f *vfs.File, dst []byte, nonblock bool) (int, error) {
	e, ok := f.Impl().(*end)
	if !ok || !e.read {
		return 0, unix.EINVAL
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.count == 0 {
		if p.writers == 0 {
			return 0, nil
		}
		if nonblock || f.StatusFlags()&unix.O_NONBLOCK != 0 {
			return 0, unix.EAGAIN
		}
		if err := p.waitLocked(ctx); err != nil {
			return 0, err
		}
	}
	return p.peekLocked(dst), nil
}

// WriteNow writes as much of src as fits in the pipe that f writes
// without waiting; EAGAIN if nothing fits, EPIPE without readers.
func WriteNow(f *vfs.File, src []byte) (int, error) {
	e, ok := f.Impl().(*end)
	if !ok || !e.write {
		return 0, unix.EINVAL
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readers == 0 {
		return 0, unix.EPIPE
	}
	n := p.writeLocked(src)
	if n == 0 {
		return 0, unix.EAGAIN
	}
	p.notifyLocked(unix.POLLIN | unix.EPOLLRDNORM)
	return n, nil
}
