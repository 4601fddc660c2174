package kernel

import (
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what getrusage(2) and times(2) report: CPU times and the peak
// resident memory. A thread's CPU time is that of the host thread that
// runs it: its guest code and the kernel's work on its system calls
// (work a host worker does for it is not counted).
type Usage struct {
	User, Sys time.Duration
	MaxRSS    uint64 // bytes
}

func (u *Usage) add(o Usage) {
	u.User += o.User
	u.Sys += o.Sys
	u.MaxRSS = max(u.MaxRSS, o.MaxRSS)
}

// usageState is a process's accounting, guarded by tg.mu.
type usageState struct {
	exited   Usage // threads that ended; MaxRSS is the process's
	children Usage // waited-for children and their own waited-for children
}

// Per-thread CPU clocks (linux/posix-timers.h): MAKE_THREAD_CPUCLOCK.
const (
	cpuClockProf      = 0 // user and system time
	cpuClockVirt      = 1 // user time
	cpuClockPerThread = 4
)

// hostThreadUsage reads the CPU times of host thread tid of this process.
func hostThreadUsage(tid int32) Usage {
	read := func(clk int32) time.Duration {
		var ts unix.Timespec
		if unix.ClockGettime(^tid<<3|cpuClockPerThread|clk, &ts) != nil {
			return 0
		}
		return time.Duration(ts.Nano())
	}
	user, total := read(cpuClockVirt), read(cpuClockProf)
	return Usage{User: user, Sys: max(total-user, 0)}
}

// threadUsageLocked is t's CPU time so far; zero before its thread runs.
func (t *Task) threadUsageLocked() Usage {
	if t.hostTID == 0 {
		return Usage{}
	}
	return hostThreadUsage(t.hostTID)
}

// ThreadUsage implements RUSAGE_THREAD.
func (t *Task) ThreadUsage() Usage {
	tg := t.tg
	rss := tg.MM().Resident()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	u := t.threadUsageLocked()
	u.MaxRSS = tg.notePeakLocked(rss)
	return u
}

// Usage implements RUSAGE_SELF: the process's threads, live and ended.
func (tg *ThreadGroup) Usage() Usage {
	rss := tg.MM().Resident()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	u := tg.usage.exited
	for _, t := range tg.tasks {
		u.add(t.threadUsageLocked())
	}
	u.MaxRSS = tg.notePeakLocked(rss)
	return u
}

// ChildrenUsage implements RUSAGE_CHILDREN.
func (tg *ThreadGroup) ChildrenUsage() Usage {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.usage.children
}

// notePeakLocked records rss as a peak if it is one and returns the peak.
func (tg *ThreadGroup) notePeakLocked(rss uint64) uint64 {
	tg.usage.exited.MaxRSS = max(tg.usage.exited.MaxRSS, rss)
	return tg.usage.exited.MaxRSS
}

// threadEndedLocked adds the CPU time of t, whose run loop ends on its own
// host thread, to its process's.
func (tg *ThreadGroup) threadEndedLocked(t *Task) {
	tg.usage.exited.add(t.threadUsageLocked())
	t.hostTID = 0
}

// totalUsage is what an exited process used, its waited-for children
// included: what wait4 reports and its parent's children total gains.
func (tg *ThreadGroup) totalUsage() Usage {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	u := tg.usage.exited
	u.add(tg.usage.children)
	return u
}

// reaped adds what a child that wait(2) reaped used to tg's children.
func (tg *ThreadGroup) reaped(c *ThreadGroup) {
	u := c.totalUsage()
	tg.mu.Lock()
	tg.usage.children.add(u)
	tg.mu.Unlock()
}

// SystemInfo is what sysinfo(2) reports about the sandbox.
type SystemInfo struct {
	Uptime            time.Duration
	TotalRAM, FreeRAM uint64
	Threads           int
}

// SystemInfo reports the sandbox's uptime, its memory (the limit, less
// what the guest uses) and its thread count.
func (k *Kernel) SystemInfo() SystemInfo {
	total := k.cfg.MemoryLimit
	used := k.phys.FramesInUse() * uint64(unix.Getpagesize())
	k.mu.Lock()
	threads := len(k.tasks)
	k.mu.Unlock()
	return SystemInfo{Uptime: time.Since(k.bootTime), TotalRAM: total, FreeRAM: total - min(total, used), Threads: threads}
}
