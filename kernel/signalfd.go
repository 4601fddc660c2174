package kernel

import (
	"context"
	"encoding/binary"
	"sync/atomic"

	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// SignalFD is a signalfd's file: a read takes the reader's pending signals
// in the mask, thread-directed ones first, as signalfd_siginfo records.
type SignalFD struct {
	// tg is the process that created the file: Readiness and Changed
	// report its signals, having no reader to go by.
	tg   *ThreadGroup
	mask atomic.Uint64
}

// SignalFDInfoSize is the size of a signalfd_siginfo record.
const SignalFDInfoSize = 128

// NewSignalFD makes a signalfd for t's process watching mask; flags are
// the file's status flags (O_NONBLOCK).
func NewSignalFD(t *Task, mask SigSet, flags int) *vfs.File {
	s := &SignalFD{tg: t.tg}
	s.SetMask(mask)
	return vfs.NewFile(s, unix.O_RDWR|flags&unix.O_NONBLOCK)
}

// SetMask replaces the signals the file reports; SIGKILL and SIGSTOP are
// never among them.
func (s *SignalFD) SetMask(mask SigSet) {
	s.mask.Store(uint64(mask &^ Unblockable))
	s.tg.signalWaiters.Notify(unix.POLLIN)
}

// AnonName implements vfs.AnonInode.
func (s *SignalFD) AnonName() string { return "[signalfd]" }

// Read implements vfs.FileImpl. It waits for a first signal unless the
// file is non-blocking, then takes what else is pending without waiting.
func (s *SignalFD) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	t := taskFrom(ctx)
	if t == nil || len(dst) < SignalFDInfoSize {
		return 0, unix.EINVAL
	}
	mask := SigSet(s.mask.Load())
	info, ok := t.TakeSignal(mask)
	if !ok {
		switch {
		case f.StatusFlags()&unix.O_NONBLOCK != 0:
			return 0, unix.EAGAIN
		case vfs.MustNotWait(ctx):
			return 0, vfs.ErrWouldWait
		}
		var err error
		if info, err = t.WaitForSignal(mask, nil); err != nil {
			return 0, err
		}
	}
	n := 0
	for {
		putSignalFDInfo(dst[n:n+SignalFDInfoSize], &info)
		n += SignalFDInfoSize
		if len(dst)-n < SignalFDInfoSize {
			return n, nil
		}
		if info, ok = t.TakeSignal(mask); !ok {
			return n, nil
		}
	}
}

// Write implements vfs.FileImpl: a signalfd cannot be written.
func (s *SignalFD) Write(context.Context, *vfs.File, []byte, int64) (int, error) {
	return 0, unix.EINVAL
}

// Release implements vfs.FileImpl.
func (s *SignalFD) Release() {}

// Readiness implements vfs.Poller: POLLIN while a signal in the mask is
// pending for the process or one of its threads.
func (s *SignalFD) Readiness(mask uint32) uint32 {
	tg := s.tg
	tg.mu.Lock()
	pending := tg.pending.set
	for _, t := range tg.tasks {
		pending |= t.pending.set
	}
	tg.mu.Unlock()
	if pending&SigSet(s.mask.Load()) != 0 {
		return mask & unix.POLLIN
	}
	return 0
}

// EventRegister implements vfs.Poller: w hears of every signal queued
// for the process or one of its threads, and of mask changes.
func (s *SignalFD) EventRegister(w *vfs.Waiter) { s.tg.signalWaiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (s *SignalFD) EventUnregister(w *vfs.Waiter) { s.tg.signalWaiters.EventUnregister(w) }

// putSignalFDInfo encodes info as a signalfd_siginfo, copying the fields
// its layout defines, as Linux's signalfd_copyinfo does.
func putSignalFDInfo(dst []byte, info *SigInfo) {
	clear(dst)
	le := binary.LittleEndian
	copy(dst[0:12], info[0:12]) // ssi_signo, ssi_errno, ssi_code
	u32 := func(off int) uint32 { return le.Uint32(info[off:]) }
	u64 := func(off int) uint64 { return le.Uint64(info[off:]) }
	// Offsets in signalfd_siginfo.
	const (
		ssiPid      = 12
		ssiUID      = 16
		ssiFD       = 20
		ssiTID      = 24
		ssiBand     = 28
		ssiOverrun  = 32
		ssiStatus   = 40
		ssiInt      = 44
		ssiPtr      = 48
		ssiUtime    = 56
		ssiStime    = 64
		ssiAddr     = 72
		ssiAddrLSB  = 80
		ssiSyscall  = 84
		ssiCallAddr = 88
		ssiArch     = 96
	)
	switch siginfoLayout(info.Signo(), info.Code()) {
	case silKill:
		le.PutUint32(dst[ssiPid:], u32(16))
		le.PutUint32(dst[ssiUID:], u32(20))
	case silTimer:
		le.PutUint32(dst[ssiTID:], u32(16))
		le.PutUint32(dst[ssiOverrun:], u32(20))
		le.PutUint64(dst[ssiPtr:], u64(24))
		le.PutUint32(dst[ssiInt:], u32(24))
	case silPoll:
		le.PutUint32(dst[ssiBand:], u32(16))
		le.PutUint32(dst[ssiFD:], u32(24))
	case silFault:
		le.PutUint64(dst[ssiAddr:], u64(16))
	case silFaultMCE:
		le.PutUint64(dst[ssiAddr:], u64(16))
		le.PutUint16(dst[ssiAddrLSB:], le.Uint16(info[24:]))
	case silChld:
		le.PutUint32(dst[ssiPid:], u32(16))
		le.PutUint32(dst[ssiUID:], u32(20))
		le.PutUint32(dst[ssiStatus:], u32(24))
		le.PutUint64(dst[ssiUtime:], u64(32))
		le.PutUint64(dst[ssiStime:], u64(40))
	case silRT:
		le.PutUint32(dst[ssiPid:], u32(16))
		le.PutUint32(dst[ssiUID:], u32(20))
		le.PutUint64(dst[ssiPtr:], u64(24))
		le.PutUint32(dst[ssiInt:], u32(24))
	case silSys:
		le.PutUint64(dst[ssiCallAddr:], u64(16))
		le.PutUint32(dst[ssiSyscall:], u32(24))
		le.PutUint32(dst[ssiArch:], u32(28))
	}
}

// siginfo layouts: which union member of a siginfo is valid.
type silLayout int

const (
	silKill silLayout = iota
	silTimer
	silPoll
	silFault
	silFaultMCE
	silChld
	silRT
	silSys
)

// siginfoLayout is Linux's siginfo_layout for x86-64.
func siginfoLayout(sig, code int) silLayout {
	const (
		siSigIO     = -5
		busMCEErrAR = 4
		busMCEErrAO = 5
		nSigPoll    = 6
	)
	if code > SiUser && code < SiKernel {
		if limit, layout := sigSpecificCodes(sig); code <= limit {
			if sig == int(unix.SIGBUS) && code >= busMCEErrAR && code <= busMCEErrAO {
				return silFaultMCE
			}
			return layout
		}
		if code <= nSigPoll {
			return silPoll
		}
		return silKill
	}
	switch {
	case code == SiTimer:
		return silTimer
	case code == siSigIO:
		return silPoll
	case code < 0:
		return silRT
	}
	return silKill
}

// sigSpecificCodes is the highest si_code with a meaning of its own for
// sig (NSIGILL, NSIGFPE, ...) and the layout it implies; 0 for signals
// without such codes.
func sigSpecificCodes(sig int) (int, silLayout) {
	switch unix.Signal(sig) {
	case unix.SIGILL:
		return 11, silFault
	case unix.SIGFPE:
		return 15, silFault
	case unix.SIGSEGV:
		return 10, silFault
	case unix.SIGBUS:
		return 5, silFault
	case unix.SIGTRAP:
		return 6, silFault
	case unix.SIGCHLD:
		return 6, silChld
	case unix.SIGSYS:
		return 2, silSys
	}
	return 0, silKill
}
