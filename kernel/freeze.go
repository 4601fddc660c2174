package kernel

import (
	"errors"
	"sync"
)

// ErrFrozen and ErrNotFrozen are Freeze's and Thaw's errors.
var (
	ErrFrozen    = errors.New("kernel: frozen already")
	ErrNotFrozen = errors.New("kernel: not frozen")
)

// freezer parks every task of the kernel outside the guest, as the cgroup
// freezer does: a task only ever stops where it would enter the guest, so
// nothing the guest can observe (no signal, no stop, no wait status)
// marks it, and a system call blocked in the host finishes and then waits.
type freezer struct {
	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed when the freeze ends
	// inGuest counts tasks between enter and leave: in the guest or about
	// to be. A freeze is complete when it is zero.
	inGuest int
	left    *sync.Cond
}

func newFreezer() *freezer {
	f := &freezer{}
	f.left = sync.NewCond(&f.mu)
	return f
}

// enter waits while the kernel is frozen, then counts the caller as in
// the guest. It reports false, counting nothing, when gone is closed
// first (the task's process is exiting).
func (f *freezer) enter(gone <-chan struct{}) bool {
	f.mu.Lock()
	for f.frozen {
		thawed := f.thawed
		f.mu.Unlock()
		select {
		case <-thawed:
		case <-gone:
			return false
		}
		f.mu.Lock()
	}
	f.inGuest++
	f.mu.Unlock()
	return true
}

// leave counts the caller out of the guest.
func (f *freezer) leave() {
	f.mu.Lock()
	f.inGuest--
	if f.inGuest == 0 {
		f.left.Broadcast()
	}
	f.mu.Unlock()
}

// freeze stops tasks from entering the guest, has kick push out those
// in it, and returns once none is left there. It reports false when the
// kernel was frozen already.
func (f *freezer) freeze(kick func()) bool {
	f.mu.Lock()
	if f.frozen {
		f.mu.Unlock()
		return false
	}
	f.frozen = true
	f.thawed = make(chan struct{})
	f.mu.Unlock()
	kick()
	f.mu.Lock()
	for f.inGuest > 0 {
		f.left.Wait()
	}
	f.mu.Unlock()
	return true
}

// thaw lets tasks enter the guest again; it reports false when the
// kernel was not frozen.
func (f *freezer) thaw() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		return false
	}
	f.frozen = false
	close(f.thawed)
	return true
}

// isFrozen reports whether a freeze is in effect.
func (f *freezer) isFrozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen
}

// Freeze stops every task of the kernel from running guest code until
// Thaw, and returns once none runs any: those in the guest leave it
// through a kick, which the guest cannot tell from an interrupt, and
// those in the host wait before they enter it again. Timers and blocked
// system calls go on. It fails with ErrFrozen when the kernel is
// frozen already.
func (k *Kernel) Freeze() error {
	ok := k.freezer.freeze(func() {
		k.mu.Lock()
		tasks := make([]*Task, 0, len(k.tasks))
		for _, t := range k.tasks {
			tasks = append(tasks, t)
		}
		k.mu.Unlock()
		for _, t := range tasks {
			t.kick()
		}
	})
	if !ok {
		return ErrFrozen
	}
	return nil
}

// Thaw ends a freeze; it fails with ErrNotFrozen when there is none.
func (k *Kernel) Thaw() error {
	if !k.freezer.thaw() {
		return ErrNotFrozen
	}
	return nil
}

// Frozen reports whether the kernel is frozen.
func (k *Kernel) Frozen() bool { return k.freezer.isFrozen() }

// SetMaxTasks changes the bound on threads: clone past it fails with
// EAGAIN; threads running already beyond a lower one keep running.
func (k *Kernel) SetMaxTasks(n int) {
	if n <= 0 {
		n = defaultMaxTasks
	}
	k.mu.Lock()
	k.cfg.MaxTasks = n
	k.mu.Unlock()
}

// TaskCount is the number of threads counted against MaxTasks now.
func (k *Kernel) TaskCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.taskCount
}
