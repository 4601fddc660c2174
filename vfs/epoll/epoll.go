// Package epoll implements epoll(7) instances: sets of watched files with
// a list of those that may be ready, kept by the files' notifications
// (vfs.Waiter) rather than by polling.
package epoll

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var _ vfs.Poller = (*epoll)(nil)

// privateBits are the flags of an event mask that select behaviour rather
// than events.
const privateBits = unix.EPOLLWAKEUP | unix.EPOLLONESHOT | unix.EPOLLET | unix.EPOLLEXCLUSIVE

// exclusiveOK are the bits that may accompany EPOLLEXCLUSIVE.
const exclusiveOK = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDNORM | unix.EPOLLRDBAND | unix.EPOLLWRNORM | unix.EPOLLWRBAND |
	unix.EPOLLERR | unix.EPOLLHUP | unix.EPOLLWAKEUP | unix.EPOLLET | unix.EPOLLEXCLUSIVE

// maxNests is Linux's EP_MAX_NESTS: the most epoll-in-epoll links on any
// path of nested instances.
const maxNests = 4

// Event is one ready file as epoll_wait reports it.
type Event struct {
	Events uint32
	Data   uint64
}

// key names a watch: Linux keys them by file description and descriptor,
// so a dup of a watched descriptor can be watched again.
type key struct {
	f  *vfs.File
	fd int32
}

// entry is one watched file.
type entry struct {
	ep *epoll
	key
	// events is the mask and flags as set, EPOLLERR and EPOLLHUP
	// included; a fired EPOLLONESHOT watch keeps only its flags. Written
	// under ep.mu, read by notify without it.
	events atomic.Uint32
	data   uint64 // guarded by ep.mu
	waiter *vfs.Waiter
	// cancel drops the hook that removes the watch when its file goes.
	cancel func()
	// Guarded by ep.readyMu: whether the entry is on a ready list, and
	// its links there.
	queued     bool
	prev, next *entry
}

// readyList is an intrusive list of entries that may be ready.
type readyList struct {
	head, tail *entry
}

func (l *readyList) push(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *readyList) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// prepend puts the entries of front before l's.
func (l *readyList) prepend(front readyList) {
	if front.head == nil {
		return
	}
	if l.head == nil {
		*l = front
		return
	}
	front.tail.next = l.head
	l.head.prev = front.tail
	l.head = front.head
}

// epoll is the file behind an epoll descriptor.
type epoll struct {
	// mu guards entries and the entries' data; it is held while the
	// watched files are asked for their readiness.
	mu      sync.Mutex
	entries map[key]*entry
	// readyMu guards the ready list. The watched files' notifications
	// take it with the files' locks held, so nothing is called under it.
	readyMu sync.Mutex
	ready   readyList
	// waiters are epoll_wait callers, poll, and instances watching this
	// one.
	waiters vfs.Queue
	// children and parents count the watches between instances, for the
	// loop and depth checks; guarded by graphMu.
	children, parents map[*epoll]int
}

// graphMu guards every instance's children and parents. Nothing else is
// taken while it is held.
var graphMu sync.Mutex

// New implements epoll_create1(2); EPOLL_CLOEXEC is the caller's.
func New() *vfs.File {
	return vfs.NewFile(&epoll{entries: make(map[key]*entry)}, unix.O_RDWR)
}

// Is reports whether f is an epoll instance.
func Is(f *vfs.File) bool {
	_, ok := f.Impl().(*epoll)
	return ok
}

func of(f *vfs.File) (*epoll, error) {
	ep, ok := f.Impl().(*epoll)
	if !ok {
		return nil, unix.EINVAL
	}
	return ep, nil
}

// Ctl implements epoll_ctl(2) on the instance epf for the file target at
// descriptor fd, with the event mask and data of op ADD and MOD. The
// caller has checked the descriptors (EBADF); it keeps its references.
func Ctl(epf *vfs.File, op int, target *vfs.File, fd int32, events uint32, data uint64) error {
	if !target.CanPoll() {
		return unix.EPERM
	}
	ep, err := of(epf)
	if err != nil || epf == target {
		return unix.EINVAL
	}
	if events&unix.EPOLLEXCLUSIVE != 0 && op != unix.EPOLL_CTL_DEL {
		if op == unix.EPOLL_CTL_MOD || op == unix.EPOLL_CTL_ADD && (Is(target) || events&^exclusiveOK != 0) {
			return unix.EINVAL
		}
	}
	// EPOLLWAKEUP needs CAP_BLOCK_SUSPEND; Linux drops it silently
	// without, and nothing here suspends anyway.
	events = events&^unix.EPOLLWAKEUP | unix.EPOLLERR | unix.EPOLLHUP
	ep.mu.Lock()
	defer ep.mu.Unlock()
	k := key{target, fd}
	e := ep.entries[k]
	switch op {
	case unix.EPOLL_CTL_ADD:
		if e != nil {
			return unix.EEXIST
		}
		return ep.addLocked(k, events, data)
	case unix.EPOLL_CTL_DEL:
		if e == nil {
			return unix.ENOENT
		}
		ep.removeLocked(e)
		e.cancel()
		return nil
	case unix.EPOLL_CTL_MOD:
		if e == nil {
			return unix.ENOENT
		}
		if e.events.Load()&unix.EPOLLEXCLUSIVE != 0 {
			return unix.EINVAL
		}
		e.events.Store(events)
		e.data = data
		ep.checkLocked(e)
		return nil
	}
	return unix.EINVAL
}

func (ep *epoll) addLocked(k key, events uint32, data uint64) error {
	if child, ok := k.f.Impl().(*epoll); ok {
		if err := link(ep, child); err != nil {
			return err
		}
	}
	e := &entry{ep: ep, key: k, data: data}
	e.events.Store(events)
	e.waiter = vfs.NewWaiter(e.notify)
	ep.entries[k] = e
	e.cancel = k.f.OnRelease(func() { ep.released(e) })
	k.f.EventRegister(e.waiter)
	ep.checkLocked(e)
	return nil
}

// checkLocked queues e if its file is ready now, as after ADD and MOD.
func (ep *epoll) checkLocked(e *entry) {
	ev := e.events.Load()
	if ev&^privateBits != 0 && e.f.Readiness(ev&^privateBits)&ev != 0 {
		e.notify(vfs.AllEvents)
	}
}

// removeLocked drops the watch e; the caller handles its release hook.
func (ep *epoll) removeLocked(e *entry) {
	delete(ep.entries, e.key)
	e.f.EventUnregister(e.waiter)
	ep.readyMu.Lock()
	if e.queued {
		ep.ready.remove(e)
		e.queued = false
	}
	ep.readyMu.Unlock()
	if child, ok := e.f.Impl().(*epoll); ok {
		unlink(ep, child)
	}
}

// released drops the watch e when its file loses its last reference, as
// Linux drops watches when the file description is closed.
func (ep *epoll) released(e *entry) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.entries[e.key] == e {
		ep.removeLocked(e)
	}
}

// notify is e's waiter: the file may have become ready for events.
func (e *entry) notify(events uint32) {
	want := e.events.Load()
	if want&^privateBits == 0 || events&want == 0 {
		return
	}
	ep := e.ep
	ep.readyMu.Lock()
	if !e.queued {
		e.queued = true
		ep.ready.push(e)
	}
	ep.readyMu.Unlock()
	ep.waiters.Notify(unix.POLLIN | unix.EPOLLRDNORM)
}

// scanLocked asks each entry on the ready list for its readiness, in
// order, and calls visit for those that are ready: it says whether the
// entry stays on the list and whether to stop. Entries found not ready
// leave the list; their next notification puts them back.
func (ep *epoll) scanLocked(visit func(e *entry, ready uint32) (keep, stop bool)) {
	ep.readyMu.Lock()
	todo := ep.ready
	ep.ready = readyList{}
	for e := todo.head; e != nil; e = todo.head {
		todo.remove(e)
		// Off the list before asking, so that a notification from now
		// on queues it again.
		e.queued = false
		ep.readyMu.Unlock()
		ev := e.events.Load()
		var ready uint32
		if ev&^privateBits != 0 {
			ready = e.f.Readiness(ev&^privateBits) & ev
		}
		keep, stop := false, false
		if ready != 0 {
			keep, stop = visit(e, ready)
		}
		ep.readyMu.Lock()
		if keep && !e.queued {
			e.queued = true
			ep.ready.push(e)
		}
		if stop {
			break
		}
	}
	ep.ready.prepend(todo)
	ep.readyMu.Unlock()
}

// Collect implements the non-waiting part of epoll_wait(2) on f: it fills
// out with ready events, level-triggered watches staying on the ready
// list, edge-triggered ones leaving it until their file notifies again,
// and one-shot ones disarmed until EPOLL_CTL_MOD.
func Collect(f *vfs.File, out []Event) (int, error) {
	ep, err := of(f)
	if err != nil {
		return 0, err
	}
	if len(out) == 0 {
		return 0, nil
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	n := 0
	ep.scanLocked(func(e *entry, ready uint32) (bool, bool) {
		out[n] = Event{Events: ready, Data: e.data}
		n++
		ev := e.events.Load()
		switch {
		case ev&unix.EPOLLONESHOT != 0:
			e.events.Store(ev & privateBits)
			return false, n == len(out)
		case ev&unix.EPOLLET != 0:
			return false, n == len(out)
		}
		return true, n == len(out)
	})
	return n, nil
}

// Read is EINVAL, as on Linux.
func (*epoll) Read(context.Context, *vfs.File, []byte, int64) (int, error) {
	return 0, unix.EINVAL
}

// Write is EINVAL, as on Linux.
func (*epoll) Write(context.Context, *vfs.File, []byte, int64) (int, error) {
	return 0, unix.EINVAL
}

// Release drops every watch.
func (ep *epoll) Release() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, e := range ep.entries {
		ep.removeLocked(e)
		e.cancel()
	}
}

// Readiness implements vfs.Poller: an instance is readable when one of
// its watched files is ready.
func (ep *epoll) Readiness(mask uint32) uint32 {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	found := false
	ep.scanLocked(func(*entry, uint32) (bool, bool) {
		found = true
		return true, true
	})
	if found {
		return mask & (unix.POLLIN | unix.EPOLLRDNORM)
	}
	return 0
}

// EventRegister implements vfs.Poller.
func (ep *epoll) EventRegister(w *vfs.Waiter) { ep.waiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (ep *epoll) EventUnregister(w *vfs.Waiter) { ep.waiters.EventUnregister(w) }

// AnonName implements vfs.AnonInode.
func (*epoll) AnonName() string { return "[eventpoll]" }

// Stat implements vfs.Stater.
func (*epoll) Stat(context.Context) (unix.Statx_t, error) { return vfs.AnonStat(), nil }

// link records that parent watches child, refusing (ELOOP) a watch that
// would close a loop or nest instances deeper than Linux allows.
func link(parent, child *epoll) error {
	graphMu.Lock()
	defer graphMu.Unlock()
	down, loop := depthBelow(child, parent, map[*epoll]int{})
	if loop || down+1+depthAbove(parent, map[*epoll]int{}) > maxNests {
		return unix.ELOOP
	}
	if parent.children == nil {
		parent.children = make(map[*epoll]int)
	}
	if child.parents == nil {
		child.parents = make(map[*epoll]int)
	}
	parent.children[child]++
	child.parents[parent]++
	return nil
}

// unlink undoes link.
func unlink(parent, child *epoll) {
	graphMu.Lock()
	defer graphMu.Unlock()
	if parent.children[child]--; parent.children[child] == 0 {
		delete(parent.children, child)
	}
	if child.parents[parent]--; child.parents[parent] == 0 {
		delete(child.parents, parent)
	}
}

// depthBelow is the longest chain of watches below ep, and whether target
// is among the instances below it. The graph has no loops and its depth
// is bounded, so the recursion is too; memo keeps it linear.
func depthBelow(ep, target *epoll, memo map[*epoll]int) (int, bool) {
	if ep == target {
		return 0, true
	}
	if d, ok := memo[ep]; ok {
		return d, false
	}
	d := 0
	for c := range ep.children {
		cd, loop := depthBelow(c, target, memo)
		if loop {
			return 0, true
		}
		d = max(d, cd+1)
	}
	memo[ep] = d
	return d, false
}

// depthAbove is the longest chain of watches above ep.
func depthAbove(ep *epoll, memo map[*epoll]int) int {
	if d, ok := memo[ep]; ok {
		return d
	}
	d := 0
	for p := range ep.parents {
		d = max(d, depthAbove(p, memo)+1)
	}
	memo[ep] = d
	return d
}
