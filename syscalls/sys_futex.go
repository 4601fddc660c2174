package syscalls

import (
	"sync/atomic"
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/kernel/futex"
	"golang.org/x/sys/unix"
)

var futexEntries = []entryAt{
	{unix.SYS_FUTEX, Entry{"futex", sysFutex, Partial, "WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET, WAKE_BITSET, with FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME; the PI operations return ENOSYS", []Arg{ArgHex, ArgInt, ArgInt, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_GET_ROBUST_LIST, Entry{"get_robust_list", sysGetRobustList, Partial, "the calling thread's only (pid 0 or its tid); other pids ESRCH", []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_FUTEX_WAITV, Entry{"futex_waitv", nil, Unsupported, "ENOSYS: libc uses futex", nil}},
	{unix.SYS_FUTEX_WAKE, Entry{"futex_wake", nil, Unsupported, "ENOSYS: libc uses futex", nil}},
	{unix.SYS_FUTEX_WAIT, Entry{"futex_wait", nil, Unsupported, "ENOSYS: libc uses futex", nil}},
	{unix.SYS_FUTEX_REQUEUE, Entry{"futex_requeue", nil, Unsupported, "ENOSYS: libc uses futex", nil}},
}

// futex(2) operations and flags (linux/futex.h), which
// golang.org/x/sys/unix lacks.
const (
	futexWait          = 0
	futexWake          = 1
	futexRequeue       = 3
	futexCmpRequeue    = 4
	futexWakeOp        = 5
	futexLockPI        = 6
	futexWaitBitset    = 9
	futexWakeBitset    = 10
	futexWaitRequeuePI = 11
	futexLockPI2       = 13

	futexPrivateFlag   = 128
	futexClockRealtime = 256
)

// FUTEX_WAKE_OP's encoding: bit 31 makes the argument a shift, bits 28-30
// are the operation, 24-27 the comparison, 12-23 the operation's signed
// argument and 0-11 the comparison's.
const (
	futexOpSet = iota
	futexOpAdd
	futexOpOr
	futexOpAndn
	futexOpXor

	futexOpOpargShift = 1 << 31
)

const (
	futexOpCmpEq = iota
	futexOpCmpNe
	futexOpCmpLt
	futexOpCmpLe
	futexOpCmpGt
	futexOpCmpGe
)

// sysFutex implements futex(2), checking its arguments in Linux's order so
// that every error is the one Linux gives.
func sysFutex(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	addr, op, val, addr2, val3 := a[0], uint32(a[1]), int32(a[2]), a[4], uint32(a[5])
	cmd := op &^ (futexPrivateFlag | futexClockRealtime)
	private := op&futexPrivateFlag != 0
	realtime := op&futexClockRealtime != 0
	var deadline time.Time
	switch cmd {
	case futexWait, futexWaitBitset, futexLockPI, futexLockPI2, futexWaitRequeuePI:
		if a[3] != 0 {
			var err error
			if deadline, err = futexDeadline(t, a[3], cmd == futexWait, realtime); err != nil {
				return 0, err
			}
		}
	}
	if realtime && cmd != futexWaitBitset && cmd != futexWaitRequeuePI && cmd != futexLockPI2 {
		return 0, unix.ENOSYS
	}
	// The requeue and wake-op calls take a second count in the timeout's
	// place.
	val2 := int32(a[3])
	switch cmd {
	case futexWait:
		return 0, futexWaitOn(t, addr, uint32(val), futex.BitsetMatchAny, deadline)
	case futexWaitBitset:
		return 0, futexWaitOn(t, addr, uint32(val), val3, deadline)
	case futexWake:
		return futexWakeOn(t, addr, private, val, futex.BitsetMatchAny)
	case futexWakeBitset:
		return futexWakeOn(t, addr, private, val, val3)
	case futexRequeue:
		return futexRequeueOn(t, addr, addr2, private, val, val2, nil)
	case futexCmpRequeue:
		return futexRequeueOn(t, addr, addr2, private, val, val2, &val3)
	case futexWakeOp:
		return futexWakeOpOn(t, addr, addr2, private, val, val2, val3)
	}
	return 0, unix.ENOSYS
}

// futexDeadline reads a futex timeout: relative to now on CLOCK_MONOTONIC
// for FUTEX_WAIT, otherwise an absolute time on CLOCK_MONOTONIC, or on
// CLOCK_REALTIME with FUTEX_CLOCK_REALTIME.
func futexDeadline(t *kernel.Task, addr uint64, relative, realtime bool) (time.Time, error) {
	d, err := readTimespec(t, addr)
	if err != nil {
		return time.Time{}, err
	}
	if relative {
		return time.Now().Add(d), nil
	}
	clk := int32(unix.CLOCK_MONOTONIC)
	if realtime {
		clk = unix.CLOCK_REALTIME
	}
	var now unix.Timespec
	if err := unix.ClockGettime(clk, &now); err != nil {
		return time.Time{}, unix.EINVAL
	}
	return time.Now().Add(d - time.Duration(now.Nano())), nil
}

// futexWord resolves the futex word at addr and its key. Linux keys a
// private futex by its address alone, so where nothing is mapped at a user
// address a private futex call fails only if it touches the word: for
// those futexWord returns a nil word and key 0, which no waiter has (frame
// 0 is never handed out).
func futexWord(t *kernel.Task, addr uint64, private, write bool) (*uint32, uint64, error) {
	word, key, err := t.ThreadGroup().MM().Word(addr, write)
	if err == unix.EFAULT && private && addr <= kernel.UserTop-4 {
		return nil, 0, nil
	}
	return word, key, err
}

// wakeCount is how many waiters a count from the guest wakes: Linux's wake
// loops stop once they have woken that many, which they check after each
// wake, so a count of 0 or less still wakes one.
func wakeCount(n int32) int { return max(int(n), 1) }

// futexWaitOn implements FUTEX_WAIT and FUTEX_WAIT_BITSET.
func futexWaitOn(t *kernel.Task, addr uint64, val, bitset uint32, deadline time.Time) error {
	if bitset == 0 {
		return unix.EINVAL
	}
	word, key, err := t.ThreadGroup().MM().Word(addr, false)
	if err != nil {
		return err
	}
	return t.Kernel().Futexes().Wait(t.Context(), key, func() error {
		if atomic.LoadUint32(word) != val {
			return unix.EAGAIN
		}
		return nil
	}, bitset, deadline)
}

// futexWakeOn implements FUTEX_WAKE and FUTEX_WAKE_BITSET.
func futexWakeOn(t *kernel.Task, addr uint64, private bool, n int32, bitset uint32) (uint64, error) {
	if bitset == 0 {
		return 0, unix.EINVAL
	}
	_, key, err := futexWord(t, addr, private, false)
	if err != nil {
		return 0, err
	}
	return uint64(t.Kernel().Futexes().Wake(key, wakeCount(n), bitset)), nil
}

// futexRequeueOn implements FUTEX_REQUEUE and, with cmp, FUTEX_CMP_REQUEUE.
func futexRequeueOn(t *kernel.Task, addr, addr2 uint64, private bool, nWake, nRequeue int32, cmp *uint32) (uint64, error) {
	if nWake < 0 || nRequeue < 0 {
		return 0, unix.EINVAL
	}
	word, key, err := futexWord(t, addr, private, false)
	if err != nil {
		return 0, err
	}
	_, key2, err := futexWord(t, addr2, private, false)
	if err != nil {
		return 0, err
	}
	var check func() error
	if cmp != nil {
		if word == nil {
			return 0, unix.EFAULT
		}
		check = func() error {
			if atomic.LoadUint32(word) != *cmp {
				return unix.EAGAIN
			}
			return nil
		}
	}
	tbl := t.Kernel().Futexes()
	if key2 == 0 {
		// Linux would move the waiters to a word nothing maps, where no
		// wake could reach them; waking them instead is a spurious
		// wake-up, which futex users must tolerate.
		n, err := tbl.Requeue(key, key, int(nWake)+int(nRequeue), 0, check)
		return uint64(n), err
	}
	n, err := tbl.Requeue(key, key2, int(nWake), int(nRequeue), check)
	return uint64(n), err
}

// futexWakeOpOn implements FUTEX_WAKE_OP.
func futexWakeOpOn(t *kernel.Task, addr, addr2 uint64, private bool, n1, n2 int32, encoded uint32) (uint64, error) {
	_, key1, err := futexWord(t, addr, private, false)
	if err != nil {
		return 0, err
	}
	word2, key2, err := futexWord(t, addr2, private, true)
	if err != nil {
		return 0, err
	}
	if encoded>>28&7 > futexOpXor {
		return 0, unix.ENOSYS
	}
	if word2 == nil {
		return 0, unix.EFAULT
	}
	mem := t.ThreadGroup().MM()
	n, err := t.Kernel().Futexes().WakeOp(key1, key2, wakeCount(n1), wakeCount(n2), func() (bool, error) {
		var old uint32
		// The address space stays locked while the word changes, so the
		// write cannot land in a frame the guest has just unmapped.
		if _, err := mem.UpdateWord(addr2, func(w *uint32) { old = applyWakeOp(w, encoded) }); err != nil {
			return false, err
		}
		return compareWakeOp(old, encoded)
	})
	return uint64(n), err
}

// applyWakeOp applies FUTEX_WAKE_OP's operation, which must be valid, to
// *w atomically and returns the old value.
func applyWakeOp(w *uint32, encoded uint32) uint32 {
	oparg := uint32(int32(encoded<<8) >> 20)
	if encoded&futexOpOpargShift != 0 {
		// Linux masks a shift out of range rather than failing.
		oparg = 1 << (oparg & 31)
	}
	switch encoded >> 28 & 7 {
	case futexOpSet:
		return atomic.SwapUint32(w, oparg)
	case futexOpAdd:
		return atomic.AddUint32(w, oparg) - oparg
	case futexOpOr:
		return atomic.OrUint32(w, oparg)
	case futexOpAndn:
		return atomic.AndUint32(w, ^oparg)
	}
	for {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old^oparg) {
			return old
		}
	}
}

// compareWakeOp compares the old value FUTEX_WAKE_OP's operation replaced
// with its argument, both signed. An unknown comparison fails with ENOSYS
// after the operation, as on Linux.
func compareWakeOp(old, encoded uint32) (bool, error) {
	v, arg := int32(old), int32(encoded<<20)>>20
	switch encoded >> 24 & 15 {
	case futexOpCmpEq:
		return v == arg, nil
	case futexOpCmpNe:
		return v != arg, nil
	case futexOpCmpLt:
		return v < arg, nil
	case futexOpCmpLe:
		return v <= arg, nil
	case futexOpCmpGt:
		return v > arg, nil
	case futexOpCmpGe:
		return v >= arg, nil
	}
	return false, unix.ENOSYS
}

// sysGetRobustList implements get_robust_list(2) for the calling thread.
func sysGetRobustList(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if pid := int32(a[0]); pid != 0 && pid != t.TID() {
		return 0, unix.ESRCH
	}
	if err := copyOutUint64(t, a[2], futex.RobustListHeadSize); err != nil {
		return 0, err
	}
	return 0, copyOutUint64(t, a[1], t.RobustList())
}
