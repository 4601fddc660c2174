package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvmbox/kvmbox/kvm"
	"golang.org/x/sys/unix"
)

// The exitless path: a host worker polls the mailboxes of running vCPUs
// and serves fast system calls while the guest spins in its stub, so a hot
// syscall loop takes no VM exit. The worker polls only while syscalls keep
// arriving; after workerIdle without one it tells the guests to stop
// posting and parks, and syscall exits wake it (see nudgeStreak). The
// guest's spin is bounded by spinLimit pause iterations (about 25 µs here,
// the cost of one exit) while no worker has taken its call, after which it
// exits anyway.
//
// The guest posts only the calls the worker may serve (the post mask); the
// others, which would cost a hand-over and then the exit, exit at once. A
// call the worker declines (a read that would wait) is withheld from the
// worker for the thread's next repostAfter calls of that number, so that a
// thread that blocks in read after read pays the exit only.
//
// A parked worker is woken when calls it could serve take the exit close
// together (nudgeStreak of them, each within nudgeGap of the last): a hot
// loop, not a lone call, which would keep it polling for nothing.
const (
	workerIdle  = 500 * time.Microsecond
	yieldAfter  = 50 * time.Microsecond
	spinLimit   = 1000
	repostAfter = 16
	nudgeGap    = 200 * time.Microsecond
	nudgeStreak = 3
)

// exitless is one sandbox's worker and the vCPUs it serves.
type exitless struct {
	k       *Kernel
	enabled bool
	mu      sync.Mutex                // serialises changes to served
	served  atomic.Pointer[[]*served] // read by the worker without locking
	polling atomic.Bool
	wake    chan struct{}
	stop    chan struct{}
	once    sync.Once
	// lastNudge is when a call the worker could have served last took the
	// exit (Unix nanoseconds), and streak how many did so close together.
	lastNudge atomic.Int64
	streak    atomic.Int32
	// postMask is every call the worker may serve.
	postMask kvm.PostMask
}

type served struct {
	t    *Task
	vcpu *kvm.VCPU
}

func newExitless(k *Kernel) *exitless {
	e := &exitless{k: k, wake: make(chan struct{}, 1), stop: make(chan struct{}), enabled: runtime.NumCPU() > 1 && !k.cfg.ExitPathOnly}
	e.served.Store(&[]*served{})
	for nr := uint64(0); nr < kvm.PostableSyscalls; nr++ {
		if k.cfg.Syscalls.MayBeFast(nr) {
			e.postMask[nr/64] |= 1 << (nr % 64)
		}
	}
	return e
}

// add starts serving t's vCPU.
func (e *exitless) add(t *Task, vcpu *kvm.VCPU) {
	if !e.enabled {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	list := append(append([]*served{}, *e.served.Load()...), &served{t: t, vcpu: vcpu})
	vcpu.SetPostMask(&e.postMask)
	vcpu.SetPolling(e.polling.Load(), spinLimit)
	e.served.Store(&list)
	e.once.Do(func() {
		e.k.background.Add(1)
		go func() {
			defer e.k.background.Done()
			e.run()
		}()
	})
}

// remove stops serving t's vCPU and waits for a request in flight.
func (e *exitless) remove(t *Task) {
	if !e.enabled {
		return
	}
	e.mu.Lock()
	old := *e.served.Load()
	list := make([]*served, 0, len(old))
	for _, s := range old {
		if s.t != t {
			list = append(list, s)
		}
	}
	e.served.Store(&list)
	e.mu.Unlock()
	// A worker may still hold the old list: once it sees unserved it
	// leaves the vCPU alone, which may be serving another thread by then.
	t.serveMu.Lock()
	t.unserved = true
	t.serveMu.Unlock()
}

// exited is told of each system call that took the exit, on the task's
// thread with serveMu held: it posts a withheld number again after
// repostAfter calls, and wakes the worker if it could have served this one
// and others just before it, and did not decline the last one.
func (e *exitless) exited(t *Task, vcpu *kvm.VCPU, nr uint64, args *SyscallArgs) {
	if !e.enabled {
		return
	}
	if nr < kvm.PostableSyscalls && t.withheld[nr/64]&(1<<(nr%64)) != 0 {
		t.withheldCalls[nr]++
		if t.withheldCalls[nr] >= repostAfter {
			t.withheld[nr/64] &^= 1 << (nr % 64)
			vcpu.SetPosting(nr, true)
		}
		return // the worker declined the last one: no reason to wake it
	}
	if e.polling.Load() || !e.k.cfg.Syscalls.Fast(t, nr, args) {
		return
	}
	now := time.Now().UnixNano()
	if now-e.lastNudge.Swap(now) > int64(nudgeGap) {
		e.streak.Store(1)
		return
	}
	if e.streak.Add(1) < nudgeStreak {
		return
	}
	e.streak.Store(0)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// decline hands a request back to the guest, which exits, and withholds
// its number from the worker for a while; serveMu is held.
func (e *exitless) decline(s *served, nr uint64) {
	if nr < kvm.PostableSyscalls {
		s.t.withheld[nr/64] |= 1 << (nr % 64)
		s.t.withheldCalls[nr] = 0
		s.vcpu.SetPosting(nr, false)
	}
	s.vcpu.Decline()
}

func (e *exitless) close() {
	close(e.stop)
}

func (e *exitless) setPolling(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.polling.Store(on)
	for _, s := range *e.served.Load() {
		s.vcpu.SetPolling(on, spinLimit)
	}
}

func (e *exitless) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var req kvm.Request
	for {
		select {
		case <-e.wake:
		case <-e.stop:
			return
		}
		e.setPolling(true)
		lastWork := time.Now()
		for idle := 0; ; idle++ {
			if e.serveOnce(&req) {
				idle = 0
				lastWork = time.Now()
				continue
			}
			if idle%64 == 63 {
				since := time.Since(lastWork)
				if since > workerIdle {
					break
				}
				// Between the calls of a busy guest, keep the core; in a
				// lull, let whatever else wants it run: on a two-core host
				// the vCPU threads and the host kernel need it too.
				if since > yieldAfter {
					unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
				}
			}
		}
		e.setPolling(false)
		// A request posted just before polling stopped is still waiting:
		// serve it now rather than let the guest spin out.
		e.serveOnce(&req)
	}
}

// serveOnce takes every posted request once and reports whether it served
// any: declined requests do not keep the worker polling.
func (e *exitless) serveOnce(req *kvm.Request) bool {
	served := false
	for _, s := range *e.served.Load() {
		if !s.vcpu.Posted() || !s.t.serveMu.TryLock() {
			continue
		}
		if !s.t.unserved && s.vcpu.TakeRequest(req) && e.serve(s, req) {
			served = true
		}
		s.t.serveMu.Unlock()
	}
	return served
}

// serve serves a taken request, or declines it; it reports which.
func (e *exitless) serve(s *served, req *kvm.Request) bool {
	t, k := s.t, e.k
	args := SyscallArgs(req.Args)
	if t.tg.Exiting() || !k.cfg.Syscalls.Fast(t, req.Nr, &args) {
		e.decline(s, req.Nr)
		return false
	}
	t.onWorker = true
	ret, ok := k.cfg.Syscalls.Serve(t, req.Nr, &args)
	t.onWorker = false
	if !ok {
		e.decline(s, req.Nr)
		return false
	}
	k.syscalls.Add(1)
	if t.tg.mm.TakeTLBFlush() {
		s.vcpu.FlushTLBOnReturn()
	}
	s.vcpu.Complete(ret)
	return true
}
