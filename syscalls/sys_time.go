package syscalls

import (
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var timeEntries = []entryAt{
	{unix.SYS_CLOCK_GETTIME, Entry{"clock_gettime", sysClockGettime, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_CLOCK_GETRES, Entry{"clock_getres", sysClockGetres, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_GETTIMEOFDAY, Entry{"gettimeofday", sysGettimeofday, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_TIME, Entry{"time", sysTime, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_NANOSLEEP, Entry{"nanosleep", sysNanosleep, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_CLOCK_NANOSLEEP, Entry{"clock_nanosleep", sysClockNanosleep, Supported, "", []Arg{ArgInt, ArgHex, ArgHex, ArgHex}}},
}

// hostClock maps a guest clock id to the host clock that serves it. The
// CPU-time clocks read the calling thread's clock: the vCPU thread runs the
// guest, so guest time is accounted to it.
func hostClock(id int32) (int32, bool) {
	switch id {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_MONOTONIC_RAW,
		unix.CLOCK_REALTIME_COARSE, unix.CLOCK_MONOTONIC_COARSE, unix.CLOCK_BOOTTIME,
		unix.CLOCK_REALTIME_ALARM, unix.CLOCK_BOOTTIME_ALARM, unix.CLOCK_TAI:
		return id, true
	case unix.CLOCK_PROCESS_CPUTIME_ID, unix.CLOCK_THREAD_CPUTIME_ID:
		return unix.CLOCK_THREAD_CPUTIME_ID, true
	}
	return 0, false
}

func sysClockGettime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	clk, ok := hostClock(int32(a[0]))
	if !ok {
		return 0, unix.EINVAL
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(clk, &ts); err != nil {
		return 0, unix.EINVAL
	}
	return 0, copyOutStruct(t, a[1], &ts)
}

func sysClockGetres(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	clk, ok := hostClock(int32(a[0]))
	if !ok {
		return 0, unix.EINVAL
	}
	if a[1] == 0 {
		return 0, nil
	}
	var ts unix.Timespec
	if err := unix.ClockGetres(clk, &ts); err != nil {
		return 0, unix.EINVAL
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
	switch clk {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME, unix.CLOCK_TAI:
	case unix.CLOCK_THREAD_CPUTIME_ID:
		return 0, unix.EINVAL
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
