package syscalls

import (
	"encoding/binary"
	"io"
	"math"
	"math/bits"
	"runtime"
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var processEntries = []entryAt{
	{unix.SYS_EXIT, Entry{"exit", sysExit, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_EXIT_GROUP, Entry{"exit_group", sysExitGroup, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_GETPID, Entry{"getpid", sysGetpid, Supported, "", nil}},
	{unix.SYS_GETPPID, Entry{"getppid", sysGetppid, Supported, "", nil}},
	{unix.SYS_GETTID, Entry{"gettid", sysGettid, Supported, "", nil}},
	{unix.SYS_ARCH_PRCTL, Entry{"arch_prctl", sysArchPrctl, Partial, "ARCH_SET_FS, ARCH_GET_FS", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_SET_TID_ADDRESS, Entry{"set_tid_address", sysSetTidAddress, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_SET_ROBUST_LIST, Entry{"set_robust_list", sysSetRobustList, Supported, "", []Arg{ArgHex, ArgInt}}},
	{unix.SYS_RSEQ, Entry{"rseq", nil, Unsupported, "ENOSYS: libc falls back", nil}},
	{unix.SYS_PRLIMIT64, Entry{"prlimit64", sysPrlimit, Partial, "the caller's process only (by its pid or a thread's id), others ESRCH; " + limitsNote, []Arg{ArgInt, ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_GETRLIMIT, Entry{"getrlimit", sysGetrlimit, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_SETRLIMIT, Entry{"setrlimit", sysSetrlimit, Partial, limitsNote, []Arg{ArgInt, ArgHex}}},
	{unix.SYS_GETRANDOM, Entry{"getrandom", sysGetrandom, Supported, "", []Arg{ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_UNAME, Entry{"uname", sysUname, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_PERSONALITY, Entry{"personality", sysPersonality, Partial, "the value is kept per thread, inherited and kept across execve; of its flags only ADDR_NO_RANDOMIZE has an effect (execve places the program, interpreter, stack and mmap base without randomisation)", []Arg{ArgHex}}},
	{unix.SYS_PRCTL, Entry{"prctl", sysPrctl, Partial, "PR_SET_NAME, PR_GET_NAME, PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_SET_DUMPABLE, PR_GET_DUMPABLE, PR_SET_KEEPCAPS, PR_GET_KEEPCAPS, PR_CAPBSET_READ; others EINVAL", []Arg{ArgInt, ArgHex, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_GETRUSAGE, Entry{"getrusage", sysGetrusage, Partial, "CPU times are those of the host threads that run the guest's; maxrss is sampled; the other fields are 0", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_TIMES, Entry{"times", sysTimes, Partial, "CPU times as getrusage's", []Arg{ArgHex}}},
	{unix.SYS_SYSINFO, Entry{"sysinfo", sysSysinfo, Partial, "RAM is the sandbox's memory limit; no swap; load averages are 0", []Arg{ArgHex}}},
	{unix.SYS_SCHED_YIELD, Entry{"sched_yield", sysSchedYield, Supported, "", nil}},
	{unix.SYS_SCHED_GETAFFINITY, Entry{"sched_getaffinity", sysSchedGetaffinity, Supported, "", []Arg{ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_GETPRIORITY, Entry{"getpriority", sysGetpriority, Supported, "", []Arg{ArgInt, ArgInt}}},
	{unix.SYS_SETPRIORITY, Entry{"setpriority", sysSetpriority, Partial, "the nice value is kept, inherited and reported; host threads are not rescheduled by it", []Arg{ArgInt, ArgInt, ArgInt}}},
	{unix.SYS_GETCPU, Entry{"getcpu", sysGetcpu, Partial, "the lowest CPU of the thread's affinity mask, node 0", []Arg{ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_SCHED_SETAFFINITY, Entry{"sched_setaffinity", sysSchedSetaffinity, Partial, "the mask is kept per thread and reported back; threads are not pinned to host CPUs", []Arg{ArgInt, ArgInt, ArgHex}}},
}

// arch_prctl codes (asm/prctl.h).
const (
	archSetFS = 0x1002
	archGetFS = 0x1003
)

func sysExit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	t.ExitThread(int(a[0] & 0xff))
	return 0, nil
}

func sysExitGroup(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	t.ThreadGroup().Exit(kernel.ExitStatus{Code: int(a[0] & 0xff)})
	return 0, nil
}

func sysGetpid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().PID()), nil
}

func sysGetppid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().PPID()), nil
}

func sysGettid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) { return uint64(t.TID()), nil }

func sysArchPrctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	switch a[0] {
	case archSetFS:
		if a[1] >= kernel.UserTop {
			return 0, unix.EPERM
		}
		return 0, t.SetFSBase(a[1])
	case archGetFS:
		return 0, copyOutUint64(t, a[1], t.FSBase())
	}
	return 0, unix.EINVAL
}

func sysSetTidAddress(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	t.SetClearChildTID(a[0])
	return uint64(t.TID()), nil
}

func sysSetRobustList(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const robustListHeadSize = 24
	if a[1] != robustListHeadSize {
		return 0, unix.EINVAL
	}
	t.SetRobustList(a[0])
	return 0, nil
}

// limitsNote says which resource limits the kernel enforces.
const limitsNote = "enforced: NOFILE (hard limit at most fs.nr_open), FSIZE (EFBIG and SIGXFSZ), AS and DATA (mmap, mremap, mprotect, brk), " +
	"STACK (the stack and mmap base of the next exec; the stack is mapped whole, at most 64 MiB), NPROC (non-root), SIGPENDING, " +
	"CPU (SIGXCPU at the soft limit and each second after, SIGKILL at the hard one); " +
	"CORE is kept but no core file is written; the others are kept only"

func prlimit(t *kernel.Task, pid int32, resource int, newAddr, oldAddr uint64) error {
	tg := t.ThreadGroup()
	if pid != 0 && t.Kernel().ProcessOf(pid) != tg {
		return unix.ESRCH
	}
	old, ok := tg.Limit(resource)
	if !ok {
		return unix.EINVAL
	}
	if newAddr != 0 {
		var l unix.Rlimit
		if err := copyInStruct(t, newAddr, &l); err != nil {
			return err
		}
		if err := tg.SetLimit(resource, l); err != nil {
			return err
		}
	}
	if oldAddr != 0 {
		return copyOutStruct(t, oldAddr, &old)
	}
	return nil
}

func sysPrlimit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, prlimit(t, int32(a[0]), int(int32(a[1])), a[2], a[3])
}

func sysGetrlimit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, prlimit(t, 0, int(int32(a[0])), 0, a[1])
}

func sysSetrlimit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, prlimit(t, 0, int(int32(a[0])), a[1], 0)
}

func sysGetrandom(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const known = unix.GRND_NONBLOCK | unix.GRND_RANDOM | unix.GRND_INSECURE
	flags := a[2]
	if flags&^known != 0 || flags&(unix.GRND_RANDOM|unix.GRND_INSECURE) == unix.GRND_RANDOM|unix.GRND_INSECURE {
		return 0, unix.EINVAL
	}
	const maxGetrandom = 1<<25 - 1
	n := min(a[1], maxGetrandom)
	random := t.Kernel().Config().Random
	return transfer(t, a[0], n, true, func(b []byte) (int, error) {
		return io.ReadFull(random, b)
	})
}

func utsField(dst []byte, s string) {
	copy(dst[:len(dst)-1], s)
}

func sysPersonality(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	old := t.Personality()
	// 0xffffffff only queries.
	if p := uint32(a[0]); p != 0xffffffff {
		t.SetPersonality(p)
	}
	return uint64(old), nil
}

func sysUname(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var u unix.Utsname
	utsField(u.Sysname[:], "Linux")
	sysctl := t.Kernel().Sysctl()
	utsField(u.Nodename[:], sysctl.Hostname())
	utsField(u.Release[:], kernel.Release)
	utsField(u.Version[:], kernel.Version)
	utsField(u.Machine[:], "x86_64")
	utsField(u.Domainname[:], sysctl.Domainname())
	return 0, copyOutStruct(t, a[0], &u)
}

func sysSchedYield(*kernel.Task, *kernel.SyscallArgs) (uint64, error) {
	runtime.Gosched()
	return 0, nil
}

// affinityTarget resolves the thread argument of sched_[gs]etaffinity:
// any thread of the sandbox, 0 meaning the caller.
func affinityTarget(t *kernel.Task, tid int32) (*kernel.Task, error) {
	if tid == 0 {
		return t, nil
	}
	o := t.Kernel().Thread(tid)
	if o == nil {
		return nil, unix.ESRCH
	}
	return o, nil
}

// cpuMaskSize is the size in bytes of a CPU mask of the sandbox, Linux's
// cpumask_size(): whole longs.
func cpuMaskSize() uint32 { return uint32((kernel.CPUs() + 63) / 64 * 8) }

func sysSchedGetaffinity(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	size := uint32(a[1])
	if size*8 < uint32(kernel.CPUs()) || size%8 != 0 {
		return 0, unix.EINVAL
	}
	target, err := affinityTarget(t, int32(a[0]))
	if err != nil {
		return 0, err
	}
	n := min(size, cpuMaskSize())
	mask := make([]byte, cpuMaskSize())
	for i, w := range target.Affinity() {
		binary.LittleEndian.PutUint64(mask[i*8:], w)
	}
	return uint64(n), copyOut(t, a[2], mask[:n])
}

// sysSchedSetaffinity reads the mask first (EFAULT), then finds the thread
// (ESRCH), as Linux does; bytes past the sandbox's CPUs are ignored and a
// shorter mask lacks the CPUs it leaves out.
func sysSchedSetaffinity(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	b := make([]byte, cpuMaskSize())
	if err := copyIn(t, a[2], b[:min(uint32(a[1]), cpuMaskSize())]); err != nil {
		return 0, err
	}
	target, err := affinityTarget(t, int32(a[0]))
	if err != nil {
		return 0, err
	}
	mask := make([]uint64, len(b)/8)
	for i := range mask {
		mask[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	return 0, target.SetAffinity(mask)
}

// priorityTargets returns the threads that getpriority and setpriority
// act on: one thread (PRIO_PROCESS), every thread of a process group
// (PRIO_PGRP) or of a real user (PRIO_USER); who 0 means the caller's.
// It is EINVAL for another which, and empty when nothing matches.
func priorityTargets(t *kernel.Task, which, who int32) ([]*kernel.Task, error) {
	k := t.Kernel()
	switch which {
	case unix.PRIO_PROCESS:
		if who == 0 {
			return []*kernel.Task{t}, nil
		}
		if o := k.Thread(who); o != nil {
			return []*kernel.Task{o}, nil
		}
		return nil, nil
	case unix.PRIO_PGRP:
		if who == 0 {
			who = t.ThreadGroup().ProcessGroup()
		}
		var out []*kernel.Task
		for _, tg := range k.Processes() {
			if tg.ProcessGroup() == who {
				out = append(out, tg.Threads()...)
			}
		}
		return out, nil
	case unix.PRIO_USER:
		uid := uint32(who)
		if who == 0 {
			uid = creds(t).UID
		}
		var out []*kernel.Task
		for _, tg := range k.Processes() {
			if tg.Creds().UID == uid {
				out = append(out, tg.Threads()...)
			}
		}
		return out, nil
	}
	return nil, unix.EINVAL
}

// sysGetpriority returns 20 minus the lowest nice value of the targets
// (1 to 40), as the raw system call does.
func sysGetpriority(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	targets, err := priorityTargets(t, int32(a[0]), int32(a[1]))
	if err != nil {
		return 0, err
	}
	if len(targets) == 0 {
		return 0, unix.ESRCH
	}
	best := kernel.MaxNice
	for _, o := range targets {
		best = min(best, o.Nice())
	}
	return uint64(20 - best), nil
}

// sysSetpriority sets the clamped nice value of each target as Linux
// does: EPERM for a thread of another user without CAP_SYS_NICE, EACCES
// for lowering a value past RLIMIT_NICE without it; a failure for one
// target does not stop the others, and is what the call returns.
func sysSetpriority(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	targets, err := priorityTargets(t, int32(a[0]), int32(a[1]))
	if err != nil {
		return 0, err
	}
	nice := min(max(int(int32(a[2])), kernel.MinNice), kernel.MaxNice)
	c := creds(t)
	capable := c.Capable(unix.CAP_SYS_NICE)
	result := error(unix.ESRCH)
	for _, o := range targets {
		oc := o.ThreadGroup().Creds()
		if oc.UID != c.EUID && oc.EUID != c.EUID && !capable {
			result = unix.EPERM
			continue
		}
		if nice < o.Nice() && !capable {
			if limit, _ := o.ThreadGroup().Limit(unix.RLIMIT_NICE); uint64(20-nice) > limit.Cur {
				result = unix.EACCES
				continue
			}
		}
		if result == unix.ESRCH {
			result = nil
		}
		o.SetNice(nice)
	}
	return 0, result
}

// sysGetcpu reports the lowest CPU the thread may run on: a sandbox
// thread is not bound to one host CPU, and this answer stays within the
// mask that sched_setaffinity set. There is one NUMA node.
func sysGetcpu(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	cpu := uint32(0)
	for i, w := range t.Affinity() {
		if w != 0 {
			cpu = uint32(i*64 + bits.TrailingZeros64(w))
			break
		}
	}
	if a[0] != 0 {
		if err := putInt(t, a[0], int32(cpu)); err != nil {
			return 0, err
		}
	}
	if a[1] != 0 {
		if err := putInt(t, a[1], 0); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// putInt writes a C int to guest memory (the PR_GET_* that return through
// a pointer).
func putInt(t *kernel.Task, addr uint64, v int32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return copyOut(t, addr, b[:])
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func sysPrctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const taskCommLen = 16
	tg := t.ThreadGroup()
	switch a[0] {
	case unix.PR_SET_PDEATHSIG:
		if !validSignalOrZero(a[1]) {
			return 0, unix.EINVAL
		}
		tg.SetParentDeathSignal(int(a[1]))
		return 0, nil
	case unix.PR_GET_PDEATHSIG:
		return 0, putInt(t, a[1], int32(tg.ParentDeathSignal()))
	case unix.PR_SET_CHILD_SUBREAPER:
		tg.SetChildSubreaper(a[1] != 0)
		return 0, nil
	case unix.PR_GET_CHILD_SUBREAPER:
		return 0, putInt(t, a[1], boolInt(tg.ChildSubreaper()))
	case unix.PR_SET_NO_NEW_PRIVS:
		if a[1] != 1 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
			return 0, unix.EINVAL
		}
		tg.SetNoNewPrivs()
		return 0, nil
	case unix.PR_GET_NO_NEW_PRIVS:
		if a[1] != 0 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
			return 0, unix.EINVAL
		}
		return uint64(boolInt(tg.Creds().NoNewPrivs)), nil
	case unix.PR_SET_DUMPABLE:
		if a[1] != kernel.DumpDisable && a[1] != kernel.DumpUser {
			return 0, unix.EINVAL
		}
		tg.SetDumpable(int(a[1]))
		return 0, nil
	case unix.PR_GET_DUMPABLE:
		return uint64(tg.Creds().Dumpable), nil
	case unix.PR_SET_KEEPCAPS:
		if a[1] > 1 {
			return 0, unix.EINVAL
		}
		tg.SetKeepCaps(a[1] == 1)
		return 0, nil
	case unix.PR_GET_KEEPCAPS:
		return uint64(boolInt(tg.Creds().KeepCaps)), nil
	case unix.PR_CAPBSET_READ:
		if a[1] > unix.CAP_LAST_CAP {
			return 0, unix.EINVAL
		}
		return tg.Creds().CapBounding >> a[1] & 1, nil
	case unix.PR_SET_NAME:
		var name [taskCommLen]byte
		n, _ := t.ThreadGroup().MM().CopyIn(name[:taskCommLen-1], a[1])
		if n == 0 {
			return 0, unix.EFAULT
		}
		t.SetName(name[:n])
		return 0, nil
	case unix.PR_GET_NAME:
		var name [taskCommLen]byte
		copy(name[:taskCommLen-1], t.Name())
		return 0, copyOut(t, a[1], name[:])
	}
	return 0, unix.EINVAL
}

// clockTicks is USER_HZ, the unit of times(2).
const clockTicks = 100

func toClockTicks(d time.Duration) int64 { return int64(d / (time.Second / clockTicks)) }

func sysGetrusage(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	var u kernel.Usage
	switch int32(a[0]) {
	case unix.RUSAGE_SELF:
		u = t.ThreadGroup().Usage()
	case unix.RUSAGE_CHILDREN:
		u = t.ThreadGroup().ChildrenUsage()
	case unix.RUSAGE_THREAD:
		u = t.ThreadUsage()
	default:
		return 0, unix.EINVAL
	}
	return 0, copyOutRusage(t, a[1], u)
}

// copyOutRusage writes u as a struct rusage; the fields kvmbox does not
// count are zero.
func copyOutRusage(t *kernel.Task, addr uint64, u kernel.Usage) error {
	r := unix.Rusage{
		Utime:  unix.NsecToTimeval(int64(u.User)),
		Stime:  unix.NsecToTimeval(int64(u.Sys)),
		Maxrss: int64(u.MaxRSS / 1024),
	}
	return copyOutStruct(t, addr, &r)
}

// sysTimes returns clock ticks since the sandbox booted.
func sysTimes(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[0] != 0 {
		tg := t.ThreadGroup()
		self, children := tg.Usage(), tg.ChildrenUsage()
		tms := unix.Tms{
			Utime: toClockTicks(self.User), Stime: toClockTicks(self.Sys),
			Cutime: toClockTicks(children.User), Cstime: toClockTicks(children.Sys),
		}
		if err := copyOutStruct(t, a[0], &tms); err != nil {
			return 0, err
		}
	}
	return uint64(toClockTicks(time.Since(t.Kernel().BootTime()))), nil
}

func sysSysinfo(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	k := t.Kernel()
	s := k.SystemInfo()
	up := s.Uptime
	info := unix.Sysinfo_t{
		// Rounded up, as Linux does.
		Uptime:   int64((up + time.Second - 1) / time.Second),
		Totalram: s.TotalRAM,
		Freeram:  s.FreeRAM,
		Procs:    uint16(min(s.Threads, math.MaxUint16)),
		Unit:     1,
	}
	return 0, copyOutStruct(t, a[0], &info)
}
