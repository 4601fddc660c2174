// Package lock is the advisory-lock table of one sandbox: fcntl record
// locks (POSIX locks, owned by a process, and OFD locks, owned by an open
// file description) and flock(2) locks (owned by an open file
// description), with blocking waits that end on cancellation.
//
// The table knows nothing of files or processes: locks are kept under a
// key (what identifies the locked file) and belong to an owner, both
// compared with ==. The vfs package decides what the key of a file is and
// releases the locks an open file description owns with its last
// reference; the kernel releases a process's record locks when it closes
// a descriptor of the file or exits.
package lock

import (
	"context"
	"math"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Table holds the advisory locks of one sandbox. The zero value is not
// usable; make one with NewTable.
type Table struct {
	mu      sync.Mutex
	files   map[any]*fileLocks
	changed chan struct{} // closed and replaced when a lock goes away
	// keys counts the entries of files, so that Release costs nothing
	// while the sandbox holds no lock.
	keys atomic.Int64
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{files: map[any]*fileLocks{}, changed: make(chan struct{})}
}

// Range is a record lock on the bytes [Start, End]; End is math.MaxInt64
// for a lock that reaches the end of the file, however far it grows.
type Range struct {
	Owner      any
	PID        int32 // what F_GETLK reports: the owning process, -1 for OFD locks
	Start, End int64
	Write      bool
}

func (r *Range) overlaps(start, end int64) bool {
	return r.Start <= end && start <= r.End
}

// flockLock is a flock(2) lock.
type flockLock struct {
	owner any
	write bool
}

type fileLocks struct {
	ranges []Range
	flocks []flockLock
}

// notifyLocked wakes the waiters of F_SETLKW and blocking flock.
func (t *Table) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// getLocked returns the locks under key, creating an empty set.
func (t *Table) getLocked(key any) *fileLocks {
	fl := t.files[key]
	if fl == nil {
		fl = &fileLocks{}
		t.files[key] = fl
		t.keys.Add(1)
	}
	return fl
}

// tidyLocked forgets key when it holds no lock any more.
func (t *Table) tidyLocked(key any) {
	if fl := t.files[key]; fl != nil && len(fl.ranges)+len(fl.flocks) == 0 {
		delete(t.files, key)
		t.keys.Add(-1)
	}
}

// waitLocked blocks until a lock goes away or ctx is cancelled (EINTR).
// The table's mutex is held on entry and on return.
func (t *Table) waitLocked(ctx context.Context) error {
	ch := t.changed
	t.mu.Unlock()
	defer t.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return unix.EINTR
	}
}

// Flock implements flock(2)'s LOCK_SH (write false) and LOCK_EX (write
// true) for owner. A lock the owner already holds is converted: it is
// removed first, then the new one is waited for, as Linux does. Without
// wait, a conflicting lock gives EWOULDBLOCK; a wait cancelled by ctx
// gives EINTR.
func (t *Table) Flock(ctx context.Context, key, owner any, write, wait bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fl := t.getLocked(key)
	for i, l := range fl.flocks {
		if l.owner != owner {
			continue
		}
		if l.write == write {
			return nil
		}
		fl.flocks = append(fl.flocks[:i], fl.flocks[i+1:]...)
		t.notifyLocked()
		break
	}
	for {
		conflict := false
		for _, l := range fl.flocks {
			if l.owner != owner && (write || l.write) {
				conflict = true
				break
			}
		}
		if !conflict {
			fl.flocks = append(fl.flocks, flockLock{owner: owner, write: write})
			return nil
		}
		var err error
		if !wait {
			err = unix.EWOULDBLOCK
		} else {
			err = t.waitLocked(ctx)
		}
		if err != nil {
			t.tidyLocked(key)
			return err
		}
		fl = t.getLocked(key)
	}
}

// Funlock implements flock(2)'s LOCK_UN for owner.
func (t *Table) Funlock(key, owner any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fl := t.files[key]
	if fl == nil {
		return
	}
	n := len(fl.flocks)
	fl.flocks = filter(fl.flocks, func(l flockLock) bool { return l.owner != owner })
	if len(fl.flocks) != n {
		t.notifyLocked()
	}
	t.tidyLocked(key)
}

// Conflict implements F_GETLK: the first lock of another owner that
// overlaps [start, end] and excludes a lock of owner's of the kind write
// says.
func (t *Table) Conflict(key, owner any, start, end int64, write bool) (Range, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conflictLocked(key, owner, start, end, write)
}

func (t *Table) conflictLocked(key, owner any, start, end int64, write bool) (Range, bool) {
	fl := t.files[key]
	if fl == nil {
		return Range{}, false
	}
	for _, r := range fl.ranges {
		if r.Owner != owner && (write || r.Write) && r.overlaps(start, end) {
			return r, true
		}
	}
	return Range{}, false
}

// SetRange implements F_SETLK and F_SETLKW: it waits for conflicting
// locks (or fails with EAGAIN without wait, EINTR when ctx is cancelled),
// then replaces nl.Owner's locks over the range with nl.
func (t *Table) SetRange(ctx context.Context, key any, nl Range, wait bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if _, found := t.conflictLocked(key, nl.Owner, nl.Start, nl.End, nl.Write); !found {
			break
		}
		if !wait {
			return unix.EAGAIN
		}
		if err := t.waitLocked(ctx); err != nil {
			return err
		}
	}
	fl := t.getLocked(key)
	fl.ranges = mergeInto(cut(fl.ranges, nl.Owner, nl.Start, nl.End), nl)
	t.notifyLocked()
	return nil
}

// Unlock implements F_SETLK with F_UNLCK: owner's locks over [start, end]
// go away.
func (t *Table) Unlock(key, owner any, start, end int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fl := t.files[key]
	if fl == nil {
		return
	}
	fl.ranges = cut(fl.ranges, owner, start, end)
	t.notifyLocked()
	t.tidyLocked(key)
}

// Release drops every lock owner holds under key: a process's record
// locks when it closes a descriptor of the file, an open file
// description's flock and OFD locks with its last reference.
func (t *Table) Release(key, owner any) {
	if t.keys.Load() == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fl := t.files[key]
	if fl == nil {
		return
	}
	n := len(fl.ranges) + len(fl.flocks)
	fl.ranges = filter(fl.ranges, func(r Range) bool { return r.Owner != owner })
	fl.flocks = filter(fl.flocks, func(l flockLock) bool { return l.owner != owner })
	if len(fl.ranges)+len(fl.flocks) != n {
		t.notifyLocked()
	}
	t.tidyLocked(key)
}

// cut removes owner's locks from [start, end], splitting the locks that
// reach beyond it.
func cut(ranges []Range, owner any, start, end int64) []Range {
	var out []Range
	for _, r := range ranges {
		if r.Owner != owner || !r.overlaps(start, end) {
			out = append(out, r)
			continue
		}
		if r.Start < start {
			left := r
			left.End = start - 1
			out = append(out, left)
		}
		if r.End > end {
			right := r
			right.Start = end + 1
			out = append(out, right)
		}
	}
	return out
}

// mergeInto adds nl to ranges, which hold none of its bytes for its owner,
// coalescing it with the owner's adjacent locks of the same kind.
func mergeInto(ranges []Range, nl Range) []Range {
	out := ranges[:0]
	for _, r := range ranges {
		if r.Owner == nl.Owner && r.Write == nl.Write &&
			(r.End != math.MaxInt64 && r.End+1 == nl.Start || nl.End != math.MaxInt64 && nl.End+1 == r.Start) {
			nl.Start, nl.End = min(nl.Start, r.Start), max(nl.End, r.End)
			continue
		}
		out = append(out, r)
	}
	return append(out, nl)
}

func filter[T any](s []T, keep func(T) bool) []T {
	out := s[:0]
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	clear(s[len(out):])
	return out
}
