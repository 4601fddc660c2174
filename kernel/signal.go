package kernel

import (
	"encoding/binary"
	"math/bits"

	"golang.org/x/sys/unix"
)

// NumSignals is the highest signal number (SIGRTMAX).
const NumSignals = 64

// sigRTMin is the first real-time signal: those queue, the others do not.
const sigRTMin = 32

// SigSet is a set of signals: bit n-1 stands for signal n.
type SigSet uint64

// SigBit is the set holding only sig.
func SigBit(sig int) SigSet { return 1 << (sig - 1) }

// Has reports whether sig is in s.
func (s SigSet) Has(sig int) bool { return s&SigBit(sig) != 0 }

// Unblockable are the signals no mask can block.
const Unblockable = SigSet(1<<(unix.SIGKILL-1) | 1<<(unix.SIGSTOP-1))

// syncSignals are taken before others, as Linux does: they report a fault
// of the instruction the thread stands on.
const syncSignals = SigSet(1<<(unix.SIGSEGV-1) | 1<<(unix.SIGBUS-1) | 1<<(unix.SIGILL-1) |
	1<<(unix.SIGTRAP-1) | 1<<(unix.SIGFPE-1) | 1<<(unix.SIGSYS-1))

const stopSignals = SigSet(1<<(unix.SIGSTOP-1) | 1<<(unix.SIGTSTP-1) | 1<<(unix.SIGTTIN-1) | 1<<(unix.SIGTTOU-1))

// Signal dispositions and flags (asm/signal.h).
const (
	SigDfl = 0
	SigIgn = 1

	SaNoCldStop = 0x1
	SaNoCldWait = 0x2
	SaSigInfo   = 0x4
	SaOnStack   = 0x08000000
	SaRestart   = 0x10000000
	SaNoDefer   = 0x40000000
	SaResetHand = 0x80000000
	SaRestorer  = 0x04000000
)

// si_code values.
const (
	SiUser     = 0
	SiKernel   = 0x80
	SiQueue    = -1
	SiTimer    = -2
	SiTkill    = -6
	segvMapErr = 1
	segvAccErr = 2
	busAdrAln  = 1
	illIllOpn  = 2
	fpeIntDiv  = 1
	fpeFltInv  = 7
	trapBrkpt  = 1
	cldExited  = 1
	cldKilled  = 2
	cldStopped = 5
	cldCont    = 6
)

// SigInfo is a siginfo_t as the guest sees it.
type SigInfo [128]byte

// NewSigInfo returns a siginfo with signal sig and code code.
func NewSigInfo(sig, code int) SigInfo {
	var si SigInfo
	binary.LittleEndian.PutUint32(si[0:], uint32(sig))
	binary.LittleEndian.PutUint32(si[8:], uint32(int32(code)))
	return si
}

// Signo is si_signo.
func (si *SigInfo) Signo() int { return int(int32(binary.LittleEndian.Uint32(si[0:]))) }

// SetSigno changes si_signo.
func (si *SigInfo) SetSigno(sig int) { binary.LittleEndian.PutUint32(si[0:], uint32(sig)) }

// Code is si_code.
func (si *SigInfo) Code() int { return int(int32(binary.LittleEndian.Uint32(si[8:]))) }

// SetSender fills si_pid and si_uid (kill, sigqueue, SIGCHLD).
func (si *SigInfo) SetSender(pid int32, uid uint32) {
	binary.LittleEndian.PutUint32(si[16:], uint32(pid))
	binary.LittleEndian.PutUint32(si[20:], uid)
}

// SetAddr fills si_addr (faults).
func (si *SigInfo) SetAddr(addr uint64) { binary.LittleEndian.PutUint64(si[16:], addr) }

// SetTimer fills si_tid (the timer id), si_overrun and si_value.
func (si *SigInfo) SetTimer(id int32, overrun int32, value uint64) {
	binary.LittleEndian.PutUint32(si[16:], uint32(id))
	binary.LittleEndian.PutUint32(si[20:], uint32(overrun))
	binary.LittleEndian.PutUint64(si[24:], value)
}

func (si *SigInfo) setChild(pid int32, status int32) {
	si.SetSender(pid, 0)
	binary.LittleEndian.PutUint32(si[24:], uint32(status))
}

// queuedSignal is a pending signal: its siginfo and, for a POSIX timer's
// signal, the timer and the arming (seq) it came from, which the guest
// cannot forge.
type queuedSignal struct {
	info  SigInfo
	timer *posixTimer
	seq   uint64
}

// sigPending is a queue of pending signals: one of each standard signal,
// several of each real-time one.
type sigPending struct {
	set   SigSet
	queue [NumSignals + 1][]queuedSignal
}

// rtQueueMax bounds the queued real-time signals per queue, as
// RLIMIT_SIGPENDING does.
const rtQueueMax = 1024

// add queues q. A timer's signal queues beside a pending standard signal
// of the same number, as on Linux: the timer owns its queue entry.
func (p *sigPending) add(q queuedSignal) bool {
	sig := q.info.Signo()
	if sig < sigRTMin {
		if p.set.Has(sig) && q.timer == nil {
			return true
		}
	} else if len(p.queue[sig]) >= rtQueueMax {
		return false
	}
	p.queue[sig] = append(p.queue[sig], q)
	p.set |= SigBit(sig)
	return true
}

// first returns the signal in p and in allowed to take next: faults first,
// then the lowest number.
func (p *sigPending) first(allowed SigSet) int {
	s := p.set & allowed
	if s == 0 {
		return 0
	}
	if sync := s & syncSignals; sync != 0 {
		s = sync
	}
	return bits.TrailingZeros64(uint64(s)) + 1
}

func (p *sigPending) take(sig int) queuedSignal {
	q := p.queue[sig]
	info := q[0]
	p.queue[sig] = q[1:]
	if len(p.queue[sig]) == 0 {
		p.queue[sig] = nil
		p.set &^= SigBit(sig)
	}
	return info
}

func (p *sigPending) discard(s SigSet) {
	for sig := 1; sig <= NumSignals; sig++ {
		if s.Has(sig) {
			p.queue[sig] = nil
		}
	}
	p.set &^= s
}

// defaultAction is what SIG_DFL does with a signal.
type defaultAction int

const (
	actTerminate defaultAction = iota
	actCore
	actIgnore
	actStop
	actContinue
)

func defaultActionOf(sig int) defaultAction {
	switch unix.Signal(sig) {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH:
		return actIgnore
	case unix.SIGCONT:
		return actContinue
	case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return actStop
	case unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGBUS, unix.SIGFPE,
		unix.SIGSEGV, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGSYS:
		return actCore
	}
	return actTerminate
}

// ignoredLocked reports whether sig would be thrown away on delivery.
func (tg *ThreadGroup) ignoredLocked(sig int) bool {
	h := tg.sigactions[sig].Handler
	if h == SigIgn {
		return true
	}
	return h == SigDfl && (defaultActionOf(sig) == actIgnore || defaultActionOf(sig) == actContinue)
}
