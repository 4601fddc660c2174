// Package inotify implements inotify(7) instances: files that queue the
// events of the watches added to them (vfs.Watch) as struct inotify_event
// records.
package inotify

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// Defaults of the limits, those of /proc/sys/fs/inotify on Linux.
const (
	DefaultMaxQueuedEvents  = 16384
	DefaultMaxUserInstances = 128
	DefaultMaxUserWatches   = 8192
)

// Bounds on the host memory inotify takes, whatever the sysctls say (root
// in the sandbox may raise them as far as Linux allows): the events queued
// in all of a sandbox's instances, and its watches.
const (
	MaxQueuedBytes = 64 << 20
	MaxWatches     = 1 << 20
)

// InitFlags are the flags inotify_init1 accepts.
const InitFlags = unix.IN_NONBLOCK | unix.IN_CLOEXEC

// allBits are the mask bits inotify_add_watch knows (ALL_INOTIFY_BITS).
const allBits = unix.IN_ALL_EVENTS | unix.IN_UNMOUNT | unix.IN_Q_OVERFLOW | unix.IN_IGNORED |
	unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK | unix.IN_MASK_ADD |
	unix.IN_MASK_CREATE | unix.IN_ISDIR | unix.IN_ONESHOT

// reported are the bits an event's mask shows the reader.
const reported = unix.IN_ALL_EVENTS | unix.IN_ISDIR | unix.IN_UNMOUNT | unix.IN_IGNORED | unix.IN_Q_OVERFLOW

// eventSize is sizeof(struct inotify_event), without the name.
const eventSize = 16

var _ vfs.Poller = (*Instance)(nil)

// Limits are a sandbox's inotify limits and counts, per user as on
// Linux. NewLimits makes them.
type Limits struct {
	MaxQueuedEvents  atomic.Int32
	MaxUserInstances atomic.Int32
	MaxUserWatches   atomic.Int32

	// queuedBytes counts the bytes of the events queued in every
	// instance, against MaxQueuedBytes.
	queuedBytes atomic.Int64

	mu           sync.Mutex
	instances    map[uint32]int
	watches      map[uint32]int
	totalWatches int
}

// NewLimits returns limits at Linux's defaults.
func NewLimits() *Limits {
	l := &Limits{instances: make(map[uint32]int), watches: make(map[uint32]int)}
	l.MaxQueuedEvents.Store(DefaultMaxQueuedEvents)
	l.MaxUserInstances.Store(DefaultMaxUserInstances)
	l.MaxUserWatches.Store(DefaultMaxUserWatches)
	return l
}

// takeInstance counts one more instance of uid, unless that passes
// max_user_instances.
func (l *Limits) takeInstance(uid uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.instances[uid] >= int(l.MaxUserInstances.Load()) {
		return false
	}
	l.instances[uid]++
	return true
}

// takeWatch counts one more watch of uid, unless that passes
// max_user_watches or MaxWatches in all.
func (l *Limits) takeWatch(uid uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watches[uid] >= int(l.MaxUserWatches.Load()) || l.totalWatches >= MaxWatches {
		return false
	}
	l.watches[uid]++
	l.totalWatches++
	return true
}

func (l *Limits) giveInstance(uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.instances[uid]--; l.instances[uid] <= 0 {
		delete(l.instances, uid)
	}
}

func (l *Limits) giveWatch(uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.totalWatches--
	if l.watches[uid]--; l.watches[uid] <= 0 {
		delete(l.watches, uid)
	}
}

// event is a queued event.
type event struct {
	wd     int32
	mask   uint32
	cookie uint32
	name   string
}

// size is the event's record size: the name is padded with NULs to a
// multiple of the header's size, as Linux pads it.
func (e *event) size() int {
	if e.name == "" {
		return eventSize
	}
	return eventSize + nameLen(e.name)
}

func nameLen(name string) int {
	return (len(name) + 1 + eventSize - 1) &^ (eventSize - 1)
}

// watch is a watch of the instance.
type watch struct {
	wd int32
	w  *vfs.Watch
}

// Instance is the file behind an inotify descriptor.
type Instance struct {
	v      *vfs.VFS
	limits *Limits
	uid    uint32

	mu       sync.Mutex
	queue    []event
	bytes    int
	overflow bool // queue ends with IN_Q_OVERFLOW
	byWD     map[int32]*watch
	byInode  map[any]*watch
	lastWD   int32
	released bool
	// waiters are readers blocked here, poll and epoll.
	waiters vfs.Queue
}

// New implements inotify_init1(2) for a process of user uid: flags may
// hold IN_NONBLOCK and IN_CLOEXEC (the caller's: it belongs to the
// descriptor); others are EINVAL, and a user past max_user_instances gets
// EMFILE.
func New(v *vfs.VFS, limits *Limits, uid uint32, flags int) (*vfs.File, error) {
	if flags&^InitFlags != 0 {
		return nil, unix.EINVAL
	}
	if !limits.takeInstance(uid) {
		return nil, unix.EMFILE
	}
	in := &Instance{v: v, limits: limits, uid: uid, byWD: make(map[int32]*watch), byInode: make(map[any]*watch)}
	return vfs.NewFile(in, unix.O_RDONLY|flags&unix.O_NONBLOCK), nil
}

// Of returns the instance behind f, if f is an inotify descriptor.
func Of(f *vfs.File) (*Instance, bool) {
	in, ok := f.Impl().(*Instance)
	return in, ok
}

// AddWatch implements inotify_add_watch(2) for the object at vd (which
// the caller resolved with mask's IN_DONT_FOLLOW and IN_ONLYDIR).
func (in *Instance) AddWatch(vd vfs.VirtualDentry, mask uint32) (int32, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.released {
		return 0, unix.EBADF
	}
	if w, ok := in.byInode[vd.WatchKey()]; ok {
		if mask&unix.IN_MASK_CREATE != 0 {
			return 0, unix.EEXIST
		}
		if mask&unix.IN_MASK_ADD != 0 {
			mask |= w.w.Mask()
		}
		w.w.SetMask(mask &^ (unix.IN_MASK_ADD | unix.IN_MASK_CREATE))
		return w.wd, nil
	}
	if !in.limits.takeWatch(in.uid) {
		return 0, unix.ENOSPC
	}
	wd := in.nextWD()
	w := &watch{wd: wd}
	in.byWD[wd] = w
	in.byInode[vd.WatchKey()] = w
	w.w = in.v.AddWatch(vd, mask&^(unix.IN_MASK_ADD|unix.IN_MASK_CREATE), in)
	return wd, nil
}

// nextWD returns an unused watch descriptor: they are handed out in
// increasing order and reused only after wrapping, as Linux's cyclic
// allocator does. in.mu is held.
func (in *Instance) nextWD() int32 {
	for {
		in.lastWD++
		if in.lastWD <= 0 {
			in.lastWD = 1
		}
		if _, used := in.byWD[in.lastWD]; !used {
			return in.lastWD
		}
	}
}

// RemoveWatch implements inotify_rm_watch(2): the watch ends with an
// IN_IGNORED event (EINVAL for an unknown wd).
func (in *Instance) RemoveWatch(wd int32) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	w, ok := in.byWD[wd]
	if !ok {
		return unix.EINVAL
	}
	if in.v.RemoveWatch(w.w) {
		in.forgetLocked(w)
		in.queueLocked(event{wd: wd, mask: unix.IN_IGNORED})
	}
	return nil
}

// forgetLocked drops w from the instance. in.mu is held.
func (in *Instance) forgetLocked(w *watch) {
	delete(in.byWD, w.wd)
	if in.byInode[w.w.Key()] == w {
		delete(in.byInode, w.w.Key())
	}
	in.limits.giveWatch(in.uid)
}

// WatchEvent implements vfs.WatchTarget.
func (in *Instance) WatchEvent(vw *vfs.Watch, mask, cookie uint32, name string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	w, ok := in.byInode[vw.Key()]
	if !ok || w.w != vw {
		return
	}
	in.queueLocked(event{wd: w.wd, mask: mask & reported, cookie: cookie, name: name})
	switch {
	case mask&unix.IN_IGNORED != 0:
		in.forgetLocked(w)
	case vw.Mask()&unix.IN_ONESHOT != 0 && in.v.RemoveWatch(vw):
		in.forgetLocked(w)
		in.queueLocked(event{wd: w.wd, mask: unix.IN_IGNORED})
	}
}

// queueLocked adds e to the queue, unless it repeats the last event (as
// Linux compares them: the cookie aside, and never an IN_IGNORED). A
// queue of max_queued_events, or one that would pass the sandbox's
// MaxQueuedBytes, takes one IN_Q_OVERFLOW event instead and then nothing
// until it shrinks. in.mu is held.
func (in *Instance) queueLocked(e event) {
	if in.released {
		return
	}
	if len(in.queue) >= int(in.limits.MaxQueuedEvents.Load()) ||
		in.limits.queuedBytes.Load()+int64(e.size()) > MaxQueuedBytes {
		if in.overflow {
			return
		}
		e = event{wd: -1, mask: unix.IN_Q_OVERFLOW}
		in.overflow = true
	} else if n := len(in.queue); n > 0 {
		last := &in.queue[n-1]
		if last.mask&unix.IN_IGNORED == 0 && last.mask == e.mask && last.wd == e.wd && last.name == e.name {
			return
		}
	}
	in.queue = append(in.queue, e)
	in.bytes += e.size()
	in.limits.queuedBytes.Add(int64(e.size()))
	in.waiters.Notify(unix.POLLIN | unix.EPOLLRDNORM)
}

// Read implements vfs.FileImpl: as many whole events as dst holds (EINVAL
// when the first does not fit), waiting for one when there are none.
func (in *Instance) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for len(in.queue) == 0 {
		if err := in.waitLocked(ctx, f); err != nil {
			return 0, err
		}
	}
	n := 0
	for len(in.queue) > 0 {
		e := &in.queue[0]
		size := e.size()
		if size > len(dst)-n {
			if n == 0 {
				return 0, unix.EINVAL
			}
			break
		}
		rec := dst[n : n+size]
		binary.LittleEndian.PutUint32(rec[0:], uint32(e.wd))
		binary.LittleEndian.PutUint32(rec[4:], e.mask)
		binary.LittleEndian.PutUint32(rec[8:], e.cookie)
		binary.LittleEndian.PutUint32(rec[12:], uint32(size-eventSize))
		clear(rec[eventSize+copy(rec[eventSize:], e.name):])
		n += size
		in.bytes -= size
		in.limits.queuedBytes.Add(-int64(size))
		if e.mask&unix.IN_Q_OVERFLOW != 0 {
			in.overflow = false
		}
		in.queue[0] = event{}
		in.queue = in.queue[1:]
	}
	if len(in.queue) == 0 {
		in.queue = nil
	}
	return n, nil
}

// waitLocked releases in.mu until an event is queued or ctx is done
// (EINTR). It never waits for a non-blocking file or a caller that must
// not wait.
func (in *Instance) waitLocked(ctx context.Context, f *vfs.File) error {
	if f.StatusFlags()&unix.O_NONBLOCK != 0 {
		return unix.EAGAIN
	}
	if vfs.MustNotWait(ctx) {
		return vfs.ErrWouldWait
	}
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	in.waiters.EventRegister(w)
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.waiters.EventUnregister(w)
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return unix.EINTR
	}
}

// Write implements vfs.FileImpl; the file is read-only, so the VFS
// refuses writes before they get here.
func (in *Instance) Write(context.Context, *vfs.File, []byte, int64) (int, error) {
	return 0, unix.EINVAL
}

// Release implements vfs.FileImpl: the instance's watches end.
func (in *Instance) Release() {
	in.mu.Lock()
	in.released = true
	watches := make([]*watch, 0, len(in.byWD))
	for _, w := range in.byWD {
		watches = append(watches, w)
	}
	in.byWD, in.byInode, in.queue = nil, nil, nil
	in.limits.queuedBytes.Add(-int64(in.bytes))
	in.bytes = 0
	in.mu.Unlock()
	for _, w := range watches {
		in.v.RemoveWatch(w.w)
		in.limits.giveWatch(in.uid)
	}
	in.limits.giveInstance(in.uid)
}

// Readiness implements vfs.Poller: readable while events are queued.
func (in *Instance) Readiness(mask uint32) uint32 {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.queue) > 0 {
		return mask & (unix.POLLIN | unix.EPOLLRDNORM)
	}
	return 0
}

// EventRegister implements vfs.Poller.
func (in *Instance) EventRegister(w *vfs.Waiter) { in.waiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (in *Instance) EventUnregister(w *vfs.Waiter) { in.waiters.EventUnregister(w) }

// Queued implements vfs.Queuer (FIONREAD): the bytes of the queued
// events.
func (in *Instance) Queued() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.bytes
}

// AnonName implements vfs.AnonInode.
func (*Instance) AnonName() string { return "inotify" }

// Stat implements vfs.Stater.
func (*Instance) Stat(context.Context) (unix.Statx_t, error) { return vfs.AnonStat(), nil }

// FDInfo implements vfs.FDInfoer: a line per watch, newest first, as
// Linux shows them, without the file handles (as for a file system that
// cannot export them). sdev is in the kernel's encoding of device numbers.
func (in *Instance) FDInfo() string {
	in.mu.Lock()
	watches := make([]*watch, 0, len(in.byWD))
	for _, w := range in.byWD {
		watches = append(watches, w)
	}
	in.mu.Unlock()
	slices.SortFunc(watches, func(a, b *watch) int { return cmp.Compare(b.wd, a.wd) })
	var b strings.Builder
	for _, w := range watches {
		dev := w.w.Device()
		fmt.Fprintf(&b, "inotify wd:%x ino:%x sdev:%x mask:%x ignored_mask:0 \n", w.wd, w.w.Ino(),
			unix.Major(dev)<<20|unix.Minor(dev), w.w.Mask()&(unix.IN_ALL_EVENTS|unix.IN_ONESHOT|unix.IN_EXCL_UNLINK))
	}
	return b.String()
}
