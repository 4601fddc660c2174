package devpts

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var (
	_ vfs.Poller = (*Master)(nil)
	_ vfs.Poller = (*Slave)(nil)
	_ vfs.Queuer = (*Master)(nil)
	_ vfs.Queuer = (*Slave)(nil)
	_ vfs.Stater = (*Slave)(nil)
)

// Terminal is one pseudo-terminal: the master (an open of /dev/ptmx)
// and the slave /dev/pts/N, joined by a line discipline.
type Terminal struct {
	fs    *FS
	index uint32
	born  unix.StatxTimestamp

	mu sync.Mutex
	ld *discipline
	// pending holds what the master wrote that the line discipline has
	// no room for yet.
	pending []byte
	winsize unix.Winsize
	// locked is the TIOCSPTLCK lock: the slave cannot be opened while
	// it is set, as it is from the start.
	locked bool
	// slaves counts the open slave files; otherClosed says that a slave
	// was open and the last has closed, after which the master reads
	// EIO once its data is gone.
	slaves      int
	otherClosed bool
	// hungUp says that the master closed: the slave reads end of file
	// and writes fail with EIO.
	hungUp bool
	// session and pgrp are the session this is the controlling terminal
	// of and its foreground process group (0: none).
	session, pgrp int32
	// changed is closed and replaced on every change, waking blocked
	// readers and writers.
	changed chan struct{}
	masterQ vfs.Queue
	slaveQ  vfs.Queue
}

// Index is the pty's number, N in /dev/pts/N.
func (t *Terminal) Index() uint32 { return t.index }

// Rdev is the slave's device number: 136:N, numbers from 256 on taking
// the majors after 136, up to 143, as on Linux.
func (t *Terminal) Rdev() uint64 {
	return unix.Mkdev(SlaveMajor+t.index/256, t.index%256)
}

// changedLocked wakes blocked readers and writers and tells the poll and
// epoll waiters of both sides after a change of state.
func (t *Terminal) changedLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
	t.masterQ.Notify(vfs.AllEvents)
	t.slaveQ.Notify(vfs.AllEvents)
}

// unlockDeliver releases t.mu and sends the signals the line discipline
// raised to the foreground process group.
func (t *Terminal) unlockDeliver() {
	sigs := t.ld.takeSignals()
	pgrp := t.pgrp
	t.mu.Unlock()
	if pgrp == 0 {
		return
	}
	for _, s := range sigs {
		t.fs.sessions.SignalGroup(pgrp, s)
	}
}

// waitLocked releases t.mu until the terminal changes, ctx is cancelled
// (EINTR) or timeout fires (false).
func (t *Terminal) waitLocked(ctx context.Context, timeout <-chan time.Time) (bool, error) {
	ch := t.changed
	t.mu.Unlock()
	defer t.mu.Lock()
	select {
	case <-ch:
		return true, nil
	case <-timeout:
		return false, nil
	case <-ctx.Done():
		return false, unix.EINTR
	}
}

// feedLocked moves what the master wrote into the line discipline as
// far as it has room.
func (t *Terminal) feedLocked() {
	n := 0
	for n < len(t.pending) && t.ld.room() > 0 {
		t.ld.receive(t.pending[n])
		n++
	}
	t.pending = t.pending[n:]
	t.ld.flushEchoes()
}

// Master is the master side of a pty, an open file of /dev/ptmx.
type Master struct{ t *Terminal }

// Terminal returns the pty.
func (m *Master) Terminal() *Terminal { return m.t }

// Read implements vfs.FileImpl: what the slave wrote, and the echoes.
// Once the slave has been closed and the data read, EIO.
func (m *Master) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	t := m.t
	t.mu.Lock()
	for {
		if len(t.ld.out) > 0 {
			if len(dst) == 0 {
				t.mu.Unlock()
				return 0, nil
			}
			n := t.ld.takeOutput(dst)
			t.changedLocked()
			t.unlockDeliver()
			return n, nil
		}
		if t.otherClosed {
			t.mu.Unlock()
			return 0, unix.EIO
		}
		if len(dst) == 0 {
			t.mu.Unlock()
			return 0, nil
		}
		if f.StatusFlags()&unix.O_NONBLOCK != 0 {
			t.mu.Unlock()
			return 0, unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			t.mu.Unlock()
			return 0, vfs.ErrWouldWait
		}
		if _, err := t.waitLocked(ctx, nil); err != nil {
			t.mu.Unlock()
			return 0, err
		}
	}
}

// Write implements vfs.FileImpl: the bytes are the slave's input, taken
// by the line discipline; the write waits while 64 KiB wait for room.
func (m *Master) Write(ctx context.Context, f *vfs.File, src []byte, _ int64) (int, error) {
	t := m.t
	t.mu.Lock()
	done := 0
	for {
		n := min(len(src)-done, pendingCap-len(t.pending))
		if n > 0 {
			t.pending = append(t.pending, src[done:done+n]...)
			done += n
			t.feedLocked()
			t.changedLocked()
		}
		if done == len(src) {
			t.unlockDeliver()
			return done, nil
		}
		switch {
		case f.StatusFlags()&unix.O_NONBLOCK != 0:
			t.unlockDeliver()
			if done > 0 {
				return done, nil
			}
			return 0, unix.EAGAIN
		case vfs.MustNotWait(ctx):
			t.unlockDeliver()
			if done > 0 {
				return done, nil
			}
			return 0, vfs.ErrWouldWait
		}
		if len(t.ld.signals) > 0 {
			t.unlockDeliver()
			t.mu.Lock()
			continue
		}
		if _, err := t.waitLocked(ctx, nil); err != nil {
			t.mu.Unlock()
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
	}
}

// Release implements vfs.FileImpl: the pty hangs up and its name goes.
func (m *Master) Release() {
	t := m.t
	t.mu.Lock()
	t.hungUp = true
	t.otherClosed = true
	sid := t.session
	t.session, t.pgrp = 0, 0
	t.changedLocked()
	t.mu.Unlock()
	t.fs.removeName(t)
	if sid != 0 {
		t.fs.sessions.Hangup(t, sid)
	}
	t.fs.releaseIfUnused(t)
}

// Readiness implements vfs.Poller.
func (m *Master) Readiness(mask uint32) uint32 {
	t := m.t
	t.mu.Lock()
	defer t.mu.Unlock()
	var ev uint32
	if len(t.ld.out) > 0 {
		ev |= unix.POLLIN | unix.EPOLLRDNORM
	}
	if t.otherClosed {
		ev |= unix.POLLHUP
	}
	if len(t.pending) < pendingCap {
		ev |= unix.POLLOUT | unix.EPOLLWRNORM
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements vfs.Poller.
func (m *Master) EventRegister(w *vfs.Waiter) { m.t.masterQ.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (m *Master) EventUnregister(w *vfs.Waiter) { m.t.masterQ.EventUnregister(w) }

// Queued implements vfs.Queuer: the output waiting for the master.
func (m *Master) Queued() int {
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	return len(m.t.ld.out)
}

// Slave is an open file of the slave side, /dev/pts/N.
type Slave struct{ t *Terminal }

// Terminal returns the pty.
func (s *Slave) Terminal() *Terminal { return s.t }

// Read implements vfs.FileImpl: a line in canonical mode; otherwise as
// VMIN and VTIME say. End of file once the master has closed. A
// background process group reading its controlling terminal gets
// SIGTTIN.
func (s *Slave) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	t := s.t
	if err := t.fs.sessions.JobControl(ctx, t, unix.SIGTTIN); err != nil {
		return 0, err
	}
	t.mu.Lock()
	if len(dst) == 0 || t.hungUp {
		t.mu.Unlock()
		return 0, nil
	}
	nonblock := f.StatusFlags()&unix.O_NONBLOCK != 0
	if t.ld.canonical() {
		for {
			if t.hungUp {
				t.mu.Unlock()
				return 0, nil
			}
			if _, ok := t.ld.readable(); ok {
				n := t.ld.read(dst)
				t.feedLocked()
				t.changedLocked()
				t.unlockDeliver()
				return n, nil
			}
			if err := t.mayWaitLocked(ctx, nonblock); err != nil {
				t.mu.Unlock()
				return 0, err
			}
			if _, err := t.waitLocked(ctx, nil); err != nil {
				t.mu.Unlock()
				return 0, err
			}
		}
	}
	return s.readRaw(ctx, dst, nonblock)
}

// mayWaitLocked returns the error a read that would block fails with.
func (t *Terminal) mayWaitLocked(ctx context.Context, nonblock bool) error {
	if nonblock {
		return unix.EAGAIN
	}
	if vfs.MustNotWait(ctx) {
		return vfs.ErrWouldWait
	}
	return nil
}

// readRaw reads in non-canonical mode. VMIN > 0 waits for that many
// bytes (or a full buffer), VTIME then bounding the gap between bytes;
// VMIN == 0 returns what there is, waiting up to VTIME for the first.
func (s *Slave) readRaw(ctx context.Context, dst []byte, nonblock bool) (int, error) {
	t := s.t
	vmin, vtime := int(t.ld.cc(unix.VMIN)), time.Duration(t.ld.cc(unix.VTIME))*100*time.Millisecond
	minimum := vmin
	var timer *time.Timer
	var timeout <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	arm := func() {
		if timer != nil {
			timer.Stop()
		}
		timer = time.NewTimer(vtime)
		timeout = timer.C
	}
	if vmin == 0 {
		minimum = 1
		if vtime > 0 {
			arm()
		}
	}
	got := 0
	for got < len(dst) {
		if t.hungUp {
			break
		}
		if _, ok := t.ld.readable(); ok {
			got += t.ld.read(dst[got:])
			t.feedLocked()
			t.changedLocked()
			if got >= minimum {
				break
			}
			if vmin > 0 && vtime > 0 {
				arm()
			}
			continue
		}
		if vmin == 0 && vtime == 0 {
			break
		}
		if err := t.mayWaitLocked(ctx, nonblock); err != nil {
			if got > 0 {
				break
			}
			t.unlockDeliver()
			return 0, err
		}
		woke, err := t.waitLocked(ctx, timeout)
		if err != nil {
			if got > 0 {
				break
			}
			t.unlockDeliver()
			return 0, err
		}
		if !woke {
			break
		}
	}
	t.unlockDeliver()
	return got, nil
}

// Write implements vfs.FileImpl: output processing into the master's
// queue, waiting while it is full or output is stopped (VSTOP); EIO once
// the master has closed.
func (s *Slave) Write(ctx context.Context, f *vfs.File, src []byte, _ int64) (int, error) {
	t := s.t
	if t.Termios().Lflag&unix.TOSTOP != 0 {
		if err := t.fs.sessions.JobControl(ctx, t, unix.SIGTTOU); err != nil {
			return 0, err
		}
	}
	t.mu.Lock()
	done := 0
	for {
		if t.hungUp {
			t.mu.Unlock()
			if done > 0 {
				return done, nil
			}
			return 0, unix.EIO
		}
		if n := t.ld.write(src[done:]); n > 0 {
			done += n
			t.changedLocked()
		}
		if done == len(src) {
			t.mu.Unlock()
			return done, nil
		}
		if err := t.mayWaitLocked(ctx, f.StatusFlags()&unix.O_NONBLOCK != 0); err != nil {
			t.mu.Unlock()
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		if _, err := t.waitLocked(ctx, nil); err != nil {
			t.mu.Unlock()
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
	}
}

// Release implements vfs.FileImpl.
func (s *Slave) Release() {
	t := s.t
	t.mu.Lock()
	t.slaves--
	if t.slaves == 0 {
		t.otherClosed = true
	}
	t.changedLocked()
	t.mu.Unlock()
	t.fs.releaseIfUnused(t)
}

// Readiness implements vfs.Poller. A hung-up slave is ready for
// everything, as Linux's hung-up files are.
func (s *Slave) Readiness(mask uint32) uint32 {
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hungUp {
		all := uint32(unix.POLLIN | unix.POLLOUT | unix.EPOLLRDNORM | unix.EPOLLWRNORM | unix.POLLERR | unix.POLLHUP)
		return all & (mask | unix.POLLERR | unix.POLLHUP)
	}
	var ev uint32
	n, ok := t.ld.readable()
	if !t.ld.canonical() && t.ld.cc(unix.VTIME) == 0 && t.ld.cc(unix.VMIN) > 0 {
		ok = n >= int(t.ld.cc(unix.VMIN))
	}
	if ok {
		ev |= unix.POLLIN | unix.EPOLLRDNORM
	}
	if !t.ld.stopped && t.ld.outputRoom() > 0 {
		ev |= unix.POLLOUT | unix.EPOLLWRNORM
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements vfs.Poller.
func (s *Slave) EventRegister(w *vfs.Waiter) { s.t.slaveQ.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (s *Slave) EventUnregister(w *vfs.Waiter) { s.t.slaveQ.EventUnregister(w) }

// Queued implements vfs.Queuer: finished lines in canonical mode, all
// input otherwise.
func (s *Slave) Queued() int {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	return s.t.ld.queued()
}

// Stat implements vfs.Stater for a slave opened through no name
// (TIOCGPTPEER outside the sandbox's /dev/pts).
func (s *Slave) Stat(context.Context) (unix.Statx_t, error) {
	return s.t.fs.slaveStat(s.t), nil
}

// Termios returns the slave's termios (TCGETS, on either side).
func (t *Terminal) Termios() unix.Termios {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ld.termios
}

// SetTermios installs tio (TCSETS); flush discards the input first
// (TCSETSF).
func (t *Terminal) SetTermios(tio unix.Termios, flush bool) {
	t.mu.Lock()
	if flush {
		t.ld.flushInput()
		t.pending = t.pending[:0]
	}
	t.ld.setTermios(tio)
	t.feedLocked()
	t.changedLocked()
	t.unlockDeliver()
}

// WindowSize returns the window size (TIOCGWINSZ).
func (t *Terminal) WindowSize() unix.Winsize {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.winsize
}

// SetWindowSize sets the window size (TIOCSWINSZ); a change sends
// SIGWINCH to the foreground process group.
func (t *Terminal) SetWindowSize(ws unix.Winsize) {
	t.mu.Lock()
	changed := t.winsize != ws
	t.winsize = ws
	if changed {
		t.ld.signals = append(t.ld.signals, unix.SIGWINCH)
	}
	t.unlockDeliver()
}

// SetLocked sets or clears the slave's lock (TIOCSPTLCK).
func (t *Terminal) SetLocked(locked bool) {
	t.mu.Lock()
	t.locked = locked
	t.mu.Unlock()
}

// Locked reports the slave's lock (TIOCGPTLCK).
func (t *Terminal) Locked() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.locked
}

// Flush discards queued data (TCFLSH) as seen from the master or the
// slave: unix.TCIFLUSH what that side would read, unix.TCOFLUSH what it
// wrote that the other has not read, unix.TCIOFLUSH both.
func (t *Terminal) Flush(fromMaster bool, which int) error {
	if which != unix.TCIFLUSH && which != unix.TCOFLUSH && which != unix.TCIOFLUSH {
		return unix.EINVAL
	}
	t.mu.Lock()
	input := which != unix.TCOFLUSH
	output := which != unix.TCIFLUSH
	if fromMaster {
		input, output = output, input
	}
	if input {
		t.ld.flushInput()
		t.pending = t.pending[:0]
	}
	if output {
		t.ld.flushOutput()
	}
	t.changedLocked()
	t.mu.Unlock()
	return nil
}

// SignalForeground sends sig to the foreground process group (TIOCSIG
// on the master); EINVAL without one.
func (t *Terminal) SignalForeground(sig unix.Signal) error {
	t.mu.Lock()
	if t.pgrp == 0 {
		t.mu.Unlock()
		return unix.EINVAL
	}
	t.ld.signals = append(t.ld.signals, sig)
	t.unlockDeliver()
	return nil
}

// Session returns the session the pty controls and its foreground
// process group, 0 for none.
func (t *Terminal) Session() (sid, pgrp int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.session, t.pgrp
}

// SetSession makes the pty the controlling terminal of session sid,
// whose foreground group becomes pgrp; false once the master has closed
// (a hung-up terminal controls nothing).
func (t *Terminal) SetSession(sid, pgrp int32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hungUp {
		return false
	}
	t.session, t.pgrp = sid, pgrp
	return true
}

// SetForeground sets the foreground process group (TIOCSPGRP).
func (t *Terminal) SetForeground(pgrp int32) {
	t.mu.Lock()
	t.pgrp = pgrp
	t.mu.Unlock()
}
