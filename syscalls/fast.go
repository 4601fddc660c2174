package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"golang.org/x/sys/unix"
)

// fastCalls may be served by a host worker while the calling vCPU waits in
// the guest: they never block and never touch the vCPU's registers.
var fastCalls = [...]int{
	unix.SYS_GETPID, unix.SYS_GETPPID, unix.SYS_GETTID,
	unix.SYS_GETUID, unix.SYS_GETEUID, unix.SYS_GETGID, unix.SYS_GETEGID,
	unix.SYS_CLOCK_GETTIME, unix.SYS_CLOCK_GETRES, unix.SYS_GETTIMEOFDAY, unix.SYS_TIME,
	unix.SYS_GETRANDOM, unix.SYS_UNAME,
	unix.SYS_BRK, unix.SYS_MMAP, unix.SYS_MUNMAP, unix.SYS_MPROTECT, unix.SYS_MREMAP, unix.SYS_MADVISE,
	unix.SYS_RT_SIGPROCMASK, unix.SYS_RT_SIGACTION, unix.SYS_SIGALTSTACK,
	unix.SYS_PRLIMIT64, unix.SYS_GETRLIMIT, unix.SYS_SCHED_GETAFFINITY,
	unix.SYS_SET_ROBUST_LIST, unix.SYS_SET_TID_ADDRESS,
	unix.SYS_FSTAT, unix.SYS_CLOSE, unix.SYS_DUP, unix.SYS_UMASK, unix.SYS_GETCWD,
	unix.SYS_STAT, unix.SYS_LSTAT, unix.SYS_NEWFSTATAT, unix.SYS_STATX,
	unix.SYS_ACCESS, unix.SYS_FACCESSAT, unix.SYS_FACCESSAT2, unix.SYS_READLINK, unix.SYS_READLINKAT,
	// Opening a FIFO waits for its other end: the worker's context makes
	// it return vfs.ErrWouldWait instead, and the vCPU's thread retries.
	unix.SYS_OPEN, unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_CREAT,
	unix.SYS_MKDIR, unix.SYS_MKDIRAT, unix.SYS_RMDIR, unix.SYS_UNLINK, unix.SYS_UNLINKAT,
	unix.SYS_RENAME, unix.SYS_RENAMEAT, unix.SYS_RENAMEAT2, unix.SYS_LINK, unix.SYS_LINKAT,
	unix.SYS_SYMLINK, unix.SYS_SYMLINKAT, unix.SYS_CHMOD, unix.SYS_FCHMOD, unix.SYS_FCHMODAT,
	unix.SYS_CHOWN, unix.SYS_FCHOWN, unix.SYS_LCHOWN, unix.SYS_FCHOWNAT,
	unix.SYS_UTIMENSAT, unix.SYS_TRUNCATE, unix.SYS_FTRUNCATE, unix.SYS_CHDIR, unix.SYS_FCHDIR,
	unix.SYS_STATFS, unix.SYS_FSTATFS,
	// Making, naming and configuring a socket waits for nothing and
	// wakes no one.
	unix.SYS_SOCKET, unix.SYS_BIND, unix.SYS_LISTEN, unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME,
	unix.SYS_GETSOCKOPT, unix.SYS_SETSOCKOPT,
}

// regularFileCalls are fast when their first argument is a regular file
// (or, for getdents64 and lseek, a directory; for read and write, a pipe):
// those never wait, or say so.
var regularFileCalls = [...]int{
	unix.SYS_READ, unix.SYS_WRITE, unix.SYS_PREAD64, unix.SYS_PWRITE64,
	unix.SYS_LSEEK, unix.SYS_GETDENTS64,
}

// fastWriteMax bounds the bytes of a write the worker serves: a larger one
// would pull the guest's freshly written buffer across to the worker's
// core, which costs more than the exit it saves. Reads have no such cost.
const fastWriteMax = 64 << 10

var fast, fastOnRegularFile [tableSize]bool

func init() {
	for _, nr := range fastCalls {
		fast[nr] = true
	}
	for _, nr := range regularFileCalls {
		fastOnRegularFile[nr] = true
	}
}

// MayBeFast implements kernel.Syscalls.
func (Dispatcher) MayBeFast(nr uint64) bool {
	return nr < tableSize && table[nr].Handler != nil &&
		(fast[nr] || fastOnRegularFile[nr] || nr == unix.SYS_POLL || nr == unix.SYS_EPOLL_WAIT ||
			nr == unix.SYS_ACCEPT || nr == unix.SYS_ACCEPT4)
}

// Fast implements kernel.Syscalls.
func (Dispatcher) Fast(t *kernel.Task, nr uint64, a *kernel.SyscallArgs) bool {
	if nr >= tableSize || table[nr].Handler == nil {
		return false
	}
	if fast[nr] {
		return true
	}
	// A poll or epoll_wait that may not wait is a scan of readiness.
	switch nr {
	case unix.SYS_POLL:
		return int32(a[2]) == 0
	case unix.SYS_EPOLL_WAIT:
		return int32(a[3]) == 0
	case unix.SYS_ACCEPT, unix.SYS_ACCEPT4:
		return acceptReturnsAtOnce(t, a[0])
	}
	if !fastOnRegularFile[nr] || (nr == unix.SYS_WRITE || nr == unix.SYS_PWRITE64) && a[2] > fastWriteMax {
		return false
	}
	f, err := getFile(t, a[0])
	if err != nil {
		return true // EBADF does not wait either
	}
	defer f.DecRef()
	if f.IsRegular() {
		return true
	}
	// Pipe reads and writes are fast if they can finish at once without
	// waking a sleeper; the worker still tries them without waiting
	// (t.Context() says so there), and one that would wait or wake goes
	// back to the vCPU's thread.
	if p, isPipe := pipe.Of(f); isPipe {
		nonblock := f.StatusFlags()&unix.O_NONBLOCK != 0
		return (nr == unix.SYS_READ || nr == unix.SYS_WRITE) && p.Immediate(nr == unix.SYS_WRITE, nonblock, int(min(a[2], maxRW)))
	}
	return (nr == unix.SYS_GETDENTS64 || nr == unix.SYS_LSEEK) && f.IsDirectory()
}

// acceptReturnsAtOnce says whether an accept on fd waits for nothing: a
// connection is pending, or the socket is non-blocking (EAGAIN). Taking
// a connection off the queue wakes no one. An accept that would wait all
// the same goes back to the vCPU's thread.
func acceptReturnsAtOnce(t *kernel.Task, fd uint64) bool {
	f, err := getFile(t, fd)
	if err != nil {
		return true // EBADF
	}
	defer f.DecRef()
	p, ok := f.Impl().(vfs.Poller)
	if !ok {
		return true // ENOTSOCK
	}
	return f.StatusFlags()&unix.O_NONBLOCK != 0 || p.Readiness(unix.POLLIN) != 0
}
