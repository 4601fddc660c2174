package syscalls

import (
	"math/bits"
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// eventEntries are the calls that wait for files to be ready, and the
// files made to be waited for.
var eventEntries = []entryAt{
	{unix.SYS_POLL, Entry{"poll", sysPoll, Supported, "", []Arg{ArgHex, ArgInt, ArgInt}}},
	{unix.SYS_PPOLL, Entry{"ppoll", sysPpoll, Supported, "", []Arg{ArgHex, ArgInt, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_SELECT, Entry{"select", sysSelect, Supported, "", []Arg{ArgInt, ArgHex, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_PSELECT6, Entry{"pselect6", sysPselect6, Supported, "", []Arg{ArgInt, ArgHex, ArgHex, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_EPOLL_CREATE, Entry{"epoll_create", sysEpollCreate, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_EPOLL_CREATE1, Entry{"epoll_create1", sysEpollCreate1, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_EPOLL_CTL, Entry{"epoll_ctl", sysEpollCtl, Partial, "EPOLLEXCLUSIVE is accepted, but every waiter is woken; EPOLLWAKEUP is ignored", []Arg{ArgInt, ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_EPOLL_WAIT, Entry{"epoll_wait", sysEpollWait, Partial, epollWaitNote, []Arg{ArgInt, ArgHex, ArgInt, ArgInt}}},
	{unix.SYS_EPOLL_PWAIT, Entry{"epoll_pwait", sysEpollPwait, Partial, epollWaitNote, []Arg{ArgInt, ArgHex, ArgInt, ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_EPOLL_PWAIT2, Entry{"epoll_pwait2", sysEpollPwait2, Partial, epollWaitNote, []Arg{ArgInt, ArgHex, ArgInt, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_EVENTFD, Entry{"eventfd", sysEventfd, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_EVENTFD2, Entry{"eventfd2", sysEventfd2, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_TIMERFD_CREATE, Entry{"timerfd_create", sysTimerfdCreate, Partial, "CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME; the alarm clocks are EPERM", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_TIMERFD_SETTIME, Entry{"timerfd_settime", sysTimerfdSettime, Partial, "TFD_TIMER_CANCEL_ON_SET is accepted; the guest cannot set the clock. Timers run on the host's monotonic clock, so CLOCK_BOOTTIME ones do not count host suspend", []Arg{ArgInt, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_TIMERFD_GETTIME, Entry{"timerfd_gettime", sysTimerfdGettime, Supported, "", []Arg{ArgInt, ArgHex}}},
}

// forever is the timeout of a wait without one.
const forever = time.Duration(-1)

// waitReady returns what check finds ready (a count) once it finds
// something, calling it again each time wake is signalled. It waits at most
// d (forever when negative, never when zero) and checks once more when d
// has passed, as Linux does; it ends with EINTR when the task is
// interrupted, and with vfs.ErrWouldWait on a worker that must not wait.
// arm registers the waiters that signal wake and returns what unregisters
// them; it is called only when the call has to wait.
func waitReady(t *kernel.Task, d time.Duration, check func() int, arm func(wake chan<- struct{}) (disarm func())) (int, error) {
	if n := check(); n > 0 || d == 0 {
		return n, nil
	}
	ctx := t.Context()
	if vfs.MustNotWait(ctx) {
		return 0, vfs.ErrWouldWait
	}
	wake := make(chan struct{}, 1)
	defer arm(wake)()
	var expired <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		expired = timer.C
	}
	for {
		// Armed first: a change after this check signals wake.
		if n := check(); n > 0 {
			return n, nil
		}
		select {
		case <-wake:
		case <-expired:
			return check(), nil
		case <-ctx.Done():
			return 0, unix.EINTR
		}
	}
}

// waitSigMask installs the signal mask at addr for the duration of a
// wait, as ppoll, pselect6 and epoll_pwait do; addr 0 leaves the mask
// alone. The kernel puts the old mask back when the call returns, after
// the handler of a signal that interrupted it (whose frame records the
// old mask), as Linux does.
func waitSigMask(t *kernel.Task, addr, size uint64) error {
	if addr == 0 {
		return nil
	}
	if size != sigsetSize {
		return unix.EINVAL
	}
	var set uint64
	if err := copyInStruct(t, addr, &set); err != nil {
		return err
	}
	t.SetTemporarySigMask(kernel.SigSet(set))
	return nil
}

// readTimeout reads the timespec timeout of ppoll, pselect6 and
// epoll_pwait2: forever when addr is 0.
func readTimeout(t *kernel.Task, addr uint64) (time.Duration, error) {
	if addr == 0 {
		return forever, nil
	}
	return readTimespec(t, addr)
}

// writeTimeLeft writes back the time left of a wait of d begun at start,
// as Linux does for ppoll, select and pselect6: not for a zero or absent
// timeout, and a failure to write is ignored. timeval writes a timeval
// instead of a timespec.
func writeTimeLeft(t *kernel.Task, addr uint64, d time.Duration, start time.Time, timeval bool) {
	if addr == 0 || d <= 0 {
		return
	}
	left := max(d-time.Since(start), 0)
	if timeval {
		tv := unix.NsecToTimeval(left.Nanoseconds())
		copyOutStruct(t, addr, &tv)
		return
	}
	ts := unix.NsecToTimespec(left.Nanoseconds())
	copyOutStruct(t, addr, &ts)
}

// msTimeout is the timeout of poll and epoll_wait: milliseconds, forever
// when negative.
func msTimeout(ms int32) time.Duration {
	if ms < 0 {
		return forever
	}
	return time.Duration(ms) * time.Millisecond
}

func sysPoll(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return doPoll(t, a[0], uint32(a[1]), msTimeout(int32(a[2])))
}

func sysPpoll(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	d, err := readTimeout(t, a[2])
	if err != nil {
		return 0, err
	}
	if err := waitSigMask(t, a[3], a[4]); err != nil {
		return 0, err
	}
	start := time.Now()
	n, err := doPoll(t, a[0], uint32(a[1]), d)
	if err != vfs.ErrWouldWait {
		writeTimeLeft(t, a[2], d, start, false)
	}
	return n, err
}

// doPoll implements poll(2) on the nfds pollfd structures at addr. As on
// Linux, an open file is looked up once, and revents are written back even
// when the wait is interrupted.
func doPoll(t *kernel.Task, addr uint64, nfds uint32, d time.Duration) (uint64, error) {
	fdt := t.ThreadGroup().FDs()
	if uint64(nfds) > uint64(fdt.Limit()) {
		return 0, unix.EINVAL
	}
	fds := make([]unix.PollFd, nfds)
	if nfds > 0 {
		if err := copyIn(t, addr, sliceBytes(fds)); err != nil {
			return 0, err
		}
	}
	files := make([]*vfs.File, nfds)
	for i, p := range fds {
		if p.Fd >= 0 {
			files[i], _ = fdt.Get(p.Fd)
		}
	}
	defer func() {
		for _, f := range files {
			if f != nil {
				f.DecRef()
			}
		}
	}()
	check := func() int {
		n := 0
		for i := range fds {
			p := &fds[i]
			p.Revents = 0
			if p.Fd < 0 {
				continue
			}
			ev := uint32(unix.POLLNVAL)
			if f := files[i]; f != nil {
				mask := uint32(uint16(p.Events)) | unix.POLLERR | unix.POLLHUP
				ev = f.Readiness(mask) & (mask | unix.POLLNVAL)
			}
			if ev != 0 {
				p.Revents = int16(ev)
				n++
			}
		}
		return n
	}
	arm := func(wake chan<- struct{}) func() {
		waiters := make([]*vfs.Waiter, len(fds))
		for i, f := range files {
			if f != nil {
				waiters[i] = vfs.NewChanWaiter(wake, uint32(uint16(fds[i].Events)))
				f.EventRegister(waiters[i])
			}
		}
		return func() {
			for i, w := range waiters {
				if w != nil {
					files[i].EventUnregister(w)
				}
			}
		}
	}
	n, err := waitReady(t, d, check, arm)
	if err == vfs.ErrWouldWait {
		return 0, err
	}
	if nfds > 0 {
		if werr := copyOut(t, addr, sliceBytes(fds)); werr != nil {
			return 0, werr
		}
	}
	return uint64(n), err
}

// The poll events that make select report a descriptor in each set.
const (
	selectIn  = unix.POLLIN | unix.EPOLLRDNORM | unix.EPOLLRDBAND | unix.POLLHUP | unix.POLLERR
	selectOut = unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND | unix.POLLERR
	selectEx  = unix.POLLPRI
)

func sysSelect(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	d := forever
	if a[4] != 0 {
		var tv unix.Timeval
		if err := copyInStruct(t, a[4], &tv); err != nil {
			return 0, err
		}
		// Linux carries whole seconds out of tv_usec before checking.
		var err error
		d, err = timespecDuration(unix.Timespec{Sec: tv.Sec + tv.Usec/1e6, Nsec: tv.Usec % 1e6 * 1e3})
		if err != nil {
			return 0, err
		}
	}
	start := time.Now()
	n, err := doSelect(t, int32(a[0]), [3]uint64{a[1], a[2], a[3]}, d)
	if err != vfs.ErrWouldWait {
		writeTimeLeft(t, a[4], d, start, true)
	}
	return n, err
}

func sysPselect6(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	// The sixth argument points at {const sigset_t *ss; size_t ss_len}.
	var pack [2]uint64
	if a[5] != 0 {
		if err := copyInStruct(t, a[5], &pack); err != nil {
			return 0, err
		}
	}
	d, err := readTimeout(t, a[4])
	if err != nil {
		return 0, err
	}
	if err := waitSigMask(t, pack[0], pack[1]); err != nil {
		return 0, err
	}
	start := time.Now()
	n, err := doSelect(t, int32(a[0]), [3]uint64{a[1], a[2], a[3]}, d)
	if err != vfs.ErrWouldWait {
		writeTimeLeft(t, a[4], d, start, false)
	}
	return n, err
}

// selectFD is one descriptor select watches.
type selectFD struct {
	fd   int
	f    *vfs.File
	mask uint32
}

// doSelect implements select(2) on the read, write and except sets at
// addrs (0 for none), for descriptors below n.
func doSelect(t *kernel.Task, n int32, addrs [3]uint64, d time.Duration) (uint64, error) {
	if n < 0 {
		return 0, unix.EINVAL
	}
	fdt := t.ThreadGroup().FDs()
	// Linux looks no further than its descriptor array, 64 entries at
	// first and then a power of two: bits above it are left alone.
	maxFDs := 64
	if l := fdt.Len(); l > maxFDs {
		maxFDs = 1 << bits.Len(uint(l-1))
	}
	nfds := min(int(n), maxFDs)
	words := (nfds + 63) / 64
	var sets [3][]uint64
	for i, addr := range addrs {
		sets[i] = make([]uint64, words)
		if addr != 0 && words > 0 {
			if err := copyIn(t, addr, sliceBytes(sets[i])); err != nil {
				return 0, err
			}
		}
	}
	var watched []selectFD
	defer func() {
		for _, s := range watched {
			s.f.DecRef()
		}
	}()
	for fd := range nfds {
		word, bit := fd/64, uint64(1)<<(fd%64)
		in, out, ex := sets[0][word]&bit != 0, sets[1][word]&bit != 0, sets[2][word]&bit != 0
		if !in && !out && !ex {
			continue
		}
		f, err := fdt.Get(int32(fd))
		if err != nil {
			return 0, unix.EBADF
		}
		mask := uint32(selectEx)
		if in {
			mask |= selectIn
		}
		if out {
			mask |= selectOut
		}
		watched = append(watched, selectFD{fd, f, mask})
	}
	var results [3][]uint64
	for i := range results {
		results[i] = make([]uint64, words)
	}
	check := func() int {
		count := 0
		for i := range results {
			clear(results[i])
		}
		for _, s := range watched {
			ev := s.f.Readiness(s.mask)
			word, bit := s.fd/64, uint64(1)<<(s.fd%64)
			for i, set := range [3]uint32{selectIn, selectOut, selectEx} {
				if ev&set != 0 && sets[i][word]&bit != 0 {
					results[i][word] |= bit
					count++
				}
			}
		}
		return count
	}
	arm := func(wake chan<- struct{}) func() {
		waiters := make([]*vfs.Waiter, len(watched))
		for i, s := range watched {
			waiters[i] = vfs.NewChanWaiter(wake, s.mask)
			s.f.EventRegister(waiters[i])
		}
		return func() {
			for i, s := range watched {
				s.f.EventUnregister(waiters[i])
			}
		}
	}
	count, err := waitReady(t, d, check, arm)
	if err != nil {
		return 0, err
	}
	for i, addr := range addrs {
		if addr != 0 && words > 0 {
			if err := copyOut(t, addr, sliceBytes(results[i])); err != nil {
				return 0, err
			}
		}
	}
	return uint64(count), nil
}
