package kernel

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// newSignalTestProcess is a process with one thread and no VM: enough for
// the signal, timer and credential machinery.
func newSignalTestProcess() (*ThreadGroup, *Task) {
	tg := newTestThreadGroup()
	tg.k = &Kernel{sysctl: newSysctl("test")}
	tg.pid = 1
	tg.tasks = map[int32]*Task{}
	tg.ctx, tg.cancel = context.WithCancel(context.Background())
	tg.fs.creds = rootCreds()
	t := &Task{tg: tg, tid: 1, intr: make(chan struct{})}
	t.callerCtx = taskContext{t: t, parent: tg.ctx}
	tg.tasks[t.tid] = t
	return tg, t
}

func TestScheduleCountsExpiries(t *testing.T) {
	start := time.Now()
	s := schedule{next: start, interval: 10 * time.Millisecond}
	require.Zero(t, s.advance(start.Add(-time.Nanosecond)))
	require.Equal(t, int64(1), s.advance(start))
	require.Equal(t, start.Add(10*time.Millisecond), s.next)
	require.Equal(t, int64(3), s.advance(start.Add(35*time.Millisecond)))
	require.Equal(t, start.Add(40*time.Millisecond), s.next)
	require.Equal(t, TimerSetting{Value: 5 * time.Millisecond, Interval: 10 * time.Millisecond}, s.setting(start.Add(35*time.Millisecond)))

	once := schedule{next: start}
	require.Equal(t, TimerSetting{Value: time.Second}, once.setting(start.Add(-time.Second)))
	require.Equal(t, TimerSetting{}, once.setting(start), "an expired one-shot timer reads as disarmed")
	require.Equal(t, int64(1), once.advance(start.Add(time.Hour)))
	require.True(t, once.next.IsZero())
}

func timerSignalPending(tg *ThreadGroup, sig int) func() bool {
	return func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		return tg.pending.set.Has(sig)
	}
}

func TestBlockedTimerSignalCountsOverruns(t *testing.T) {
	tg, task := newSignalTestProcess()
	usr1 := int(unix.SIGUSR1)
	task.sigmask = SigBit(usr1)
	id, err := task.CreateTimer(unix.CLOCK_MONOTONIC, &TimerEvent{Notify: SigevSignal, Signal: usr1, Value: 42})
	require.NoError(t, err)
	_, err = tg.SetTimer(id, TimerSetting{Value: time.Millisecond, Interval: time.Millisecond}, false)
	require.NoError(t, err)
	require.Eventually(t, timerSignalPending(tg, usr1), 5*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond)

	info, ok := task.TakeSignal(SigBit(usr1))
	require.True(t, ok)
	require.Equal(t, SiTimer, info.Code())
	require.Equal(t, uint32(id), binary.LittleEndian.Uint32(info[siTimerID:]))
	require.Equal(t, uint64(42), binary.LittleEndian.Uint64(info[siTimerValue:]))
	overrun := int32(binary.LittleEndian.Uint32(info[siTimerOverrun:]))
	require.GreaterOrEqual(t, overrun, int32(19), "the expiries in the 20 ms the signal was pending")
	got, err := tg.TimerOverrun(id)
	require.NoError(t, err)
	require.Equal(t, overrun, got)

	// One queue entry per timer, however often it expires.
	require.Eventually(t, timerSignalPending(tg, usr1), 5*time.Second, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	tg.mu.Lock()
	require.Len(t, tg.pending.queue[usr1], 1)
	tg.mu.Unlock()

	// Re-arming drops the signal of the old arming.
	_, err = tg.SetTimer(id, TimerSetting{Value: time.Hour}, false)
	require.NoError(t, err)
	_, ok = task.TakeSignal(SigBit(usr1))
	require.False(t, ok, "the signal of an old arming is dropped")
	s, err := tg.GetTimer(id)
	require.NoError(t, err)
	require.Greater(t, s.Value, 59*time.Minute)
	got, err = tg.TimerOverrun(id)
	require.NoError(t, err)
	require.Zero(t, got, "timer_settime resets the overrun count")

	// So does deleting the timer.
	_, err = tg.SetTimer(id, TimerSetting{Value: time.Millisecond}, false)
	require.NoError(t, err)
	require.Eventually(t, timerSignalPending(tg, usr1), 5*time.Second, time.Millisecond)
	require.NoError(t, tg.DeleteTimer(id))
	_, ok = task.TakeSignal(SigBit(usr1))
	require.False(t, ok)
	require.ErrorIs(t, tg.DeleteTimer(id), unix.EINVAL)
}

func TestPendingIntervalTimerSignalWaits(t *testing.T) {
	tg, task := newSignalTestProcess()
	alrm := int(unix.SIGALRM)
	task.sigmask = SigBit(alrm)
	tg.SetSigAction(alrm, SigAction{Handler: 0x1000})
	_, err := tg.SetITimer(unix.ITIMER_REAL, TimerSetting{Value: time.Millisecond, Interval: time.Millisecond})
	require.NoError(t, err)
	waiting := func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		return tg.timers.itimers[unix.ITIMER_REAL].waiting
	}
	require.Eventually(t, waiting, 5*time.Second, time.Millisecond, "it fires again while SIGALRM is pending")
	info, ok := task.TakeSignal(SigBit(alrm))
	require.True(t, ok)
	require.Equal(t, SiKernel, info.Code())
	require.False(t, waiting(), "taking the signal re-arms it")
	s, err := tg.ITimer(unix.ITIMER_REAL)
	require.NoError(t, err)
	require.Positive(t, s.Value)

	// An ignored signal is not sent; the timer waits too.
	tg.SetSigAction(alrm, SigAction{Handler: SigIgn})
	task.SetSigMask(0)
	require.Eventually(t, waiting, 5*time.Second, time.Millisecond)
	tg.stopTimers()
}

func TestForgedTimerSignalsAreDelivered(t *testing.T) {
	tg, task := newSignalTestProcess()
	id, err := task.CreateTimer(unix.CLOCK_MONOTONIC, nil)
	require.NoError(t, err)
	// rt_sigqueueinfo may queue an SI_TIMER siginfo naming a live timer:
	// it is the guest's, not the timer's, and is delivered as it is.
	info := NewSigInfo(int(unix.SIGALRM), SiTimer)
	info.SetTimer(id, 7, 1)
	task.sigmask = SigBit(int(unix.SIGALRM))
	require.NoError(t, tg.SendSignal(info))
	got, ok := task.TakeSignal(SigBit(int(unix.SIGALRM)))
	require.True(t, ok)
	require.Equal(t, info, got)
	overrun, err := tg.TimerOverrun(id)
	require.NoError(t, err)
	require.Zero(t, overrun)
}

func TestTimerCreateValidates(t *testing.T) {
	tg, task := newSignalTestProcess()
	_, err := task.CreateTimer(makeCPUClock(2, cpuClockSched, true), nil)
	require.ErrorIs(t, err, unix.EINVAL, "no such thread in the process")
	_, err = task.CreateTimer(unix.CLOCK_BOOTTIME_ALARM, nil)
	require.ErrorIs(t, err, unix.EOPNOTSUPP)
	_, err = task.CreateTimer(unix.CLOCK_MONOTONIC, &TimerEvent{Notify: SigevThreadID, Signal: 10, TID: 2})
	require.ErrorIs(t, err, unix.EINVAL, "no such thread in the process")
	_, err = task.CreateTimer(unix.CLOCK_MONOTONIC, &TimerEvent{Notify: SigevThreadID, Signal: 0, TID: 1})
	require.ErrorIs(t, err, unix.EINVAL)
	id, err := task.CreateTimer(unix.CLOCK_MONOTONIC, &TimerEvent{Notify: SigevNone, Signal: 999})
	require.NoError(t, err, "SIGEV_NONE ignores the signal number")
	require.Zero(t, id, "ids start at 0")
	id, err = task.CreateTimer(unix.CLOCK_MONOTONIC, nil)
	require.NoError(t, err)
	require.Equal(t, int32(1), id)

	require.NoError(t, tg.SetLimit(unix.RLIMIT_SIGPENDING, unix.Rlimit{Cur: 2, Max: 2}))
	_, err = task.CreateTimer(unix.CLOCK_MONOTONIC, nil)
	require.ErrorIs(t, err, unix.EAGAIN, "RLIMIT_SIGPENDING bounds the timers")
}

func TestExitStopsTimers(t *testing.T) {
	tg, task := newSignalTestProcess()
	_, err := tg.SetITimer(unix.ITIMER_REAL, TimerSetting{Value: time.Hour, Interval: time.Hour})
	require.NoError(t, err)
	id, err := task.CreateTimer(unix.CLOCK_REALTIME, nil)
	require.NoError(t, err)
	_, err = tg.SetTimer(id, TimerSetting{Value: time.Hour}, false)
	require.NoError(t, err)

	tg.execTimers()
	require.ErrorIs(t, tg.DeleteTimer(id), unix.EINVAL, "exec deletes the POSIX timers")
	s, err := tg.ITimer(unix.ITIMER_REAL)
	require.NoError(t, err)
	require.Equal(t, time.Hour, s.Interval, "and keeps the interval timers")

	tg.stopTimers()
	require.Nil(t, tg.timers.itimers[unix.ITIMER_REAL].timer)
	s, err = tg.ITimer(unix.ITIMER_REAL)
	require.NoError(t, err)
	require.Zero(t, s)
	_, err = tg.SetITimer(unix.ITIMER_REAL, TimerSetting{Value: time.Hour})
	require.NoError(t, err)
	require.Nil(t, tg.timers.itimers[unix.ITIMER_REAL].timer, "nothing is armed after exit")
	_, err = task.CreateTimer(unix.CLOCK_REALTIME, nil)
	require.ErrorIs(t, err, unix.EAGAIN)
}

func TestWaitedForSignalIsNeitherFatalNorIgnored(t *testing.T) {
	tg, task := newSignalTestProcess()
	usr1, chld := int(unix.SIGUSR1), int(unix.SIGCHLD)
	task.sigmask = SigBit(usr1) | SigBit(chld)
	// SIGUSR1's default action ends the process, and SIGCHLD's ignores
	// it, but the thread blocks both: a waiter gets them.
	for _, sig := range []int{usr1, chld} {
		require.False(t, task.hasWork(), "re-arms the interruption, as a return to user code does")
		got := make(chan SigInfo, 1)
		go func() {
			info, _ := task.WaitForSignal(SigBit(usr1)|SigBit(chld), nil)
			got <- info
		}()
		require.Eventually(t, func() bool {
			tg.mu.Lock()
			defer tg.mu.Unlock()
			return task.waitingFor != 0
		}, 5*time.Second, time.Millisecond)
		require.NoError(t, tg.SendSignal(NewSigInfo(sig, SiUser)))
		info := <-got
		require.Equal(t, sig, info.Signo())
		require.False(t, tg.Exiting())
	}
}

func TestAbsoluteTimeInThePastCountsMissedIntervals(t *testing.T) {
	tg, task := newSignalTestProcess()
	usr1 := int(unix.SIGUSR1)
	task.sigmask = SigBit(usr1)
	id, err := task.CreateTimer(unix.CLOCK_MONOTONIC, &TimerEvent{Notify: SigevSignal, Signal: usr1})
	require.NoError(t, err)
	var now unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &now))
	past := time.Duration(now.Nano()) - time.Second
	_, err = tg.SetTimer(id, TimerSetting{Value: past, Interval: 10 * time.Millisecond}, true)
	require.NoError(t, err)
	require.Eventually(t, timerSignalPending(tg, usr1), 5*time.Second, time.Millisecond)
	info, ok := task.TakeSignal(SigBit(usr1))
	require.True(t, ok)
	require.GreaterOrEqual(t, binary.LittleEndian.Uint32(info[siTimerOverrun:]), uint32(99), "a second's worth of 10 ms intervals")
	tg.stopTimers()
}

func TestCPUClockIDs(t *testing.T) {
	tg, task := newSignalTestProcess()
	tg.k.procs = map[int32]*ThreadGroup{1: tg}
	for _, c := range []struct {
		id     int32
		err    error
		thread bool
	}{
		{id: unix.CLOCK_PROCESS_CPUTIME_ID},
		{id: unix.CLOCK_THREAD_CPUTIME_ID, thread: true},
		{id: makeCPUClock(0, cpuClockProf, false)},
		{id: makeCPUClock(0, cpuClockVirt, true), thread: true},
		{id: makeCPUClock(1, cpuClockSched, true), thread: true},
		{id: makeCPUClock(1, cpuClockSched, false)},
		{id: makeCPUClock(0, cpuClockMax, false), err: unix.EINVAL},
		{id: makeCPUClock(2, cpuClockSched, true), err: unix.EINVAL},
		{id: makeCPUClock(2, cpuClockSched, false), err: unix.EINVAL},
		{id: unix.CLOCK_MONOTONIC, err: unix.EINVAL},
	} {
		clk, err := task.CPUClock(c.id, false)
		if c.err != nil {
			require.ErrorIs(t, err, c.err, "clock %d", c.id)
			continue
		}
		require.NoError(t, err, "clock %d", c.id)
		require.Equal(t, c.thread, clk.Of(task), "clock %d", c.id)
		require.Zero(t, clk.Read(), "a thread that never ran used no CPU time")
	}
}
