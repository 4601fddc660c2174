package kernel

import (
	"time"

	"golang.org/x/sys/unix"
)

// CPU-time clocks (linux/posix-timers.h). A negative clock id names the
// clock of a process or, with cpuClockPerThread, of a thread:
// ^pid<<3 | perthread | which, pid 0 meaning the caller's.
const (
	cpuClockProf      = 0 // user and system time
	cpuClockVirt      = 1 // user time
	cpuClockSched     = 2 // precise user and system time
	cpuClockMax       = 3
	cpuClockWhich     = 3
	cpuClockPerThread = 4
	// clockFD in the low bits of a negative id names a dynamic clock (a
	// PTP device's), which the sandbox has none of.
	clockFD     = 3
	clockFDMask = 7
)

func makeCPUClock(pid, which int32, thread bool) int32 {
	id := ^pid<<3 | which
	if thread {
		id |= cpuClockPerThread
	}
	return id
}

// IsCPUClock reports whether id names a CPU-time clock, valid or not.
func IsCPUClock(id int32) bool {
	return id < 0 && !IsClockFD(id) || id == unix.CLOCK_PROCESS_CPUTIME_ID || id == unix.CLOCK_THREAD_CPUTIME_ID
}

// IsClockFD reports whether id names a dynamic clock by its file
// descriptor: those have no sleeps or timers (EOPNOTSUPP), and read as
// EINVAL since no file is a clock.
func IsClockFD(id int32) bool { return id < 0 && id&clockFDMask == clockFD }

// cpuEpoch is where a CPU clock's readings start as a time.Time, so that
// timers on CPU clocks keep the same schedules as timers on wall clocks.
var cpuEpoch = time.Unix(0, 0)

// cpuClockPoll bounds how long a timer on a process's CPU clock goes
// unchecked: the clock runs faster once the process starts more threads.
const cpuClockPoll = 50 * time.Millisecond

// CPUClock is the CPU-time clock of a thread, or of a whole process.
type CPUClock struct {
	tg    *ThreadGroup
	t     *Task // nil: the process's
	which int32
}

// CPUClock resolves a CPU-time clock id for the calling thread t, as
// Linux's pid_for_clock does: a thread clock must name a thread of t's
// process; a process clock names any process, or for clock_gettime
// (gettime) t's own thread. Anything else is EINVAL.
func (t *Task) CPUClock(id int32, gettime bool) (CPUClock, error) {
	switch id {
	case unix.CLOCK_PROCESS_CPUTIME_ID:
		return CPUClock{tg: t.tg, which: cpuClockSched}, nil
	case unix.CLOCK_THREAD_CPUTIME_ID:
		return CPUClock{tg: t.tg, t: t, which: cpuClockSched}, nil
	}
	which := id & cpuClockWhich
	if id >= 0 || which >= cpuClockMax {
		return CPUClock{}, unix.EINVAL
	}
	pid := ^(id >> 3)
	thread := id&cpuClockPerThread != 0
	tg := t.tg
	switch {
	case pid == 0 && thread:
		return CPUClock{tg: tg, t: t, which: which}, nil
	case pid == 0:
		return CPUClock{tg: tg, which: which}, nil
	case thread:
		tg.mu.Lock()
		o := tg.tasks[pid]
		tg.mu.Unlock()
		if o == nil {
			return CPUClock{}, unix.EINVAL
		}
		return CPUClock{tg: tg, t: o, which: which}, nil
	case gettime && pid == t.tid:
		return CPUClock{tg: tg, which: which}, nil
	}
	p := tg.k.Process(pid)
	if p == nil {
		return CPUClock{}, unix.EINVAL
	}
	return CPUClock{tg: p, which: which}, nil
}

// Read reads the clock.
func (c CPUClock) Read() time.Duration {
	var u Usage
	if c.t != nil {
		u = c.t.threadCPU()
	} else {
		u = c.tg.processCPU()
	}
	switch c.which {
	case cpuClockVirt:
		return u.User
	case cpuClockProf:
		return u.User + u.Sys
	}
	return u.Sched
}

// Resolution is the clock's resolution: the host's for the same kind of
// clock (the scheduler clock's nanosecond, or the tick the others sample).
func (c CPUClock) Resolution() time.Duration {
	var ts unix.Timespec
	if unix.ClockGetres(makeCPUClock(0, c.which, true), &ts) != nil {
		return 1
	}
	return time.Duration(ts.Nano())
}

// Of reports whether the clock is thread t's own.
func (c CPUClock) Of(t *Task) bool { return c.t == t }

func (c CPUClock) now() time.Time { return cpuEpoch.Add(c.Read()) }

// wait is the wall time in which the clock cannot advance by more than d:
// a thread's clock runs no faster than wall-clock time, a process's as
// fast as its threads together.
func (c CPUClock) wait(d time.Duration) time.Duration {
	if c.t != nil {
		return max(d, minTimerPeriod)
	}
	d /= time.Duration(max(c.tg.runningThreads(), 1))
	return min(max(d, minTimerPeriod), cpuClockPoll)
}

// SleepCPU blocks until clock c reads at least until, or until t is
// interrupted: then it returns how far the clock was from until, and EINTR.
func (t *Task) SleepCPU(c CPUClock, until time.Duration) (time.Duration, error) {
	for {
		left := until - c.Read()
		if left <= 0 {
			return 0, nil
		}
		timer := time.NewTimer(c.wait(left))
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			return max(until-c.Read(), 0), unix.EINTR
		}
	}
}

// rlimitSeconds converts an RLIMIT_CPU value, saturating.
func rlimitSeconds(v uint64) time.Duration {
	return time.Duration(min(v, uint64(maxTimerSeconds))) * time.Second
}

// maxTimerSeconds is the longest time in seconds a time.Duration holds.
const maxTimerSeconds = int64(time.Duration(1<<63-1) / time.Second)

// armCPULimitLocked (re)arms the RLIMIT_CPU check for the next limit the
// process's CPU time reaches. As on Linux, nothing is checked while the
// soft limit is infinite.
func (tg *ThreadGroup) armCPULimitLocked() {
	h := &tg.timers.cpuLimit
	l := tg.limits[unix.RLIMIT_CPU]
	if tg.timers.closed || l.Cur == unix.RLIM_INFINITY {
		h.stopLocked()
		return
	}
	next := rlimitSeconds(l.Cur)
	if l.Max != unix.RLIM_INFINITY {
		next = min(next, rlimitSeconds(l.Max))
	}
	// The precise clock: the sampled ones may jump by more than a second
	// at once on a busy host, and two SIGXCPUs would merge into one.
	h.clock = CPUClock{tg: tg, which: cpuClockSched}
	h.setLocked(schedule{next: cpuEpoch.Add(next)}, true, tg.checkCPULimit)
}

// checkCPULimit sends SIGKILL at RLIMIT_CPU's hard limit, and SIGXCPU at
// the soft limit, which it then raises by a second, as Linux does.
func (tg *ThreadGroup) checkCPULimit(seq uint64) {
	tg.mu.Lock()
	h := &tg.timers.cpuLimit
	if h.seq != seq {
		tg.mu.Unlock()
		return
	}
	used := h.clock.now().Sub(cpuEpoch)
	l := &tg.limits[unix.RLIMIT_CPU]
	sig := 0
	switch {
	case l.Max != unix.RLIM_INFINITY && used >= rlimitSeconds(l.Max):
		sig = int(unix.SIGKILL)
	case used >= rlimitSeconds(l.Cur):
		sig = int(unix.SIGXCPU)
		l.Cur++
	}
	tg.armCPULimitLocked()
	tg.mu.Unlock()
	if sig != 0 {
		tg.SendSignal(NewSigInfo(sig, SiKernel))
	}
}
