package syscalls

import (
	"context"
	"math"
	"sync"
	"sync/atomic"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// Advisory locks: fcntl record locks (POSIX, owned by a process; OFD,
// owned by an open file description) and flock locks (owned by an open
// file description). They live in one table keyed by the file's location
// (its vfs.VirtualDentry, or the *vfs.File for files not reached through a
// path), so hard links to one file do not share locks. Locks held by a
// process are released when it exits: an exiting owner's locks no longer
// count and are swept from the table at the next lock operation.
var locks = lockTable{files: map[any]*fileLocks{}, changed: make(chan struct{})}

type lockTable struct {
	mu      sync.Mutex
	files   map[any]*fileLocks
	changed chan struct{} // closed and replaced when a lock goes away
	// held counts the files in the table, so that close skips it when
	// there are none.
	held atomic.Int64
}

// rangeLock is a record lock on the bytes [start, end].
type rangeLock struct {
	owner      any                 // *kernel.ThreadGroup (POSIX) or *vfs.File (OFD)
	tg         *kernel.ThreadGroup // the process that set it
	start, end int64
	write      bool
}

// flockLock is a flock(2) lock.
type flockLock struct {
	owner *vfs.File
	tg    *kernel.ThreadGroup
	write bool
}

type fileLocks struct {
	ranges []rangeLock
	flocks []flockLock
}

func lockKey(f *vfs.File) any {
	if vd, ok := f.VirtualDentry(); ok {
		return vd
	}
	return f
}

// notifyLocked wakes the waiters of F_SETLKW and blocking flock.
func (lt *lockTable) notifyLocked() {
	close(lt.changed)
	lt.changed = make(chan struct{})
}

// getLocked returns the locks of key, creating an empty set.
func (lt *lockTable) getLocked(key any) *fileLocks {
	fl := lt.files[key]
	if fl == nil {
		fl = &fileLocks{}
		lt.files[key] = fl
		lt.held.Add(1)
	}
	return fl
}

// tidyLocked drops the locks of exited processes and the empty sets.
func (lt *lockTable) tidyLocked() {
	dropped := false
	for key, fl := range lt.files {
		n := len(fl.ranges) + len(fl.flocks)
		fl.ranges = filterLocks(fl.ranges, func(r rangeLock) bool { return !r.tg.Exiting() })
		fl.flocks = filterLocks(fl.flocks, func(l flockLock) bool { return !l.tg.Exiting() })
		if len(fl.ranges)+len(fl.flocks) != n {
			dropped = true
		}
		if len(fl.ranges)+len(fl.flocks) == 0 {
			delete(lt.files, key)
			lt.held.Add(-1)
		}
	}
	if dropped {
		lt.notifyLocked()
	}
}

func filterLocks[T any](s []T, keep func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	clear(s[len(out):])
	return out
}

// wait blocks until a lock goes away, the holder of the conflicting lock
// exits, or ctx is cancelled (EINTR). The table's lock is held on entry
// and on return.
func (lt *lockTable) wait(ctx context.Context, holder *kernel.ThreadGroup) error {
	ch := lt.changed
	lt.mu.Unlock()
	defer lt.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-holder.Done():
		return nil
	case <-ctx.Done():
		return unix.EINTR
	}
}

// releaseLocks drops what closing a descriptor of f in t's process
// releases: the process's record locks on the file, and the locks owned
// by f when the process holds no other descriptor for it.
func releaseLocks(t *kernel.Task, f *vfs.File) {
	if locks.held.Load() == 0 {
		return
	}
	tg := t.ThreadGroup()
	stillOpen := holdsFile(tg, f)
	locks.mu.Lock()
	defer locks.mu.Unlock()
	fl := locks.files[lockKey(f)]
	if fl == nil {
		return
	}
	fl.ranges = filterLocks(fl.ranges, func(r rangeLock) bool {
		return r.owner != tg && (stillOpen || r.owner != f)
	})
	if !stillOpen {
		fl.flocks = filterLocks(fl.flocks, func(l flockLock) bool { return l.owner != f })
	}
	locks.notifyLocked()
	locks.tidyLocked()
}

// holdsFile reports whether a descriptor of tg refers to f.
func holdsFile(tg *kernel.ThreadGroup, f *vfs.File) bool {
	fds := tg.FDs()
	for fd := range fds.Len() {
		g, err := fds.Get(int32(fd))
		if err != nil {
			continue
		}
		g.DecRef()
		if g == f {
			return true
		}
	}
	return false
}

func sysFlock(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const lockMand = 32
	op := uint32(a[1])
	if op&lockMand != 0 {
		return 0, nil
	}
	cmd := op &^ unix.LOCK_NB
	if cmd != unix.LOCK_SH && cmd != unix.LOCK_EX && cmd != unix.LOCK_UN {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if isPath(f) {
		return 0, unix.EBADF
	}
	key := lockKey(f)
	write := cmd == unix.LOCK_EX
	locks.mu.Lock()
	defer locks.mu.Unlock()
	locks.tidyLocked()
	fl := locks.getLocked(key)
	for i, l := range fl.flocks {
		if l.owner != f {
			continue
		}
		if cmd != unix.LOCK_UN && l.write == write {
			return 0, nil
		}
		fl.flocks = append(fl.flocks[:i], fl.flocks[i+1:]...)
		locks.notifyLocked()
		break
	}
	if cmd == unix.LOCK_UN {
		locks.tidyLocked()
		return 0, nil
	}
	for {
		var holder *kernel.ThreadGroup
		for _, l := range fl.flocks {
			if l.owner != f && (write || l.write) && !l.tg.Exiting() {
				holder = l.tg
				break
			}
		}
		if holder == nil {
			fl.flocks = append(fl.flocks, flockLock{owner: f, tg: t.ThreadGroup(), write: write})
			return 0, nil
		}
		if op&unix.LOCK_NB != 0 {
			locks.tidyLocked()
			return 0, unix.EWOULDBLOCK
		}
		if err := locks.wait(t.Context(), holder); err != nil {
			locks.tidyLocked()
			return 0, err
		}
		locks.tidyLocked()
		fl = locks.getLocked(key)
	}
}

// lockRange converts a struct flock's l_whence, l_start and l_len to an
// inclusive byte range, as flock64_to_posix_lock does.
func lockRange(t *kernel.Task, f *vfs.File, l *unix.Flock_t) (start, end int64, err error) {
	var base int64
	switch l.Whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		base, _ = f.Seek(t.Context(), 0, unix.SEEK_CUR)
	case unix.SEEK_END:
		st, err := f.Stat(t.Context())
		if err != nil {
			return 0, 0, err
		}
		base = int64(st.Size)
	default:
		return 0, 0, unix.EINVAL
	}
	if l.Start > math.MaxInt64-base {
		return 0, 0, unix.EOVERFLOW
	}
	start = base + l.Start
	if start < 0 {
		return 0, 0, unix.EINVAL
	}
	switch {
	case l.Len > 0:
		if l.Len-1 > math.MaxInt64-start {
			return 0, 0, unix.EOVERFLOW
		}
		return start, start + l.Len - 1, nil
	case l.Len < 0:
		if start+l.Len < 0 {
			return 0, 0, unix.EINVAL
		}
		return start + l.Len, start - 1, nil
	}
	return start, math.MaxInt64, nil
}

func fcntlLock(t *kernel.Task, fd uint64, cmd int, arg uint64) error {
	f, err := getFile(t, fd)
	if err != nil {
		return err
	}
	defer f.DecRef()
	if isPath(f) {
		return unix.EBADF
	}
	var l unix.Flock_t
	if err := copyInStruct(t, arg, &l); err != nil {
		return err
	}
	ofd := cmd == unix.F_OFD_GETLK || cmd == unix.F_OFD_SETLK || cmd == unix.F_OFD_SETLKW
	var owner any = t.ThreadGroup()
	if ofd {
		owner = f
	}
	if cmd == unix.F_GETLK || cmd == unix.F_OFD_GETLK {
		if l.Type != unix.F_RDLCK && l.Type != unix.F_WRLCK || ofd && l.Pid != 0 {
			return unix.EINVAL
		}
		start, end, err := lockRange(t, f, &l)
		if err != nil {
			return err
		}
		locks.mu.Lock()
		c, found := locks.conflict(lockKey(f), owner, start, end, l.Type == unix.F_WRLCK)
		locks.mu.Unlock()
		if !found {
			l.Type = unix.F_UNLCK
			return copyOutStruct(t, arg, &l)
		}
		l = unix.Flock_t{Type: unix.F_RDLCK, Whence: unix.SEEK_SET, Start: c.start, Pid: -1}
		if c.write {
			l.Type = unix.F_WRLCK
		}
		if c.end != math.MaxInt64 {
			l.Len = c.end - c.start + 1
		}
		if tg, ok := c.owner.(*kernel.ThreadGroup); ok {
			l.Pid = tg.PID()
		}
		return copyOutStruct(t, arg, &l)
	}
	start, end, err := lockRange(t, f, &l)
	if err != nil {
		return err
	}
	acc := f.StatusFlags() & unix.O_ACCMODE
	switch l.Type {
	case unix.F_RDLCK:
		if acc == unix.O_WRONLY {
			return unix.EBADF
		}
	case unix.F_WRLCK:
		if acc == unix.O_RDONLY {
			return unix.EBADF
		}
	case unix.F_UNLCK:
	default:
		return unix.EINVAL
	}
	if ofd && l.Pid != 0 {
		return unix.EINVAL
	}
	wait := cmd == unix.F_SETLKW || cmd == unix.F_OFD_SETLKW
	return locks.setRange(t, lockKey(f), rangeLock{owner: owner, tg: t.ThreadGroup(), start: start, end: end, write: l.Type == unix.F_WRLCK}, l.Type == unix.F_UNLCK, wait)
}

// conflict returns the first live lock of another owner that overlaps
// [start, end] and excludes a lock of the kind write says.
func (lt *lockTable) conflict(key, owner any, start, end int64, write bool) (rangeLock, bool) {
	fl := lt.files[key]
	if fl == nil {
		return rangeLock{}, false
	}
	for _, r := range fl.ranges {
		if r.owner != owner && (write || r.write) && r.start <= end && start <= r.end && !r.tg.Exiting() {
			return r, true
		}
	}
	return rangeLock{}, false
}

// setRange applies F_SETLK(W): it waits for conflicting locks (or fails
// with EAGAIN), then replaces the owner's locks over the range with nl,
// or removes them when unlock is set.
func (lt *lockTable) setRange(t *kernel.Task, key any, nl rangeLock, unlock, wait bool) error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.tidyLocked()
	for !unlock {
		c, found := lt.conflict(key, nl.owner, nl.start, nl.end, nl.write)
		if !found {
			break
		}
		if !wait {
			return unix.EAGAIN
		}
		if err := lt.wait(t.Context(), c.tg); err != nil {
			return err
		}
		lt.tidyLocked()
	}
	fl := lt.getLocked(key)
	var out []rangeLock
	for _, r := range fl.ranges {
		if r.owner != nl.owner || r.end < nl.start || nl.end < r.start {
			out = append(out, r)
			continue
		}
		if r.start < nl.start {
			left := r
			left.end = nl.start - 1
			out = append(out, left)
		}
		if r.end > nl.end {
			right := r
			right.start = nl.end + 1
			out = append(out, right)
		}
	}
	if !unlock {
		out = mergeInto(out, nl)
	}
	fl.ranges = out
	lt.notifyLocked()
	lt.tidyLocked()
	return nil
}

// mergeInto adds nl to ranges, which hold none of its bytes for its owner,
// coalescing it with the owner's adjacent locks of the same kind.
func mergeInto(ranges []rangeLock, nl rangeLock) []rangeLock {
	out := ranges[:0]
	for _, r := range ranges {
		if r.owner == nl.owner && r.write == nl.write &&
			(r.end != math.MaxInt64 && r.end+1 == nl.start || nl.end != math.MaxInt64 && nl.end+1 == r.start) {
			nl.start, nl.end = min(nl.start, r.start), max(nl.end, r.end)
			continue
		}
		out = append(out, r)
	}
	return append(out, nl)
}
