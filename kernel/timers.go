package kernel

import (
	"encoding/binary"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// Timers: the interval timers of setitimer(2) and alarm(2), and the POSIX
// timers of timer_create(2). They belong to the process: fork does not
// copy them, exec deletes the POSIX timers and keeps the interval timers,
// and exit deletes both. Each armed timer is one time.AfterFunc, stopped
// whenever the timer changes or goes away.

// minTimerPeriod bounds how often a periodic timer's host timer fires: a
// guest asking for a shorter interval gets its expiries counted (overruns)
// or coalesced (a standard signal pending once) rather than a host timer
// spinning.
const minTimerPeriod = 100 * time.Microsecond

// pendingRecheck is how often a periodic timer whose signal is still
// pending, or ignored, fires. Its expiries meanwhile are counted when the
// signal is taken, which re-arms the timer, as Linux does; the firing only
// notices a signal discarded without being taken, or no longer ignored.
const pendingRecheck = 50 * time.Millisecond

// maxTimers bounds a process's POSIX timers whatever RLIMIT_SIGPENDING
// says: each one holds host memory.
const maxTimers = 4096

// Sigevent notify values (asm-generic/siginfo.h).
const (
	SigevSignal   = 0
	SigevNone     = 1
	SigevThread   = 2
	SigevThreadID = 4
)

// TimerSetting is a timer's state as itimerspec and itimerval give it:
// the time to the next expiry (0: disarmed) and the reload interval.
type TimerSetting struct {
	Value, Interval time.Duration
}

// schedule is when a timer expires: first at next (zero: disarmed), then
// every interval (zero: once).
type schedule struct {
	next     time.Time
	interval time.Duration
}

// advance counts the expiries up to now and moves next past now, or
// disarms a one-shot timer that expired.
func (s *schedule) advance(now time.Time) int64 {
	if s.next.IsZero() || now.Before(s.next) {
		return 0
	}
	if s.interval <= 0 {
		s.next = time.Time{}
		return 1
	}
	n := int64(now.Sub(s.next)/s.interval) + 1
	s.next = s.next.Add(time.Duration(n) * s.interval)
	return n
}

// setting reports s as of now, as if the expiries due had been counted.
func (s schedule) setting(now time.Time) TimerSetting {
	s.advance(now)
	if s.next.IsZero() {
		return TimerSetting{}
	}
	return TimerSetting{Value: s.next.Sub(now), Interval: s.interval}
}

func scheduleFor(now time.Time, ts TimerSetting) schedule {
	if ts.Value <= 0 {
		return schedule{}
	}
	return schedule{next: now.Add(ts.Value), interval: max(ts.Interval, 0)}
}

// clockSource is what a timer counts: wall-clock time, or a CPU clock.
type clockSource interface {
	now() time.Time
	// wait is how long a host timer waits for the clock to advance by d.
	wait(d time.Duration) time.Duration
}

type wallClock struct{}

func (wallClock) now() time.Time                     { return time.Now() }
func (wallClock) wait(d time.Duration) time.Duration { return d }

// hostTimer is a guest timer's schedule and the host timer that fires it.
// seq changes with every change, so that a firing that lost a race with
// one does nothing.
type hostTimer struct {
	clock clockSource // nil: wall-clock time
	sched schedule
	timer *time.Timer
	seq   uint64
	// waiting: the timer fired while its signal was pending (or
	// ignored); it fires only every pendingRecheck until the signal is
	// taken.
	waiting bool
}

// setLocked replaces the schedule; fire runs, without locks, at the first
// expiry when wake is set (a SIGEV_NONE timer only keeps time).
func (h *hostTimer) setLocked(s schedule, wake bool, fire func(seq uint64)) {
	h.stopLocked()
	h.sched = s
	if s.next.IsZero() || !wake {
		return
	}
	seq := h.seq
	c := h.clockOf()
	h.timer = time.AfterFunc(c.wait(s.next.Sub(c.now())), func() { fire(seq) })
}

func (h *hostTimer) clockOf() clockSource {
	if h.clock == nil {
		return wallClock{}
	}
	return h.clock
}

func (h *hostTimer) now() time.Time { return h.clockOf().now() }

func (h *hostTimer) stopLocked() {
	h.seq++
	h.waiting = false
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	h.sched = schedule{}
}

// rearmLocked schedules the next firing of a periodic timer after one;
// waiting says its signal is still pending.
func (h *hostTimer) rearmLocked(waiting bool) {
	h.waiting = waiting
	if h.sched.next.IsZero() {
		h.timer = nil
		return
	}
	c := h.clockOf()
	d := max(c.wait(h.sched.next.Sub(c.now())), minTimerPeriod)
	if waiting {
		d = max(d, pendingRecheck)
	}
	h.timer.Reset(d)
}

// resumeLocked re-arms a timer that waited for its pending signal, now
// taken, for its next expiry; it returns the expiries it skips.
func (h *hostTimer) resumeLocked() int64 {
	if !h.waiting || h.timer == nil {
		return 0
	}
	n := h.sched.advance(h.now())
	h.rearmLocked(false)
	return n
}

// timerState is a process's timers, guarded by tg.mu.
type timerState struct {
	itimers  [3]hostTimer // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
	cpuLimit hostTimer    // RLIMIT_CPU
	posix    map[int32]*posixTimer
	nextID   int32
	closed   bool // the process has exited: no new timers
}

// itimerSignals are the signals of ITIMER_REAL, ITIMER_VIRTUAL and
// ITIMER_PROF.
var itimerSignals = [3]int{int(unix.SIGALRM), int(unix.SIGVTALRM), int(unix.SIGPROF)}

// ITimer implements getitimer(2).
func (tg *ThreadGroup) ITimer(which int) (TimerSetting, error) {
	if which < 0 || which >= len(tg.timers.itimers) {
		return TimerSetting{}, unix.EINVAL
	}
	tg.mu.Lock()
	defer tg.mu.Unlock()
	h := &tg.timers.itimers[which]
	return h.sched.setting(h.now()), nil
}

// SetITimer implements setitimer(2) (and alarm(2), with ITIMER_REAL): it
// arms timer which with s, a zero Value disarming it, and returns the old
// setting.
func (tg *ThreadGroup) SetITimer(which int, s TimerSetting) (TimerSetting, error) {
	if which < 0 || which >= len(tg.timers.itimers) {
		return TimerSetting{}, unix.EINVAL
	}
	tg.mu.Lock()
	defer tg.mu.Unlock()
	h := &tg.timers.itimers[which]
	now := h.now()
	old := h.sched.setting(now)
	if tg.timers.closed {
		return old, nil
	}
	h.setLocked(scheduleFor(now, s), true, func(seq uint64) { tg.fireITimer(which, seq) })
	return old, nil
}

// fireITimer sends an interval timer's signal. Expiries while the signal
// is pending coalesce, as a standard signal does.
func (tg *ThreadGroup) fireITimer(which int, seq uint64) {
	tg.mu.Lock()
	h := &tg.timers.itimers[which]
	if h.seq != seq {
		tg.mu.Unlock()
		return
	}
	sig := itimerSignals[which]
	n := h.sched.advance(h.now())
	idle := tg.pending.set.Has(sig) || tg.droppedLocked(nil, sig)
	h.rearmLocked(idle)
	tg.mu.Unlock()
	if n > 0 && !idle {
		tg.SendSignal(NewSigInfo(sig, SiKernel))
	}
}

// TimerEvent is a POSIX timer's sigevent: how it notifies (Sigev*), with
// which signal and si_value, and which thread for SigevThreadID.
type TimerEvent struct {
	Notify int
	Signal int
	Value  uint64
	TID    int32
}

// posixTimer is one timer_create timer. Its fields are guarded by tg.mu.
type posixTimer struct {
	id    int32
	clock int32
	ev    TimerEvent
	host  hostTimer
	// overrunLast is timer_getoverrun's answer: the overruns of the
	// last signal dequeued.
	overrunLast int32
	deleted     bool
}

// timerClock checks a clock id for timer_create.
func timerClock(clock int32) error {
	if IsClockFD(clock) {
		return unix.EOPNOTSUPP
	}
	switch clock {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME, unix.CLOCK_TAI:
		return nil
	case unix.CLOCK_MONOTONIC_RAW, unix.CLOCK_REALTIME_COARSE, unix.CLOCK_MONOTONIC_COARSE,
		unix.CLOCK_REALTIME_ALARM, unix.CLOCK_BOOTTIME_ALARM:
		// No timers on these clocks, as on Linux (the alarm clocks:
		// as on a machine without an RTC that can wake it).
		return unix.EOPNOTSUPP
	}
	return unix.EINVAL
}

// CreateTimer implements timer_create(2); ev is nil for a NULL sigevent.
// The calling thread is t.
func (t *Task) CreateTimer(clock int32, ev *TimerEvent) (int32, error) {
	var src clockSource
	if IsCPUClock(clock) {
		c, err := t.CPUClock(clock, false)
		if err != nil {
			return 0, err
		}
		src = c
	} else if err := timerClock(clock); err != nil {
		return 0, err
	}
	tg := t.tg
	tg.mu.Lock()
	defer tg.mu.Unlock()
	ts := &tg.timers
	if ts.closed || len(ts.posix) >= int(min(tg.limits[unix.RLIMIT_SIGPENDING].Cur, maxTimers)) {
		return 0, unix.EAGAIN
	}
	if ev != nil {
		switch ev.Notify {
		case SigevThreadID:
			if o := tg.tasks[ev.TID]; o == nil {
				return 0, unix.EINVAL
			}
			fallthrough
		case SigevSignal, SigevThread:
			if ev.Signal < 1 || ev.Signal > NumSignals {
				return 0, unix.EINVAL
			}
		case SigevNone:
		default:
			return 0, unix.EINVAL
		}
	}
	if ts.posix == nil {
		ts.posix = map[int32]*posixTimer{}
	}
	id := ts.nextID
	for ts.posix[id] != nil {
		id = (id + 1) & math.MaxInt32
	}
	ts.nextID = (id + 1) & math.MaxInt32
	pt := &posixTimer{id: id, clock: clock}
	pt.host.clock = src
	if ev != nil {
		pt.ev = *ev
	} else {
		pt.ev = TimerEvent{Notify: SigevSignal, Signal: int(unix.SIGALRM), Value: uint64(id)}
	}
	ts.posix[id] = pt
	return id, nil
}

func (tg *ThreadGroup) timerLocked(id int32) (*posixTimer, error) {
	pt := tg.timers.posix[id]
	if pt == nil {
		return nil, unix.EINVAL
	}
	return pt, nil
}

// DeleteTimer implements timer_delete(2). A signal of the timer still
// pending is dropped when it would be delivered.
func (tg *ThreadGroup) DeleteTimer(id int32) error {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	pt, err := tg.timerLocked(id)
	if err != nil {
		return err
	}
	tg.deleteTimerLocked(pt)
	return nil
}

func (tg *ThreadGroup) deleteTimerLocked(pt *posixTimer) {
	pt.host.stopLocked()
	pt.deleted = true
	delete(tg.timers.posix, pt.id)
}

// GetTimer implements timer_gettime(2).
func (tg *ThreadGroup) GetTimer(id int32) (TimerSetting, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	pt, err := tg.timerLocked(id)
	if err != nil {
		return TimerSetting{}, err
	}
	return pt.host.sched.setting(pt.host.now()), nil
}

// TimerOverrun implements timer_getoverrun(2).
func (tg *ThreadGroup) TimerOverrun(id int32) (int32, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	pt, err := tg.timerLocked(id)
	if err != nil {
		return 0, err
	}
	return pt.overrunLast, nil
}

// clockNow reads the timer's clock, as a time since the clock's epoch;
// now is the timer's own reading of it.
func (pt *posixTimer) clockNow(now time.Time) time.Duration {
	if pt.host.clock != nil {
		return now.Sub(cpuEpoch)
	}
	var ts unix.Timespec
	if unix.ClockGettime(pt.clock, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// SetTimer implements timer_settime(2): s.Value is relative, or with abs
// a time on the timer's clock; zero disarms the timer. It returns the old
// setting.
func (tg *ThreadGroup) SetTimer(id int32, s TimerSetting, abs bool) (TimerSetting, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	pt, err := tg.timerLocked(id)
	if err != nil {
		return TimerSetting{}, err
	}
	now := pt.host.now()
	old := pt.host.sched.setting(now)
	pt.overrunLast = 0
	if s.Value == 0 {
		pt.host.stopLocked()
		return old, nil
	}
	rel := s.Value
	if abs {
		// A time already past fires at once, with the intervals since
		// counted as overruns.
		rel -= pt.clockNow(now)
	}
	sched := schedule{next: now.Add(rel), interval: s.Interval}
	pt.host.setLocked(sched, pt.ev.Notify != SigevNone, func(seq uint64) { tg.firePosixTimer(pt, seq) })
	return old, nil
}

// Offsets in a SI_TIMER siginfo.
const (
	siTimerID      = 16
	siTimerOverrun = 20
	siTimerValue   = 24
)

// saturatingOverrun caps an overrun count at INT_MAX, as Linux does.
func saturatingOverrun(n int64) int32 {
	return int32(min(n, math.MaxInt32))
}

// firePosixTimer queues a POSIX timer's signal. While the signal is still
// pending, expiries count as its overruns instead.
func (tg *ThreadGroup) firePosixTimer(pt *posixTimer, seq uint64) {
	tg.mu.Lock()
	if pt.host.seq != seq {
		tg.mu.Unlock()
		return
	}
	n := pt.host.sched.advance(pt.host.now())
	var target *Task
	if pt.ev.Notify == SigevThreadID {
		target = tg.tasks[pt.ev.TID]
	}
	switch {
	case n == 0, pt.ev.Notify == SigevThreadID && target == nil:
		// Nothing due yet, or the thread is gone: its signals are lost.
		pt.host.rearmLocked(false)
		tg.mu.Unlock()
		return
	}
	if qs := tg.queuedTimerSignalLocked(pt, target); qs != nil {
		addOverrun(qs, n)
		pt.host.rearmLocked(true)
		tg.mu.Unlock()
		return
	}
	if tg.droppedLocked(target, pt.ev.Signal) {
		pt.host.rearmLocked(true)
		tg.mu.Unlock()
		return
	}
	info := NewSigInfo(pt.ev.Signal, SiTimer)
	info.SetTimer(pt.id, saturatingOverrun(n-1), pt.ev.Value)
	tg.mu.Unlock()
	tg.send(target, queuedSignal{info: info, timer: pt, seq: seq})
	// Rearm after queueing, so that the next firing finds the signal.
	tg.mu.Lock()
	if pt.host.seq == seq {
		pt.host.rearmLocked(false)
	}
	tg.mu.Unlock()
}

// droppedLocked reports whether sig sent to target (nil: the process)
// would be thrown away as ignored.
func (tg *ThreadGroup) droppedLocked(target *Task, sig int) bool {
	return tg.ignoredLocked(sig) && !tg.blockedLocked(target, sig)
}

// addOverrun adds n expiries to the overrun count of a timer's signal.
func addOverrun(qs *queuedSignal, n int64) {
	over := int64(int32(binary.LittleEndian.Uint32(qs.info[siTimerOverrun:])))
	binary.LittleEndian.PutUint32(qs.info[siTimerOverrun:], uint32(saturatingOverrun(over+n)))
}

// queuedTimerSignalLocked finds pt's pending signal from its current
// arming, if there is one.
func (tg *ThreadGroup) queuedTimerSignalLocked(pt *posixTimer, target *Task) *queuedSignal {
	p := &tg.pending
	if target != nil {
		p = &target.pending
	}
	q := p.queue[pt.ev.Signal]
	for i := range q {
		if q[i].timer == pt && q[i].seq == pt.host.seq {
			return &q[i]
		}
	}
	return nil
}

// signalTakenLocked is told that qs leaves a pending queue for delivery
// and reports whether to deliver it. A POSIX timer's signal is dropped when
// the timer was deleted or re-armed since; otherwise it counts the
// expiries until now as overruns and re-arms the timer, as Linux does. A
// signal of an interval timer re-arms a timer that waited for it.
func (tg *ThreadGroup) signalTakenLocked(qs *queuedSignal) bool {
	if pt := qs.timer; pt != nil {
		if pt.deleted || qs.seq != pt.host.seq {
			return false
		}
		addOverrun(qs, pt.host.resumeLocked())
		pt.overrunLast = int32(binary.LittleEndian.Uint32(qs.info[siTimerOverrun:]))
		return true
	}
	for which, sig := range itimerSignals {
		if sig == qs.info.Signo() {
			tg.timers.itimers[which].resumeLocked()
		}
	}
	return true
}

// execTimers deletes the POSIX timers at exec; the interval timers go on.
func (tg *ThreadGroup) execTimers() {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for _, pt := range tg.timers.posix {
		tg.deleteTimerLocked(pt)
	}
}

// stopTimers deletes every timer of a process that exited.
func (tg *ThreadGroup) stopTimers() {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.timers.closed = true
	for i := range tg.timers.itimers {
		tg.timers.itimers[i].stopLocked()
	}
	tg.timers.cpuLimit.stopLocked()
	for _, pt := range tg.timers.posix {
		tg.deleteTimerLocked(pt)
	}
}
