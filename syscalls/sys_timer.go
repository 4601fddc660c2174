package syscalls

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

const itimerNote = "ITIMER_VIRTUAL and ITIMER_PROF count the CPU time getrusage reports"

var timerEntries = []entryAt{
	{unix.SYS_ALARM, Entry{"alarm", sysAlarm, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_SETITIMER, Entry{"setitimer", sysSetitimer, Supported, itimerNote, []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_GETITIMER, Entry{"getitimer", sysGetitimer, Supported, itimerNote, []Arg{ArgInt, ArgHex}}},
	{unix.SYS_TIMER_CREATE, Entry{"timer_create", sysTimerCreate, Supported, "CPU-time clocks (process, thread, clock_getcpuclockid's) are checked at least every 50 ms; the alarm, raw and coarse clocks are EOPNOTSUPP, as on Linux without an RTC", []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_TIMER_SETTIME, Entry{"timer_settime", sysTimerSettime, Supported, "", []Arg{ArgInt, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_TIMER_GETTIME, Entry{"timer_gettime", sysTimerGettime, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_TIMER_GETOVERRUN, Entry{"timer_getoverrun", sysTimerGetoverrun, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_TIMER_DELETE, Entry{"timer_delete", sysTimerDelete, Supported, "", []Arg{ArgInt}}},
}

// maxDuration stands in for times too long for a time.Duration (about
// 292 years): such a timer never fires in practice.
const maxDuration = time.Duration(math.MaxInt64)

// duration converts seconds and nanoseconds, already validated, saturating.
func duration(sec, nsec int64) time.Duration {
	if sec > int64(maxDuration/time.Second)-1 {
		return maxDuration
	}
	return time.Duration(sec)*time.Second + time.Duration(nsec)
}

// timespecValid is Linux's timespec64_valid.
func timespecValid(ts unix.Timespec) bool { return ts.Sec >= 0 && ts.Nsec >= 0 && ts.Nsec < 1e9 }

func timevalDuration(tv unix.Timeval) (time.Duration, error) {
	if tv.Sec < 0 || tv.Usec < 0 || tv.Usec >= 1e6 {
		return 0, unix.EINVAL
	}
	return duration(tv.Sec, tv.Usec*1000), nil
}

// toTimeval truncates to microseconds, as Linux's put_itimerval does.
func toTimeval(d time.Duration) unix.Timeval {
	return unix.Timeval{Sec: int64(d / time.Second), Usec: int64(d%time.Second) / 1000}
}

func toItimerval(s kernel.TimerSetting) unix.Itimerval {
	return unix.Itimerval{Interval: toTimeval(s.Interval), Value: toTimeval(s.Value)}
}

func toItimerspec(s kernel.TimerSetting) unix.ItimerSpec {
	return unix.ItimerSpec{Interval: unix.NsecToTimespec(int64(s.Interval)), Value: unix.NsecToTimespec(int64(s.Value))}
}

// sysAlarm arms ITIMER_REAL for seconds and returns the seconds that were
// left, rounded as Linux rounds them: up from half a second, and never 0
// for a timer still armed.
func sysAlarm(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	seconds := min(uint32(a[0]), math.MaxInt32)
	old, err := t.ThreadGroup().SetITimer(unix.ITIMER_REAL, kernel.TimerSetting{Value: time.Duration(seconds) * time.Second})
	if err != nil {
		return 0, err
	}
	sec, nsec := old.Value/time.Second, old.Value%time.Second
	if sec == 0 && nsec != 0 || nsec >= time.Second/2 {
		sec++
	}
	return uint64(sec), nil
}

func sysSetitimer(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var s kernel.TimerSetting
	if a[1] != 0 {
		var v unix.Itimerval
		if err := copyInStruct(t, a[1], &v); err != nil {
			return 0, err
		}
		var err error
		if s.Value, err = timevalDuration(v.Value); err != nil {
			return 0, err
		}
		if s.Interval, err = timevalDuration(v.Interval); err != nil {
			return 0, err
		}
	}
	old, err := t.ThreadGroup().SetITimer(int(int32(a[0])), s)
	if err != nil || a[2] == 0 {
		return 0, err
	}
	v := toItimerval(old)
	return 0, copyOutStruct(t, a[2], &v)
}

func sysGetitimer(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, err := t.ThreadGroup().ITimer(int(int32(a[0])))
	if err != nil {
		return 0, err
	}
	v := toItimerval(s)
	return 0, copyOutStruct(t, a[1], &v)
}

// sigeventSize is the size of struct sigevent, which Linux copies whole.
const sigeventSize = 64

func sysTimerCreate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var ev *kernel.TimerEvent
	if a[1] != 0 {
		var b [sigeventSize]byte
		if err := copyIn(t, a[1], b[:]); err != nil {
			return 0, err
		}
		le := binary.LittleEndian
		ev = &kernel.TimerEvent{
			Value:  le.Uint64(b[0:]),
			Signal: int(int32(le.Uint32(b[8:]))),
			Notify: int(int32(le.Uint32(b[12:]))),
			TID:    int32(le.Uint32(b[16:])),
		}
	}
	tg := t.ThreadGroup()
	id, err := t.CreateTimer(int32(a[0]), ev)
	if err != nil {
		return 0, err
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(id))
	if err := copyOut(t, a[2], b[:]); err != nil {
		tg.DeleteTimer(id)
		return 0, err
	}
	return 0, nil
}

func sysTimerSettime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[2] == 0 {
		return 0, unix.EINVAL
	}
	var spec unix.ItimerSpec
	if err := copyInStruct(t, a[2], &spec); err != nil {
		return 0, err
	}
	if !timespecValid(spec.Value) || !timespecValid(spec.Interval) {
		return 0, unix.EINVAL
	}
	s := kernel.TimerSetting{Value: duration(spec.Value.Sec, spec.Value.Nsec), Interval: duration(spec.Interval.Sec, spec.Interval.Nsec)}
	old, err := t.ThreadGroup().SetTimer(int32(a[0]), s, a[1]&unix.TIMER_ABSTIME != 0)
	if err != nil || a[3] == 0 {
		return 0, err
	}
	v := toItimerspec(old)
	return 0, copyOutStruct(t, a[3], &v)
}

func sysTimerGettime(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, err := t.ThreadGroup().GetTimer(int32(a[0]))
	if err != nil {
		return 0, err
	}
	v := toItimerspec(s)
	return 0, copyOutStruct(t, a[1], &v)
}

func sysTimerGetoverrun(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	n, err := t.ThreadGroup().TimerOverrun(int32(a[0]))
	return uint64(n), err
}

func sysTimerDelete(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().DeleteTimer(int32(a[0]))
}
