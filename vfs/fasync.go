package vfs

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Owner types of F_SETOWN_EX (struct f_owner_ex), which x/sys/unix lacks.
const (
	OwnerThread  = 0 // F_OWNER_TID
	OwnerProcess = 1 // F_OWNER_PID
	OwnerGroup   = 2 // F_OWNER_PGRP
)

// Owner is the owner of a file (F_SETOWN): the thread, process or
// process group its I/O signals go to, and the real and effective user
// IDs of the process that set it, which the signal's receivers are
// checked against. The zero value is no owner.
type Owner struct {
	Type      int32
	ID        int32
	UID, EUID uint32
}

// asyncState is a file's I/O signal state: its owner, the signal
// F_SETSIG chose (0 for SIGIO without details), the O_ASYNC registration
// and the dnotify watches.
type asyncState struct {
	mu      sync.Mutex
	owner   Owner
	sig     int32
	waiter  *Waiter
	dnotify map[any]*dirNotify
}

// Owner returns f's owner (F_GETOWN, F_GETOWN_EX).
func (f *File) Owner() Owner {
	f.async.mu.Lock()
	defer f.async.mu.Unlock()
	return f.async.owner
}

// SetOwner sets f's owner (F_SETOWN, F_SETOWN_EX).
func (f *File) SetOwner(o Owner) {
	f.async.mu.Lock()
	defer f.async.mu.Unlock()
	f.async.owner = o
}

// Signal returns the signal F_SETSIG chose, 0 for SIGIO.
func (f *File) Signal() int {
	f.async.mu.Lock()
	defer f.async.mu.Unlock()
	return int(f.async.sig)
}

// SetSignal implements F_SETSIG.
func (f *File) SetSignal(sig int) {
	f.async.mu.Lock()
	defer f.async.mu.Unlock()
	f.async.sig = int32(sig)
}

// SetAsync turns O_ASYNC's signals on (send non-nil) or off for files
// whose readiness changes: send is called with the poll events that may
// have become ready, on the goroutine that changed the file and with its
// locks held (see NewWaiter), for as long as the registration lasts.
// Other files keep only the flag, as on Linux. It returns EBADF for an
// O_PATH file.
func (f *File) SetAsync(send func(events uint32)) error {
	if f.isPath() {
		return unix.EBADF
	}
	f.async.mu.Lock()
	old := f.async.waiter
	f.async.waiter = nil
	if send != nil && f.CanPoll() {
		f.async.waiter = NewWaiter(send)
	}
	w := f.async.waiter
	f.async.mu.Unlock()
	if old != nil {
		f.EventUnregister(old)
	}
	if w != nil {
		f.EventRegister(w)
	}
	for {
		flags := f.flags.Load()
		nw := flags &^ unix.O_ASYNC
		if send != nil {
			nw |= unix.O_ASYNC
		}
		if f.flags.CompareAndSwap(flags, nw) {
			return nil
		}
	}
}

// releaseAsync ends f's O_ASYNC registration and dnotify watches when it
// loses its last reference.
func (f *File) releaseAsync() {
	f.async.mu.Lock()
	w := f.async.waiter
	dns := f.async.dnotify
	f.async.waiter, f.async.dnotify = nil, nil
	f.async.mu.Unlock()
	if w != nil {
		f.EventUnregister(w)
	}
	for _, dn := range dns {
		f.vd.mnt.vfs.RemoveWatch(dn.watch)
	}
}
