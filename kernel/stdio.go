package kernel

import (
	"context"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/procfs"
	"golang.org/x/sys/unix"
)

var _ vfs.Poller = (*stdioFile)(nil)

// TTY is implemented by files that answer terminal ioctls.
type TTY interface {
	Termios() (*unix.Termios, error)
	WindowSize() (*unix.Winsize, error)
}

// stdioFile is one of the sandbox's standard streams: an io.Reader or
// io.Writer supplied by the embedder, shown to the guest as a character
// device (a terminal when the host stream is one) or a pipe.
type stdioFile struct {
	in  *stdinPump
	out io.Writer
	// outMu serialises the writes of every process to the embedder's
	// writers, which need not be safe for concurrent use (bytes.Buffer),
	// and keeps each write whole, as a pipe keeps small writes.
	outMu *sync.Mutex
	// pipe is set when the guest sees a pipe or socket, which reports
	// POLLHUP rather than POLLIN at end of input.
	pipe bool
}

func newStdin(p *stdinPump) *vfs.File { return newStdio(&stdioFile{in: p}) }
func newStdout(w io.Writer, mu *sync.Mutex) *vfs.File {
	return newStdio(&stdioFile{out: w, outMu: mu})
}

// newStdio makes the file of a standard stream. As on Linux, a stream
// that a shell would have opened (a terminal, a file) carries
// O_LARGEFILE, a pipe or a socket does not.
func newStdio(s *stdioFile) *vfs.File {
	flags := unix.O_RDWR
	s.pipe = true
	if f, ok := s.hostFile(); ok {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFIFO && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			flags |= vfs.OLargefile
			s.pipe = false
		}
	}
	return vfs.NewFile(s, flags)
}

func (s *stdioFile) hostFile() (*os.File, bool) {
	if s.in != nil {
		f, ok := s.in.r.(*os.File)
		return f, ok
	}
	f, ok := s.out.(*os.File)
	return f, ok
}

func (s *stdioFile) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	if s.in == nil {
		return 0, unix.EBADF
	}
	return s.in.read(ctx, dst, f.StatusFlags()&unix.O_NONBLOCK != 0)
}

func (s *stdioFile) Write(_ context.Context, _ *vfs.File, src []byte, _ int64) (int, error) {
	if s.out == nil {
		return 0, unix.EBADF
	}
	s.outMu.Lock()
	n, err := s.out.Write(src)
	s.outMu.Unlock()
	if err != nil && n == 0 {
		return 0, unix.EPIPE
	}
	return n, nil
}

func (s *stdioFile) Release() {}

// Reopen implements vfs.Reopener: /dev/stdout and /proc/self/fd/1 open
// the same stream again (tee /dev/stderr).
func (s *stdioFile) Reopen(_ context.Context, flags int) (*vfs.File, error) {
	c := *s
	return vfs.NewFile(&c, flags), nil
}

// Readiness implements vfs.Poller: input is readable while data waits or
// once it has ended; output is always writable.
func (s *stdioFile) Readiness(mask uint32) uint32 {
	var ev uint32
	if s.in != nil {
		data, eof := s.in.readiness()
		if data || eof && !s.pipe {
			ev |= unix.POLLIN | unix.EPOLLRDNORM
		}
		if eof && s.pipe {
			ev |= unix.POLLHUP
		}
	}
	if s.out != nil {
		ev |= unix.POLLOUT | unix.EPOLLWRNORM
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements vfs.Poller; only input changes.
func (s *stdioFile) EventRegister(w *vfs.Waiter) {
	if s.in != nil {
		s.in.waiters.EventRegister(w)
	}
}

// EventUnregister implements vfs.Poller.
func (s *stdioFile) EventUnregister(w *vfs.Waiter) {
	if s.in != nil {
		s.in.waiters.EventUnregister(w)
	}
}

// Stat describes the host stream when it is a file, else a pipe.
func (s *stdioFile) Stat(context.Context) (unix.Statx_t, error) {
	if f, ok := s.hostFile(); ok {
		var st unix.Statx_t
		if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS, &st); err == nil {
			return st, nil
		}
	}
	now := time.Now()
	ts := unix.StatxTimestamp{Sec: now.Unix(), Nsec: uint32(now.Nanosecond())}
	return unix.Statx_t{
		Mask: unix.STATX_BASIC_STATS, Mode: unix.S_IFIFO | 0o600, Nlink: 1, Blksize: 4096,
		Atime: ts, Mtime: ts, Ctime: ts, Ino: 1,
	}, nil
}

// Termios answers TCGETS from the host terminal, ENOTTY for anything else.
func (s *stdioFile) Termios() (*unix.Termios, error) {
	if f, ok := s.hostFile(); ok {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			return t, nil
		}
	}
	return nil, unix.ENOTTY
}

// WindowSize answers TIOCGWINSZ from the host terminal.
func (s *stdioFile) WindowSize() (*unix.Winsize, error) {
	if f, ok := s.hostFile(); ok {
		if w, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			return w, nil
		}
	}
	return nil, unix.ENOTTY
}

// isTerminal reports whether the host side of the stream is a terminal.
func (s *stdioFile) isTerminal() bool {
	_, err := s.Termios()
	return err == nil
}

// openTTY opens /dev/tty for the calling process: its controlling
// terminal. That is the sandbox pty the process's session acquired, if
// any; otherwise the host terminal behind the sandbox's stdio files at
// its descriptors 0, 1 and 2. Reads come from standard input when it
// is the terminal (EBADF otherwise); writes go to the first of standard
// output, standard error and standard input that is. ENXIO when none is
// a terminal, as Linux answers a process without a controlling terminal.
func (k *Kernel) openTTY(ctx context.Context, flags int) (vfs.FileImpl, error) {
	pid, _, ok := procfs.CallerFrom(ctx)
	if !ok {
		return nil, unix.ENXIO
	}
	k.mu.Lock()
	tg := k.procs[pid]
	k.mu.Unlock()
	if tg == nil {
		return nil, unix.ENXIO
	}
	if pty := tg.ControllingTerminal(); pty != nil {
		return pty.OpenSlave(ctx, flags|unix.O_NOCTTY)
	}
	tty := &stdioFile{}
	var stdinHost *os.File
	for fd := range int32(3) {
		f, err := tg.fds.Get(fd)
		if err != nil {
			continue
		}
		if s, ok := f.Impl().(*stdioFile); ok && s.isTerminal() {
			if s.in != nil && tty.in == nil {
				tty.in = s.in
				stdinHost, _ = s.hostFile()
			}
			if s.out != nil && tty.out == nil {
				tty.out, tty.outMu = s.out, s.outMu
			}
		}
		f.DecRef()
	}
	if tty.out == nil && stdinHost != nil {
		tty.out, tty.outMu = stdinHost, &sync.Mutex{}
	}
	if tty.in == nil && tty.out == nil {
		return nil, unix.ENXIO
	}
	return tty, nil
}

// stdinPump reads the embedder's stdin on its own goroutine, started at the
// first read or poll, so that a guest read can be interrupted while the
// host read blocks and poll sees data arrive. It holds one chunk at a time:
// it reads the next only once the guest has taken all of the last.
type stdinPump struct {
	r    io.Reader
	once sync.Once
	done <-chan struct{}

	mu      sync.Mutex
	pending []byte
	eof     bool
	// changed is closed and replaced when pending or eof changes.
	changed chan struct{}
	waiters vfs.Queue
}

func newStdinPump(r io.Reader, done <-chan struct{}) *stdinPump {
	return &stdinPump{r: r, done: done, eof: r == nil, changed: make(chan struct{})}
}

func (p *stdinPump) startLocked() {
	if !p.eof {
		p.once.Do(func() { go p.pump() })
	}
}

func (p *stdinPump) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *stdinPump) pump() {
	for {
		buf := make([]byte, 32<<10)
		n, err := p.r.Read(buf)
		p.mu.Lock()
		p.pending, p.eof = buf[:n], err != nil
		p.signalLocked()
		if n > 0 || p.eof {
			p.waiters.Notify(vfs.AllEvents)
		}
		for len(p.pending) > 0 && !p.eof {
			ch := p.changed
			p.mu.Unlock()
			select {
			case <-ch:
			case <-p.done:
				return
			}
			p.mu.Lock()
		}
		eof := p.eof
		p.mu.Unlock()
		if eof {
			return
		}
	}
}

func (p *stdinPump) read(ctx context.Context, dst []byte, nonblock bool) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked()
	for len(p.pending) == 0 && !p.eof {
		if nonblock {
			return 0, unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			return 0, vfs.ErrWouldWait
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
			p.mu.Lock()
		case <-ctx.Done():
			p.mu.Lock()
			return 0, unix.EINTR
		}
	}
	n := copy(dst, p.pending)
	p.pending = p.pending[n:]
	if len(p.pending) == 0 {
		p.signalLocked()
	}
	return n, nil
}

// readiness reports whether data waits and whether the stream has ended.
func (p *stdinPump) readiness() (data, eof bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked()
	return len(p.pending) > 0, p.eof
}
