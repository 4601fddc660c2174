package vfs

import (
	"context"

	"golang.org/x/sys/unix"
)

// FileImpl is the behaviour behind an open file description. File
// systems return one from Inode.Open; other packages (the kernel's stdio
// files, sockets) implement it and wrap it with NewFile.
//
// Read and Write get the file's offset for seekable files (those that
// implement Seeker) and -1 for streams. They must honour ctx: a blocking
// implementation returns unix.EINTR when ctx is cancelled.
type FileImpl interface {
	Read(ctx context.Context, f *File, dst []byte, off int64) (int, error)
	Write(ctx context.Context, f *File, src []byte, off int64) (int, error)
	// Release is called once, when the last reference to the File is
	// dropped.
	Release()
}

// Seeker is implemented by seekable files. Seek returns the new offset
// for lseek(2) given the current offset; SeekTo is a helper for it.
type Seeker interface {
	Seek(ctx context.Context, cur, off int64, whence int) (int64, error)
}

// Appender is implemented by seekable files that support O_APPEND: it
// writes src at the end of the file, atomically with respect to other
// writers, and returns the offset just past the data written.
type Appender interface {
	Append(ctx context.Context, f *File, src []byte) (n int, end int64, err error)
}

// Dirent is one directory entry, as listed by a DirReader.
type Dirent struct {
	Name string
	Ino  uint64
	Type uint8 // unix.DT_*
	// Next is the directory offset just past this entry.
	Next int64
}

// DirReader is implemented by directories. ReadDir calls emit for the
// entries at offsets off and beyond, in order, until emit returns false.
// Offsets 0 and 1 are reserved for "." and "..", which the VFS emits;
// ReadDir is called with off >= 2, and off == 2 means the start of the
// directory (it may take a fresh snapshot there).
type DirReader interface {
	ReadDir(ctx context.Context, off int64, emit func(Dirent) bool) error
}

// Stater is implemented by files that are not reached through a path
// (pipes, sockets, stdio) to answer fstat(2).
type Stater interface {
	Stat(ctx context.Context) (unix.Statx_t, error)
}

// HostFile is implemented by open host regular files (hostfs). HostStat
// is the host's statx of the open file itself, with the host's device
// number: the file a name leads to may since have been replaced, the one
// open never is. Only host files are held in the page cache: their
// contents change only through writes or on the host.
type HostFile interface {
	HostStat() (unix.Statx_t, error)
}

// Poller is implemented by files whose readiness varies (pipes, devices).
// Readiness returns the subset of the poll events in mask (unix.POLLIN,
// unix.POLLOUT, ...) that are currently set, plus POLLERR and POLLHUP.
// EventRegister and EventUnregister add and remove waiters that the file
// tells of every change of its readiness (see Queue, which a Poller
// usually embeds or delegates to); a file that never changes may make them
// no-ops. Files that are not Pollers are always readable and writable, as
// regular files and directories are on Linux, and epoll refuses them.
type Poller interface {
	Readiness(mask uint32) uint32
	EventRegister(w *Waiter)
	EventUnregister(w *Waiter)
}

// Sink is implemented by files that drop what is written to them unread
// (/dev/null): as on Linux, a write to one succeeds without reading the
// caller's buffer.
type Sink interface {
	DropsWrites()
}

// AnonInode is implemented by files that Linux backs with its anonymous
// inode (eventfd, timerfd, epoll): AnonName is what /proc/PID/fd shows
// after "anon_inode:", such as "[eventfd]".
type AnonInode interface {
	AnonName() string
}

// AnonStat is fstat(2) of a file on Linux's anonymous inode: no file type,
// mode 0600.
func AnonStat() unix.Statx_t {
	return unix.Statx_t{Mask: unix.STATX_BASIC_STATS, Mode: 0o600, Nlink: 1, Blksize: pageSize}
}

// Allocator is implemented by files that support fallocate(2) modes 0 and
// unix.FALLOC_FL_KEEP_SIZE.
type Allocator interface {
	Allocate(ctx context.Context, mode uint32, off, length int64) error
}

// Syncer is implemented by files that support fsync(2).
type Syncer interface {
	Sync(ctx context.Context) error
}

// Queuer is implemented by stream files that can report how many bytes
// are ready to be read (FIONREAD).
type Queuer interface {
	Queued() int
}

// FDInfoer is implemented by files that show lines of their own in
// /proc/PID/fdinfo (inotify's watches), after the common ones; each line
// ends in a newline.
type FDInfoer interface {
	FDInfo() string
}
