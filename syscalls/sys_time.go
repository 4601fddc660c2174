package syscalls

import (
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

const cpuClockNote = "CPU-time clocks count the host threads that run the guest's threads"

var timeEntries = []entryAt{
	{unix.SYS_CLOCK_GETTIME, Entry{"clock_gettime", sysClockGettime, Supported, cpuClockNote, []Arg{ArgInt, ArgHex}}},
	{unix.SYS_CLOCK_GETRES, Entry{"clock_getres", sysClockGetres, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_GETTIMEOFDAY, Entry{"gettimeofday", sysGettimeofday, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_TIME, Entry{"time", sysTime, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_NANOSLEEP, Entry{"nanosleep", sysNanosleep, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_CLOCK_SETTIME, Entry{"clock_settime", sysClockSettime, Partial, setTimeNote, []Arg{ArgInt, ArgHex}}},
	{unix.SYS_SETTIMEOFDAY, Entry{"settimeofday", sysSettimeofday, Partial, setTimeNote, []Arg{ArgHex, ArgHex}}},
	{unix.SYS_CLOCK_NANOSLEEP, Entry{"clock_nanosleep", sysClockNanosleep, Supported, "CPU-time clocks are checked at least every 50 ms", []Arg{ArgInt, ArgHex, ArgHex, ArgHex}}},
}

// setTimeNote says why setting the time fails where Linux would let root
// set it.
const setTimeNote = "the sandbox's clocks are the host's: setting one is EPERM, as without CAP_SYS_TIME, after Linux's checks"

// maxSettableSec is the last second Linux lets the realtime clock be set
// to (timespec64_valid_settod: KTIME_SEC_MAX less 30 years).
const maxSettableSec = (1<<63-1)/int64(time.Second) - 30*365*24*60*60

// validSettableTime is Linux's timespec64_valid_settod.
func validSettableTime(sec, nsec int64) bool {
	return sec >= 0 && sec < maxSettableSec && nsec >= 0 && nsec < int64(time.Second)
}

// sysClockSettime checks the call as Linux does (EINVAL for a clock that
// cannot be set or a bad time, EFAULT, a CPU-time clock's ESRCH) and then
// refuses it, as Linux refuses every CPU-time clock.
func sysClockSettime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	id := int32(a[0])
	// Only the realtime clock and the clock ids of clock_getcpuclockid
	// have a setter; CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID
	// do not.
	cpu := kernel.IsCPUClock(id) && id != unix.CLOCK_PROCESS_CPUTIME_ID && id != unix.CLOCK_THREAD_CPUTIME_ID
	if !cpu && id != unix.CLOCK_REALTIME {
		return 0, unix.EINVAL
	}
	var ts unix.Timespec
	if err := copyInStruct(t, a[1], &ts); err != nil {
		return 0, err
	}
	if cpu {
		if _, err := t.CPUClock(id, false); err != nil {
			return 0, err
		}
		return 0, unix.EPERM
	}
	if !validSettableTime(ts.Sec, ts.Nsec) {
		return 0, unix.EINVAL
	}
	return 0, unix.EPERM
}

// timezone is struct timezone, which settimeofday reads.
type timezone struct {
	Minuteswest, Dsttime int32
}

// sysSettimeofday checks the time as Linux does, then refuses to change
// it or the time zone (whose range Linux checks only after the
// permission); with neither there is nothing to refuse.
func sysSettimeofday(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[0] != 0 {
		var tv unix.Timeval
		if err := copyInStruct(t, a[0], &tv); err != nil {
			return 0, err
		}
		if tv.Usec < 0 || tv.Usec >= int64(time.Second/time.Microsecond) || !validSettableTime(tv.Sec, tv.Usec*int64(time.Microsecond)) {
			return 0, unix.EINVAL
		}
	}
	if a[1] != 0 {
		var tz timezone
		if err := copyInStruct(t, a[1], &tz); err != nil {
			return 0, err
		}
	}
	if a[0] == 0 && a[1] == 0 {
		return 0, nil
	}
	return 0, unix.EPERM
}

// hostClock maps a guest clock id other than a CPU-time clock to the host
// clock that serves it.
func hostClock(id int32) (int32, bool) {
	switch id {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_MONOTONIC_RAW,
		unix.CLOCK_REALTIME_COARSE, unix.CLOCK_MONOTONIC_COARSE, unix.CLOCK_BOOTTIME,
		unix.CLOCK_REALTIME_ALARM, unix.CLOCK_BOOTTIME_ALARM, unix.CLOCK_TAI:
		return id, true
	}
	return 0, false
}

// The CPU-time clocks count the guest's threads (kernel.CPUClock), not the
// host thread that serves the call: clock_gettime may be served by an
// exitless worker. The vDSO passes them to the system call.

func sysClockGettime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	id := int32(a[0])
	var ts unix.Timespec
	if kernel.IsCPUClock(id) {
		c, err := t.CPUClock(id, true)
		if err != nil {
			return 0, err
		}
		ts = unix.NsecToTimespec(int64(c.Read()))
	} else {
		clk, ok := hostClock(id)
		if !ok {
			return 0, unix.EINVAL
		}
		if err := unix.ClockGettime(clk, &ts); err != nil {
			return 0, unix.EINVAL
		}
	}
	return 0, copyOutStruct(t, a[1], &ts)
}

func sysClockGetres(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	id := int32(a[0])
	var ts unix.Timespec
	if kernel.IsCPUClock(id) {
		c, err := t.CPUClock(id, false)
		if err != nil {
			return 0, err
		}
		ts = unix.NsecToTimespec(int64(c.Resolution()))
	} else {
		clk, ok := hostClock(id)
		if !ok {
			return 0, unix.EINVAL
		}
		if err := unix.ClockGetres(clk, &ts); err != nil {
			return 0, unix.EINVAL
		}
	}
	if a[1] == 0 {
		return 0, nil
	}
	return 0, copyOutStruct(t, a[1], &ts)
}

func sysGettimeofday(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[0] != 0 {
		now := time.Now()
		tv := unix.Timeval{Sec: now.Unix(), Usec: int64(now.Nanosecond() / 1000)}
		if err := copyOutStruct(t, a[0], &tv); err != nil {
			return 0, err
		}
	}
	if a[1] != 0 {
		var tz [2]int32
		return 0, copyOutStruct(t, a[1], &tz)
	}
	return 0, nil
}

func sysTime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	now := uint64(time.Now().Unix())
	if a[0] != 0 {
		if err := copyOutUint64(t, a[0], now); err != nil {
			return 0, err
		}
	}
	return now, nil
}

func readTimespec(t *kernel.Task, addr uint64) (time.Duration, error) {
	var ts unix.Timespec
	if err := copyInStruct(t, addr, &ts); err != nil {
		return 0, err
	}
	return timespecDuration(ts)
}

// timespecDuration checks a guest timespec as Linux's timespec64_valid
// does (EINVAL) and converts it, saturating at the longest duration.
func timespecDuration(ts unix.Timespec) (time.Duration, error) {
	if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
		return 0, unix.EINVAL
	}
	if ts.Sec > int64(time.Duration(1<<63-1)/time.Second)-1 {
		return time.Duration(1<<63 - 1), nil
	}
	return time.Duration(ts.Sec)*time.Second + time.Duration(ts.Nsec), nil
}

// sleep blocks for d unless the task is interrupted; it returns the time
// left and EINTR then.
func sleep(t *kernel.Task, d time.Duration) (time.Duration, error) {
	if d <= 0 {
		return 0, nil
	}
	deadline := time.Now().Add(d)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return 0, nil
	case <-t.Context().Done():
		return max(time.Until(deadline), 0), unix.EINTR
	}
}

func writeRemaining(t *kernel.Task, addr uint64, left time.Duration) error {
	if addr == 0 {
		return nil
	}
	ts := unix.NsecToTimespec(left.Nanoseconds())
	return copyOutStruct(t, addr, &ts)
}

func sysNanosleep(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	d, err := readTimespec(t, a[0])
	if err != nil {
		return 0, err
	}
	left, err := sleep(t, d)
	if err != nil {
		if werr := writeRemaining(t, a[1], left); werr != nil {
			return 0, werr
		}
	}
	return 0, err
}

func sysClockNanosleep(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	clk := int32(a[0])
	switch {
	case clk == unix.CLOCK_THREAD_CPUTIME_ID:
		return 0, unix.EOPNOTSUPP
	case kernel.IsCPUClock(clk):
		return cpuClockNanosleep(t, a)
	case kernel.IsClockFD(clk):
		return 0, unix.EOPNOTSUPP
	}
	switch clk {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME, unix.CLOCK_TAI:
	default:
		if _, ok := hostClock(clk); ok {
			return 0, unix.EOPNOTSUPP
		}
		return 0, unix.EINVAL
	}
	if a[1]&^unix.TIMER_ABSTIME != 0 {
		return 0, unix.EINVAL
	}
	d, err := readTimespec(t, a[2])
	if err != nil {
		return 0, err
	}
	abs := a[1]&unix.TIMER_ABSTIME != 0
	if abs {
		var now unix.Timespec
		if err := unix.ClockGettime(clk, &now); err != nil {
			return 0, unix.EINVAL
		}
		d -= time.Duration(now.Nano())
	}
	left, err := sleep(t, d)
	if err != nil && !abs {
		if werr := writeRemaining(t, a[3], left); werr != nil {
			return 0, werr
		}
	}
	return 0, err
}

// cpuClockNanosleep sleeps on a CPU-time clock: until the process, or
// another of its threads, has used the time asked for. A thread cannot
// wait for its own clock (EINVAL), as on Linux.
func cpuClockNanosleep(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	d, err := readTimespec(t, a[2])
	if err != nil {
		return 0, err
	}
	c, err := t.CPUClock(int32(a[0]), false)
	if err != nil {
		return 0, err
	}
	if c.Of(t) {
		return 0, unix.EINVAL
	}
	abs := a[1]&unix.TIMER_ABSTIME != 0
	until := d
	if !abs {
		until += c.Read()
	}
	left, err := t.SleepCPU(c, until)
	if err != nil && !abs {
		if werr := writeRemaining(t, a[3], left); werr != nil {
			return 0, werr
		}
	}
	return 0, err
}
