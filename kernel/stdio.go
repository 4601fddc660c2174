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
}

func newStdin(p *stdinPump) *vfs.File { return newStdio(&stdioFile{in: p}) }
func newStdout(w io.Writer) *vfs.File { return newStdio(&stdioFile{out: w}) }

// newStdio makes the file of a standard stream. As on Linux, a stream
// that a shell would have opened (a terminal, a file) carries
// O_LARGEFILE, a pipe or a socket does not.
func newStdio(s *stdioFile) *vfs.File {
	flags := unix.O_RDWR
	if f, ok := s.hostFile(); ok {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFIFO && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			flags |= vfs.OLargefile
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

func (s *stdioFile) Read(ctx context.Context, _ *vfs.File, dst []byte, _ int64) (int, error) {
	if s.in == nil {
		return 0, unix.EBADF
	}
	return s.in.read(ctx, dst)
}

func (s *stdioFile) Write(_ context.Context, _ *vfs.File, src []byte, _ int64) (int, error) {
	if s.out == nil {
		return 0, unix.EBADF
	}
	n, err := s.out.Write(src)
	if err != nil && n == 0 {
		return 0, unix.EPIPE
	}
	return n, nil
}

func (s *stdioFile) Release() {}

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
// terminal, which is the host terminal behind the sandbox's stdio files
// at its descriptors 0, 1 and 2. Reads come from standard input when it
// is the terminal (EBADF otherwise); writes go to the first of standard
// output, standard error and standard input that is. ENXIO when none is
// a terminal, as Linux answers a process without a controlling terminal.
func (k *Kernel) openTTY(ctx context.Context, _ int) (vfs.FileImpl, error) {
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
				tty.out = s.out
			}
		}
		f.DecRef()
	}
	if tty.out == nil && stdinHost != nil {
		tty.out = stdinHost
	}
	if tty.in == nil && tty.out == nil {
		return nil, unix.ENXIO
	}
	return tty, nil
}

// stdinPump reads the embedder's stdin on its own goroutine, started at the
// first read, so a guest read can be interrupted while the host read blocks.
type stdinPump struct {
	r       io.Reader
	once    sync.Once
	chunks  chan []byte
	done    <-chan struct{}
	mu      sync.Mutex
	pending []byte
	eof     bool
}

func newStdinPump(r io.Reader, done <-chan struct{}) *stdinPump {
	return &stdinPump{r: r, chunks: make(chan []byte), done: done}
}

func (p *stdinPump) pump() {
	defer close(p.chunks)
	for {
		buf := make([]byte, 32<<10)
		n, err := p.r.Read(buf)
		if n > 0 {
			select {
			case p.chunks <- buf[:n]:
			case <-p.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stdinPump) read(ctx context.Context, dst []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(dst) == 0 {
		return 0, nil
	}
	if len(p.pending) == 0 && !p.eof {
		if p.r == nil {
			p.eof = true
		} else {
			p.once.Do(func() { go p.pump() })
			select {
			case chunk, ok := <-p.chunks:
				p.pending, p.eof = chunk, !ok
			case <-ctx.Done():
				return 0, unix.EINTR
			}
		}
	}
	n := copy(dst, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}
