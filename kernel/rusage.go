package kernel

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what getrusage(2) and times(2) report: CPU times and the peak
// resident memory. A thread's CPU time is that of the host thread that
// runs it: its guest code and the kernel's work on its system calls
// (work a host worker does for it is not counted).
type Usage struct {
	User, Sys time.Duration
	// Sched is the precise CPU time (the scheduler's), of which User and
	// Sys are a sampled split.
	Sched  time.Duration
	MaxRSS uint64 // bytes
}

func (u *Usage) add(o Usage) {
	u.User += o.User
	u.Sys += o.Sys
	u.Sched += o.Sched
	u.MaxRSS = max(u.MaxRSS, o.MaxRSS)
}

// usageState is a process's accounting, guarded by tg.mu.
type usageState struct {
	peakRSS  uint64
	children Usage // waited-for children and their own waited-for children
}

// cpuState is a process's CPU time. Its lock is taken after tg.mu and
// before no other, so that a timer of any process can read any clock.
type cpuState struct {
	mu      sync.Mutex
	running map[*Task]struct{} // threads whose host thread is known
	exited  Usage              // threads that ended
}

// hostThreadUsage reads the CPU times of host thread tid of this process.
func hostThreadUsage(tid int32) Usage {
	read := func(which int32) time.Duration {
		var ts unix.Timespec
		if unix.ClockGettime(makeCPUClock(tid, which, true), &ts) != nil {
			return 0
		}
		return time.Duration(ts.Nano())
	}
	user, total, sched := read(cpuClockVirt), read(cpuClockProf), read(cpuClockSched)
	return Usage{User: user, Sys: max(total-user, 0), Sched: sched}
}

// since is what u adds to base, never less than nothing.
func (u Usage) since(base Usage) Usage {
	return Usage{User: max(u.User-base.User, 0), Sys: max(u.Sys-base.Sys, 0), Sched: max(u.Sched-base.Sched, 0)}
}

// startCPU records that the calling host thread runs t, from now: the Go
// runtime reuses threads, so one may come with CPU time of earlier tasks.
func (tg *ThreadGroup) startCPU(t *Task) {
	tid := int32(unix.Gettid())
	base := hostThreadUsage(tid)
	tg.cpu.mu.Lock()
	defer tg.cpu.mu.Unlock()
	if tg.cpu.running == nil {
		tg.cpu.running = map[*Task]struct{}{}
	}
	t.hostTID, t.hostBase = tid, base
	tg.cpu.running[t] = struct{}{}
}

// hostUsageLocked is what t's host thread used for t; tg.cpu.mu is held.
func (t *Task) hostUsageLocked() Usage { return hostThreadUsage(t.hostTID).since(t.hostBase) }

// endCPU adds the CPU time of t, whose run loop ends on its own host
// thread, to its process's.
func (tg *ThreadGroup) endCPU(t *Task) {
	tg.cpu.mu.Lock()
	defer tg.cpu.mu.Unlock()
	if t.hostTID == 0 {
		return
	}
	tg.cpu.exited.add(t.hostUsageLocked())
	delete(tg.cpu.running, t)
	t.hostTID = 0
}

// threadCPU is t's CPU time so far; zero before and after its thread runs.
func (t *Task) threadCPU() Usage {
	cpu := &t.tg.cpu
	cpu.mu.Lock()
	defer cpu.mu.Unlock()
	if t.hostTID == 0 {
		return Usage{}
	}
	return t.hostUsageLocked()
}

// processCPU is the CPU time of tg's threads, live and ended.
func (tg *ThreadGroup) processCPU() Usage {
	tg.cpu.mu.Lock()
	defer tg.cpu.mu.Unlock()
	u := tg.cpu.exited
	for t := range tg.cpu.running {
		u.add(t.hostUsageLocked())
	}
	return u
}

// runningThreads counts the threads that may be using CPU time.
func (tg *ThreadGroup) runningThreads() int {
	tg.cpu.mu.Lock()
	defer tg.cpu.mu.Unlock()
	return len(tg.cpu.running)
}

// ThreadUsage implements RUSAGE_THREAD.
func (t *Task) ThreadUsage() Usage {
	u := t.threadCPU()
	u.MaxRSS = t.tg.notePeak(t.tg.MM().Resident())
	return u
}

// Usage implements RUSAGE_SELF: the process's threads, live and ended.
func (tg *ThreadGroup) Usage() Usage {
	u := tg.processCPU()
	u.MaxRSS = tg.notePeak(tg.MM().Resident())
	return u
}

// ChildrenUsage implements RUSAGE_CHILDREN.
func (tg *ThreadGroup) ChildrenUsage() Usage {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.usage.children
}

// notePeak records rss as a peak if it is one and returns the peak.
func (tg *ThreadGroup) notePeak(rss uint64) uint64 {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.usage.peakRSS = max(tg.usage.peakRSS, rss)
	return tg.usage.peakRSS
}

// totalUsage is what an exited process used, its waited-for children
// included: what wait4 reports and its parent's children total gains.
func (tg *ThreadGroup) totalUsage() Usage {
	u := tg.processCPU()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	u.MaxRSS = tg.usage.peakRSS
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
