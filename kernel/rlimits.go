package kernel

import (
	"fmt"

	"golang.org/x/sys/unix"
)

const defaultNoFile = 1024

// Bounds of the initial stack, which is mapped whole (it does not grow on
// faults) and charged to the sandbox's memory like any mapping: at least
// what Linux maps at exec besides the arguments (stack_expand), at most
// maxStack or a quarter of the memory, whatever RLIMIT_STACK says above
// that.
const (
	minStack = 128 << 10
	maxStack = 64 << 20
)

func defaultLimits(mem uint64) [unix.RLIMIT_RTTIME + 1]unix.Rlimit {
	inf := uint64(unix.RLIM_INFINITY)
	var l [unix.RLIMIT_RTTIME + 1]unix.Rlimit
	for i := range l {
		l[i] = unix.Rlimit{Cur: inf, Max: inf}
	}
	l[unix.RLIMIT_STACK] = unix.Rlimit{Cur: stackSize, Max: inf}
	l[unix.RLIMIT_NOFILE] = unix.Rlimit{Cur: defaultNoFile, Max: defaultNoFile}
	l[unix.RLIMIT_AS] = unix.Rlimit{Cur: inf, Max: inf}
	l[unix.RLIMIT_DATA] = unix.Rlimit{Cur: mem, Max: mem}
	l[unix.RLIMIT_CORE] = unix.Rlimit{Cur: 0, Max: inf}
	l[unix.RLIMIT_NPROC] = unix.Rlimit{Cur: 1024, Max: 1024}
	l[unix.RLIMIT_SIGPENDING] = unix.Rlimit{Cur: 1024, Max: 1024}
	l[unix.RLIMIT_MEMLOCK] = unix.Rlimit{Cur: 8 << 20, Max: 8 << 20}
	l[unix.RLIMIT_MSGQUEUE] = unix.Rlimit{Cur: 819200, Max: 819200}
	return l
}

// Limit returns resource limit r (RLIMIT_*), or false for an unknown one.
func (tg *ThreadGroup) Limit(r int) (unix.Rlimit, bool) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if r < 0 || r >= len(tg.limits) {
		return unix.Rlimit{}, false
	}
	return tg.limits[r], true
}

// SetLimit changes resource limit r as setrlimit does: a soft limit above
// the hard one is EINVAL, RLIMIT_NOFILE above fs.nr_open and raising a
// hard limit without CAP_SYS_RESOURCE are EPERM. RLIMIT_CORE is kept but
// no core file is ever written.
func (tg *ThreadGroup) SetLimit(r int, l unix.Rlimit) error {
	if r < 0 || r >= len(tg.limits) || l.Cur > l.Max {
		return unix.EINVAL
	}
	if r == unix.RLIMIT_NOFILE && l.Max > uint64(tg.k.Sysctl().NrOpen()) {
		return unix.EPERM
	}
	capable := tg.Creds().Capable(unix.CAP_SYS_RESOURCE)
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if l.Max > tg.limits[r].Max && !capable {
		return unix.EPERM
	}
	tg.limits[r] = l
	if r == unix.RLIMIT_NOFILE {
		tg.fds.SetLimit(int(l.Cur))
	}
	if r == unix.RLIMIT_CPU {
		tg.armCPULimitLocked()
	}
	tg.applyLimitsLocked()
	return nil
}

// applyLimitsLocked hands the limits that others enforce to them: the
// address space's RLIMIT_AS and RLIMIT_DATA, and RLIMIT_FSIZE for writes.
func (tg *ThreadGroup) applyLimitsLocked() {
	if tg.mm != nil {
		tg.mm.SetVMLimits(tg.limits[unix.RLIMIT_AS].Cur, tg.limits[unix.RLIMIT_DATA].Cur)
	}
	tg.fileSizeLimit.Store(tg.limits[unix.RLIMIT_FSIZE].Cur)
}

// FileSizeLimit is RLIMIT_FSIZE's soft limit (unix.RLIM_INFINITY for none).
func (tg *ThreadGroup) FileSizeLimit() uint64 { return tg.fileSizeLimit.Load() }

// stackSizes returns the size of the initial stack mapping for a program
// started with the given RLIMIT_STACK soft limit and memory, and the limit
// itself, which places the mmap area.
func stackSizes(limit, mem uint64) (size, gap uint64) {
	return min(max(limit, minStack), maxStack, max(mem/4, minStack)), limit
}

// checkNProc refuses a new task with EAGAIN when the caller's real user
// already runs RLIMIT_NPROC tasks (threads included, as Linux counts
// them). Root and holders of CAP_SYS_RESOURCE or CAP_SYS_ADMIN are exempt.
func (tg *ThreadGroup) checkNProc() error {
	l, _ := tg.Limit(unix.RLIMIT_NPROC)
	c := tg.Creds()
	if l.Cur == unix.RLIM_INFINITY || c.UID == 0 || c.Capable(unix.CAP_SYS_RESOURCE) || c.Capable(unix.CAP_SYS_ADMIN) {
		return nil
	}
	if uint64(tg.k.userTasks(c.UID)) >= l.Cur {
		return unix.EAGAIN
	}
	return nil
}

// userTasks counts the tasks whose real user is uid; a zombie counts as
// one until it is reaped, as on Linux.
func (k *Kernel) userTasks(uid uint32) int {
	k.mu.Lock()
	tgs := make([]*ThreadGroup, 0, len(k.procs))
	for _, tg := range k.procs {
		tgs = append(tgs, tg)
	}
	k.mu.Unlock()
	n := 0
	for _, tg := range tgs {
		if tg.Creds().UID != uid {
			continue
		}
		tg.mu.Lock()
		n += max(len(tg.tasks), 1)
		tg.mu.Unlock()
	}
	return n
}

// setStartLimits applies the limits a program is started with, before it
// runs: each must have its soft limit within its hard one, and
// RLIMIT_NOFILE within fs.nr_open, as setrlimit requires.
func (tg *ThreadGroup) setStartLimits(limits map[int]unix.Rlimit) error {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for r, l := range limits {
		if r < 0 || r >= len(tg.limits) || l.Cur > l.Max {
			return fmt.Errorf("limit %d (%d > %d): %w", r, l.Cur, l.Max, unix.EINVAL)
		}
		if r == unix.RLIMIT_NOFILE && l.Max > uint64(tg.k.Sysctl().NrOpen()) {
			return fmt.Errorf("RLIMIT_NOFILE %d is above fs.nr_open: %w", l.Max, unix.EPERM)
		}
		tg.limits[r] = l
	}
	tg.fds.SetLimit(int(tg.limits[unix.RLIMIT_NOFILE].Cur))
	tg.armCPULimitLocked()
	tg.applyLimitsLocked()
	return nil
}
