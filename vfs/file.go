package vfs

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs/lock"
)

// OLargefile is the kernel's O_LARGEFILE on x86-64. Linux sets it on
// every file a 64-bit process opens with open(2), openat(2) or
// openat2(2) (O_PATH files excepted) and on memfds, and reports it in
// F_GETFL; pipes, sockets and other anonymous files go without it.
// x/sys/unix defines the user-space value, which is 0 there.
const OLargefile = 0x8000

// setflMask is the set of status flags that F_SETFL may change.
const setflMask = unix.O_APPEND | unix.O_NONBLOCK | unix.O_DIRECT | unix.O_NOATIME | unix.O_ASYNC

// statusMask is the set of flags that stay in a file's status flags
// after open (F_GETFL).
const statusMask = unix.O_ACCMODE | setflMask | unix.O_DSYNC | unix.O_SYNC | unix.O_PATH | OLargefile

// File is an open file description: what dup and fork share. Its offset
// and status flags are shared by every file descriptor that refers to it.
// A new File holds one reference.
type File struct {
	refs  atomic.Int64
	flags atomic.Uint32
	impl  FileImpl // nil for O_PATH files
	vd    VirtualDentry
	// locks is the lock table of a file reached through no path, set
	// when it is first locked (see VFS.Locks).
	locks atomic.Pointer[lock.Table]

	mu  sync.Mutex // serializes offset updates
	off int64

	// onRelease are the functions to run when the last reference goes
	// (OnRelease); epoll uses them to drop its watches of the file.
	hooksMu   sync.Mutex
	onRelease []*func()

	// async is the file's owner, signal, O_ASYNC registration and dnotify
	// watches (fasync.go).
	async asyncState
}

// NewFile wraps impl in a File with the given open(2) flags: the access
// mode and status flags, OLargefile among them where Linux would set it;
// creation flags are dropped. It is how packages outside the VFS (the
// kernel's stdio, sockets, pipes) make files.
func NewFile(impl FileImpl, flags int) *File {
	f := &File{impl: impl}
	f.flags.Store(uint32(flags & statusMask))
	f.refs.Store(1)
	return f
}

// IncRef adds a reference (dup, fork, SCM_RIGHTS).
func (f *File) IncRef() {
	f.refs.Add(1)
}

// Refs returns the number of references to f; the Unix socket garbage
// collector compares it with the references messages in flight hold.
func (f *File) Refs() int64 {
	return f.refs.Load()
}

// DecRef drops a reference (close); the last one releases the locks the
// file owns (flock and OFD locks) and the file.
func (f *File) DecRef() {
	if f.refs.Add(-1) != 0 {
		return
	}
	f.hooksMu.Lock()
	hooks := f.onRelease
	f.onRelease = nil
	f.hooksMu.Unlock()
	for _, fn := range hooks {
		(*fn)()
	}
	if t := f.lockTable(); t != nil {
		t.Release(f.LockKey(), f)
	}
	f.releaseAsync()
	if f.vd.d != nil {
		f.closed()
	}
	if f.impl != nil {
		f.impl.Release()
	}
}

// OnRelease arranges for fn to run when f loses its last reference, before
// its implementation is released, unless cancel is called first. fn runs
// on the goroutine that drops that reference, which may hold locks of its
// own: fn must only take locks that are never held while a File's
// reference is dropped. The caller must hold a reference to f.
func (f *File) OnRelease(fn func()) (cancel func()) {
	h := &fn
	f.hooksMu.Lock()
	f.onRelease = append(f.onRelease, h)
	f.hooksMu.Unlock()
	return func() {
		f.hooksMu.Lock()
		defer f.hooksMu.Unlock()
		for i, g := range f.onRelease {
			if g == h {
				f.onRelease = append(f.onRelease[:i], f.onRelease[i+1:]...)
				return
			}
		}
	}
}

// Impl returns the file's implementation (nil for O_PATH files), for
// callers that need a specific kind of file (a socket, a pipe).
func (f *File) Impl() FileImpl {
	return f.impl
}

// VirtualDentry returns the location the file was opened at; ok is false
// for files not reached through a path (pipes, sockets).
func (f *File) VirtualDentry() (vd VirtualDentry, ok bool) {
	return f.vd, f.vd.d != nil
}

// StatusFlags returns the flags reported by F_GETFL.
func (f *File) StatusFlags() int {
	return int(f.flags.Load())
}

// SetStatusFlags implements F_SETFL: only O_APPEND, O_NONBLOCK, O_DIRECT,
// O_NOATIME and O_ASYNC change; other bits are ignored.
func (f *File) SetStatusFlags(flags int) error {
	if f.isPath() {
		return unix.EBADF
	}
	for {
		old := f.flags.Load()
		nw := old&^setflMask | uint32(flags&setflMask)
		if f.flags.CompareAndSwap(old, nw) {
			return nil
		}
	}
}

func (f *File) isPath() bool {
	return f.flags.Load()&unix.O_PATH != 0
}

func (f *File) readable() bool {
	acc := f.flags.Load() & (unix.O_ACCMODE | unix.O_PATH)
	return acc == unix.O_RDONLY || acc == unix.O_RDWR
}

func (f *File) writable() bool {
	acc := f.flags.Load() & (unix.O_ACCMODE | unix.O_PATH)
	return acc == unix.O_WRONLY || acc == unix.O_RDWR
}

func (f *File) seeker() (Seeker, bool) {
	s, ok := f.impl.(Seeker)
	return s, ok
}

// Read implements read(2) at the file's offset.
func (f *File) Read(ctx context.Context, dst []byte) (int, error) {
	if !f.readable() {
		return 0, unix.EBADF
	}
	n, err := f.read(ctx, dst)
	if n > 0 {
		f.notifyIO(unix.IN_ACCESS)
	}
	return n, err
}

func (f *File) read(ctx context.Context, dst []byte) (int, error) {
	if _, ok := f.seeker(); !ok {
		return f.impl.Read(ctx, f, dst, -1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.impl.Read(ctx, f, dst, f.off)
	f.readShared(dst, n, f.off)
	f.off += int64(n)
	return n, err
}

// readShared lets the pages of the file's shared mappings correct the n
// bytes a read just put in dst from off.
func (f *File) readShared(dst []byte, n int, off int64) {
	if n <= 0 {
		return
	}
	if p := f.sharedPages(); p != nil {
		p.Overlay(dst[:n], off)
	}
}

// writeShared runs write, which writes src to the file and returns how
// many bytes and where, through the pages of the file's shared mappings
// if it has any (see SharedPages.Write).
func (f *File) writeShared(src []byte, write func() (int, int64, error)) (int, error) {
	defer f.wrote()
	if p := f.sharedPages(); p != nil {
		return p.Write(src, write)
	}
	n, _, err := write()
	return n, err
}

// PRead implements pread64(2).
func (f *File) PRead(ctx context.Context, dst []byte, off int64) (int, error) {
	if !f.readable() {
		return 0, unix.EBADF
	}
	if _, ok := f.seeker(); !ok {
		return 0, unix.ESPIPE
	}
	if off < 0 {
		return 0, unix.EINVAL
	}
	n, err := f.impl.Read(ctx, f, dst, off)
	f.readShared(dst, n, off)
	if n > 0 {
		f.notifyIO(unix.IN_ACCESS)
	}
	return n, err
}

// Write implements write(2) at the file's offset, or at the end of the
// file for O_APPEND.
func (f *File) Write(ctx context.Context, src []byte) (int, error) {
	if !f.writable() {
		return 0, unix.EBADF
	}
	n, err := f.write(ctx, src)
	if n > 0 {
		f.notifyIO(unix.IN_MODIFY)
	}
	return n, err
}

func (f *File) write(ctx context.Context, src []byte) (int, error) {
	if _, ok := f.seeker(); !ok {
		return f.impl.Write(ctx, f, src, -1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.impl.(Appender); ok && f.StatusFlags()&unix.O_APPEND != 0 {
		return f.writeShared(src, func() (int, int64, error) {
			n, end, err := a.Append(ctx, f, src)
			if n > 0 || err == nil {
				f.off = end
			}
			return n, end - int64(n), err
		})
	}
	return f.writeShared(src, func() (int, int64, error) {
		off := f.off
		n, err := f.impl.Write(ctx, f, src, off)
		f.off += int64(n)
		return n, off, err
	})
}

// wrote counts a change of the file's contents, after it is made: a page
// cache that read the file before then sees that its pages are stale.
func (f *File) wrote() {
	if f.vd.d != nil {
		f.vd.d.writes.Add(1)
	}
}

// Writes counts the changes made to the contents of the file through the
// name it was opened at (writes, truncations, fallocate), so that cached
// copies of it can tell that they are stale even when its timestamps
// cannot. ok is false for files opened at no name.
func (f *File) Writes() (n uint64, ok bool) {
	if f.vd.d == nil {
		return 0, false
	}
	return f.vd.d.writes.Load(), true
}

// PWrite implements pwrite64(2). As on Linux, a file with O_APPEND is
// appended to whatever off says.
func (f *File) PWrite(ctx context.Context, src []byte, off int64) (int, error) {
	if !f.writable() {
		return 0, unix.EBADF
	}
	if _, ok := f.seeker(); !ok {
		return 0, unix.ESPIPE
	}
	if off < 0 {
		return 0, unix.EINVAL
	}
	n, err := f.pwrite(ctx, src, off)
	if n > 0 {
		f.notifyIO(unix.IN_MODIFY)
	}
	return n, err
}

func (f *File) pwrite(ctx context.Context, src []byte, off int64) (int, error) {
	if a, ok := f.impl.(Appender); ok && f.StatusFlags()&unix.O_APPEND != 0 {
		return f.writeShared(src, func() (int, int64, error) {
			n, end, err := a.Append(ctx, f, src)
			return n, end - int64(n), err
		})
	}
	return f.writeShared(src, func() (int, int64, error) {
		n, err := f.impl.Write(ctx, f, src, off)
		return n, off, err
	})
}

// Seek implements lseek(2).
func (f *File) Seek(ctx context.Context, off int64, whence int) (int64, error) {
	if f.isPath() {
		return 0, unix.EBADF
	}
	s, ok := f.seeker()
	if !ok {
		return 0, unix.ESPIPE
	}
	if whence < unix.SEEK_SET || whence > unix.SEEK_HOLE {
		return 0, unix.EINVAL
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := s.Seek(ctx, f.off, off, whence)
	if err != nil {
		return 0, err
	}
	f.off = n
	return n, nil
}

// SeekTo computes lseek(2)'s result for a file of the given size whose
// data has no holes; Seeker implementations use it.
func SeekTo(cur, off int64, whence int, size int64) (int64, error) {
	var base int64
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		base = cur
	case unix.SEEK_END:
		base = size
	case unix.SEEK_DATA:
		if off < 0 || off >= size {
			return 0, unix.ENXIO
		}
		return off, nil
	case unix.SEEK_HOLE:
		if off < 0 || off >= size {
			return 0, unix.ENXIO
		}
		return size, nil
	default:
		return 0, unix.EINVAL
	}
	n := base + off
	if (off > 0 && n < base) || n < 0 {
		return 0, unix.EINVAL
	}
	return n, nil
}

// Stat implements fstat(2).
func (f *File) Stat(ctx context.Context) (unix.Statx_t, error) {
	if f.vd.d != nil {
		return f.vd.stat(ctx)
	}
	if s, ok := f.impl.(Stater); ok {
		return s.Stat(ctx)
	}
	return unix.Statx_t{Mask: unix.STATX_BASIC_STATS, Nlink: 1, Blksize: pageSize}, nil
}

// Truncate implements ftruncate(2).
func (f *File) Truncate(ctx context.Context, length int64) error {
	if f.isPath() {
		return unix.EBADF
	}
	if length < 0 || !f.writable() || f.vd.d == nil || f.vd.d.typ != unix.S_IFREG {
		return unix.EINVAL
	}
	if f.vd.mnt.readOnly.Load() {
		return unix.EROFS
	}
	defer f.wrote()
	if err := f.vd.d.truncate(ctx, length); err != nil {
		return err
	}
	f.notifyIO(unix.IN_MODIFY)
	return nil
}

// Allocate implements fallocate(2) for modes 0 and FALLOC_FL_KEEP_SIZE.
func (f *File) Allocate(ctx context.Context, mode uint32, off, length int64) error {
	if off < 0 || length <= 0 {
		return unix.EINVAL
	}
	if mode&^unix.FALLOC_FL_KEEP_SIZE != 0 {
		return unix.EOPNOTSUPP
	}
	if !f.writable() {
		return unix.EBADF
	}
	if off+length < off {
		return unix.EFBIG
	}
	if f.vd.d != nil {
		switch f.vd.d.typ {
		case unix.S_IFDIR:
			return unix.EISDIR
		case unix.S_IFREG:
		case unix.S_IFIFO:
			return unix.ESPIPE
		default:
			return unix.ENODEV
		}
	}
	a, ok := f.impl.(Allocator)
	if !ok {
		if _, seekable := f.seeker(); !seekable {
			return unix.ESPIPE
		}
		return unix.ENODEV
	}
	defer f.wrote()
	if err := a.Allocate(ctx, mode, off, length); err != nil {
		return err
	}
	f.notifyIO(unix.IN_MODIFY)
	return nil
}

// Sync implements fsync(2) and fdatasync(2).
func (f *File) Sync(ctx context.Context) error {
	if f.isPath() {
		return unix.EBADF
	}
	s, ok := f.impl.(Syncer)
	if !ok {
		return unix.EINVAL
	}
	return s.Sync(ctx)
}

// Readiness returns the poll events in mask that are ready now.
func (f *File) Readiness(mask uint32) uint32 {
	if f.isPath() {
		return unix.POLLNVAL
	}
	if p, ok := f.impl.(Poller); ok {
		return p.Readiness(mask)
	}
	return mask & defaultReadiness
}

// defaultReadiness is what Linux reports for files without a poll
// method (DEFAULT_POLLMASK). Poll and epoll events share their values; x/sys
// names the normal-data bits only in their EPOLL form.
const defaultReadiness = unix.POLLIN | unix.POLLOUT | unix.EPOLLRDNORM | unix.EPOLLWRNORM

// Queued implements FIONREAD: the number of bytes that can be read
// without blocking (ENOTTY for files that do not support it).
func (f *File) Queued(ctx context.Context) (int, error) {
	if f.isPath() {
		return 0, unix.EBADF
	}
	if q, ok := f.impl.(Queuer); ok {
		return q.Queued(), nil
	}
	if f.vd.d == nil || f.vd.d.typ != unix.S_IFREG {
		return 0, unix.ENOTTY
	}
	st, err := f.vd.stat(ctx)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(max(0, int64(st.Size)-f.off)), nil
}
