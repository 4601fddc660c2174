// Package syscalls is the x86-64 Linux system-call table: it decodes
// arguments, calls into the kernel, mm and vfs packages, and encodes results
// and errno values. It holds no state of its own.
package syscalls

import (
	"errors"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// Support says how completely a system call is implemented.
type Support int

const (
	// Unsupported calls return ENOSYS.
	Unsupported Support = iota
	// Partial calls work for the cases their note lists.
	Partial
	// Supported calls behave as on Linux.
	Supported
)

func (s Support) String() string {
	return [...]string{"unsupported", "partial", "supported"}[s]
}

// Handler implements one system call. It returns the result or an error,
// normally a unix.Errno.
type Handler func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error)

// Entry describes one system call.
type Entry struct {
	Name    string
	Handler Handler
	Support Support
	Note    string
	// Args says how strace shows each argument.
	Args []Arg
}

const tableSize = 512

var table [tableSize]Entry

func init() {
	for _, group := range [][]entryAt{fileEntries, fdEntries, pathEntries, statEntries, pipeEntries, spliceEntries, memoryEntries, processEntries, credEntries, cloneEntries, futexEntries, timeEntries, timerEntries, signalEntries, signalfdEntries, eventEntries, notifyEntries, mountEntries, socketEntries, xattrEntries, syslogEntries} {
		for _, e := range group {
			table[e.nr] = e.Entry
		}
	}
}

type entryAt struct {
	nr int
	Entry
}

// Table returns the entries of every system call number that has one, for
// documentation.
func Table() map[int]Entry {
	m := make(map[int]Entry)
	for nr, e := range table {
		if e.Name != "" {
			m[nr] = e
		}
	}
	return m
}

// Dispatcher implements kernel.Syscalls with this package's table.
type Dispatcher struct{}

// Handle implements kernel.Syscalls.
func (d Dispatcher) Handle(t *kernel.Task, nr uint64, a *kernel.SyscallArgs) uint64 {
	ret, _ := d.Serve(t, nr, a)
	return ret
}

// Serve implements kernel.Syscalls.
func (Dispatcher) Serve(t *kernel.Task, nr uint64, a *kernel.SyscallArgs) (uint64, bool) {
	var e *Entry
	if nr < tableSize {
		e = &table[nr]
	}
	cfg := t.Kernel().Config()
	if e == nil || e.Handler == nil {
		if cfg.Debug != nil && t.Kernel().ReportOnce(nr) {
			name := "?"
			if e != nil && e.Name != "" {
				name = e.Name
			}
			writeUnsupported(cfg.Debug, t, nr, name)
		}
		if cfg.Strace != nil {
			traceUnknown(cfg.Strace, t, nr, e, a)
		}
		return negErrno(unix.ENOSYS), true
	}
	ret, err := e.Handler(t, a)
	if err == vfs.ErrWouldWait {
		return 0, false
	}
	if sig := errorSignal(nr, a, err); sig != 0 {
		if vfs.MustNotWait(t.Context()) {
			// A worker declines it (the failed call changed nothing), so
			// that the task's own thread sends the signal and delivers it
			// before the call returns.
			return 0, false
		}
		info := kernel.NewSigInfo(int(sig), kernel.SiUser)
		info.SetSender(t.ThreadGroup().PID(), t.ThreadGroup().Creds().UID)
		t.SendSignal(info)
	}
	result := ret
	if err != nil {
		result = negErrno(errnoOf(err))
	}
	if cfg.Strace != nil {
		trace(cfg.Strace, t, e, a, result)
	}
	return result, true
}

func negErrno(e unix.Errno) uint64 { return uint64(-int64(e)) }

// quietError is an errno a write-type call returns without the SIGPIPE
// that EPIPE brings otherwise: Linux's datagram and seqpacket sockets and
// MSG_NOSIGNAL send none.
type quietError struct{ unix.Errno }

func (q quietError) Unwrap() error { return q.Errno }

// errnoOf maps an error to the errno the guest sees.
func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

// errorSignal is the signal that comes with a call's error: SIGPIPE with
// EPIPE from a write-type call, SIGXFSZ with EFBIG past RLIMIT_FSIZE.
func errorSignal(nr uint64, a *kernel.SyscallArgs, err error) unix.Signal {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFileTooBig):
		return unix.SIGXFSZ
	case raisesSIGPIPE(nr, a) && errnoOf(err) == unix.EPIPE:
		if _, quiet := err.(quietError); quiet {
			return 0
		}
		return unix.SIGPIPE
	}
	return 0
}

// sigpipeCalls are the write-type calls whose EPIPE comes with a SIGPIPE to
// the calling thread, as Linux's pipe and stream socket writes send it; a
// handler whose EPIPE must not signal returns a quietError.
var sigpipeCalls [tableSize]bool

func init() {
	for _, nr := range []int{unix.SYS_WRITE, unix.SYS_WRITEV, unix.SYS_PWRITE64, unix.SYS_PWRITEV, unix.SYS_PWRITEV2,
		unix.SYS_SENDFILE, unix.SYS_SPLICE, unix.SYS_TEE, unix.SYS_COPY_FILE_RANGE, unix.SYS_SENDTO, unix.SYS_SENDMSG} {
		sigpipeCalls[nr] = true
	}
}

// raisesSIGPIPE reports whether call nr sends SIGPIPE with EPIPE:
// pwritev2 with RWF_NOSIGNAL does not.
func raisesSIGPIPE(nr uint64, a *kernel.SyscallArgs) bool {
	return nr < tableSize && sigpipeCalls[nr] && !(nr == unix.SYS_PWRITEV2 && a[5]&unix.RWF_NOSIGNAL != 0)
}
