// Package timerfd implements timerfd_create(2) files: a timer whose
// expirations are counted and read.
package timerfd

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var _ vfs.Poller = (*timerFD)(nil)

// Flags are the flags timerfd_create accepts.
const Flags = unix.TFD_NONBLOCK | unix.TFD_CLOEXEC

// SetFlags are the flags timerfd_settime accepts.
const SetFlags = unix.TFD_TIMER_ABSTIME | unix.TFD_TIMER_CANCEL_ON_SET

// Spec is an itimerspec: the time to the next expiration (zero when the
// timer is disarmed) and the period of the later ones (zero for none).
type Spec struct {
	Value, Interval time.Duration
}

// timerFD is the file behind a timerfd. Like Linux's, its timer is not
// rearmed when it expires with an interval: the next expiration is found
// when the count is read (or the timer queried), so that a tiny interval
// costs nothing while nobody reads.
type timerFD struct {
	clock int32

	mu sync.Mutex
	// timer is the Go timer of the pending expiration, nil when none is.
	timer *time.Timer
	// gen counts the timer's settings: a callback of an older one finds
	// it changed and does nothing.
	gen uint64
	// armed is set while deadline (a time of clock, in ns) is the time
	// of the next expiration, or of one that has happened.
	armed    bool
	deadline int64
	interval time.Duration
	// expired is set when an expiration of a periodic timer has been
	// counted and the next is not yet scheduled.
	expired  bool
	ticks    uint64
	released bool
	waiters  vfs.Queue
}

// New implements timerfd_create(2): clock is CLOCK_REALTIME,
// CLOCK_MONOTONIC or CLOCK_BOOTTIME (the alarm clocks need
// CAP_WAKE_ALARM: EPERM); flags may hold TFD_NONBLOCK, and TFD_CLOEXEC,
// which is the caller's.
func New(clock int32, flags int) (*vfs.File, error) {
	if flags&^Flags != 0 {
		return nil, unix.EINVAL
	}
	switch clock {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME:
	case unix.CLOCK_REALTIME_ALARM, unix.CLOCK_BOOTTIME_ALARM:
		return nil, unix.EPERM
	default:
		return nil, unix.EINVAL
	}
	return vfs.NewFile(&timerFD{clock: clock}, unix.O_RDWR|flags&unix.O_NONBLOCK), nil
}

func of(f *vfs.File) (*timerFD, error) {
	t, ok := f.Impl().(*timerFD)
	if !ok {
		return nil, unix.EINVAL
	}
	return t, nil
}

// now reads the timer's clock in ns.
func (t *timerFD) now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(t.clock, &ts)
	return ts.Nano()
}

// addSat adds without passing the largest time.
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// stopLocked cancels the pending expiration, if any.
func (t *timerFD) stopLocked() {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.gen++
}

// scheduleLocked starts the Go timer for the expiration at t.deadline.
func (t *timerFD) scheduleLocked(now int64) {
	gen := t.gen
	t.timer = time.AfterFunc(time.Duration(max(t.deadline-now, 0)), func() { t.fire(gen) })
}

func (t *timerFD) fire(gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen || t.released {
		return
	}
	// Go timers follow the monotonic clock; the timer's clock may lag.
	if now := t.now(); now < t.deadline {
		t.scheduleLocked(now)
		return
	}
	t.timer = nil
	t.ticks++
	if t.interval > 0 {
		t.expired = true
	} else {
		t.armed = false
	}
	t.waiters.Notify(unix.POLLIN | unix.EPOLLRDNORM)
}

// forwardLocked schedules the next expiration of a periodic timer that has
// expired, counting the expirations missed since.
func (t *timerFD) forwardLocked() {
	now := t.now()
	if t.armed && !t.released && t.interval > 0 && !t.expired && now >= t.deadline {
		// Its Go timer is late (a busy host), but Linux's hrtimer would
		// have fired by now: the periodic timer has expired all the same.
		t.stopLocked()
		t.ticks++
		t.expired = true
		t.waiters.Notify(unix.POLLIN | unix.EPOLLRDNORM)
	}
	if !t.expired {
		return
	}
	t.expired = false
	if now >= t.deadline {
		missed := uint64((now-t.deadline)/int64(t.interval)) + 1
		t.ticks += missed - 1
		t.deadline = addSat(t.deadline, int64(min(missed, math.MaxInt64/uint64(t.interval)))*int64(t.interval))
	}
	t.scheduleLocked(now)
}

// getLocked is timerfd_gettime: the time to the next expiration (zero
// when none is pending) and the interval.
func (t *timerFD) getLocked() Spec {
	t.forwardLocked()
	s := Spec{Interval: t.interval}
	if t.armed {
		s.Value = time.Duration(max(t.deadline-t.now(), 0))
	}
	return s
}

// Get implements timerfd_gettime(2) on f (EINVAL if f is not a timerfd).
func Get(f *vfs.File) (Spec, error) {
	t, err := of(f)
	if err != nil {
		return Spec{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.getLocked(), nil
}

// Set implements timerfd_settime(2) on f (EINVAL if f is not a timerfd):
// it arms the timer to expire after s.Value, or at s.Value of its clock
// when abs is set, and every s.Interval after that, or disarms it when
// s.Value is zero. The count of expirations starts again from zero. It
// returns the previous setting.
func Set(f *vfs.File, s Spec, abs bool) (Spec, error) {
	t, err := of(f)
	if err != nil {
		return Spec{}, err
	}
	if s.Value < 0 || s.Interval < 0 {
		return Spec{}, unix.EINVAL
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.getLocked()
	t.stopLocked()
	t.ticks, t.expired, t.armed = 0, false, false
	t.interval = s.Interval
	if s.Value == 0 || t.released {
		return old, nil
	}
	now := t.now()
	t.deadline = int64(s.Value)
	if !abs {
		t.deadline = addSat(now, int64(s.Value))
	}
	t.armed = true
	t.scheduleLocked(now)
	return old, nil
}

// Read returns the count of expirations since the last read in dst, which
// must hold 8 bytes, and resets it; it waits while the count is zero.
func (t *timerFD) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	if len(dst) < 8 {
		return 0, unix.EINVAL
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.ticks == 0 {
		if f.StatusFlags()&unix.O_NONBLOCK != 0 {
			return 0, unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			return 0, vfs.ErrWouldWait
		}
		if err := t.waitLocked(ctx); err != nil {
			return 0, err
		}
	}
	t.forwardLocked()
	binary.LittleEndian.PutUint64(dst, t.ticks)
	t.ticks = 0
	return 8, nil
}

// waitLocked releases t.mu until the timer expires or ctx is done (EINTR).
func (t *timerFD) waitLocked(ctx context.Context) error {
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	t.waiters.EventRegister(w)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.waiters.EventUnregister(w)
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return unix.EINTR
	}
}

// Write is EINVAL, as on Linux.
func (t *timerFD) Write(context.Context, *vfs.File, []byte, int64) (int, error) {
	return 0, unix.EINVAL
}

// Release stops the timer.
func (t *timerFD) Release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.released = true
	t.stopLocked()
}

// Readiness implements vfs.Poller: readable once the timer has expired.
func (t *timerFD) Readiness(mask uint32) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ticks > 0 {
		return mask & unix.POLLIN
	}
	return 0
}

// EventRegister implements vfs.Poller.
func (t *timerFD) EventRegister(w *vfs.Waiter) { t.waiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (t *timerFD) EventUnregister(w *vfs.Waiter) { t.waiters.EventUnregister(w) }

// AnonName implements vfs.AnonInode.
func (*timerFD) AnonName() string { return "[timerfd]" }

// Stat implements vfs.Stater.
func (*timerFD) Stat(context.Context) (unix.Statx_t, error) { return vfs.AnonStat(), nil }
