// Package vdso holds kvmbox's vDSO: an ELF image mapped into every process
// (AT_SYSINFO_EHDR) whose time functions read a page the kernel keeps
// current, so that clock_gettime, gettimeofday and time never leave the
// guest. vdso.so is built from vdso.c by `go generate ./kernel/vdso`.
package vdso

import (
	_ "embed"
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// Image is the vDSO, as mapped: it fits in ImagePages pages.
//
//go:embed vdso.so
var Image []byte

// ImagePages is the number of pages Image takes.
var ImagePages = (len(Image) + 4095) / 4096

// The time page (vvar) layout; vdso.c's struct vvar must match.
const (
	offSeq       = 0
	offValid     = 4
	offTSCBase   = 8
	offMult      = 16
	offShift     = 24
	offRealtime  = 32
	offMonotonic = 40
	offBoottime  = 48
	offTAI       = 56
)

// shift is the fixed-point shift of the TSC-to-nanoseconds factor.
const shift = 32

// Clocks are the kernel's clocks at the moment the guest's TSC read TSC.
type Clocks struct {
	TSC                                uint64
	Realtime, Monotonic, Boottime, TAI int64 // nanoseconds
}

// TimePage is the guest-visible time page, written by one goroutine.
type TimePage struct {
	page []byte
	mult uint64
	last Clocks
}

// NewTimePage prepares page (4096 bytes of guest memory) for a guest TSC
// running at tscKHz.
func NewTimePage(page []byte, tscKHz uint64) *TimePage {
	hi, lo := bits.Mul64(1_000_000, 1<<shift)
	mult, _ := bits.Div64(hi, lo, tscKHz)
	return &TimePage{page: page, mult: mult}
}

func (p *TimePage) word32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&p.page[off])) }

// elapsed converts TSC ticks since the last update to nanoseconds, as the
// guest does.
func (p *TimePage) elapsed(tsc uint64) int64 {
	if tsc <= p.last.TSC {
		return 0
	}
	hi, lo := bits.Mul64(tsc-p.last.TSC, p.mult)
	return int64(hi<<(64-shift) | lo>>shift)
}

// Update publishes c. Monotonic clocks never go backwards: where the
// guest's extrapolation from the previous update is already ahead of c, it
// is kept.
func (p *TimePage) Update(c Clocks) {
	if p.last.TSC != 0 {
		d := p.elapsed(c.TSC)
		c.Monotonic = max(c.Monotonic, p.last.Monotonic+d)
		c.Boottime = max(c.Boottime, p.last.Boottime+d)
	}
	seq := p.word32(offSeq)
	atomic.StoreUint32(seq, atomic.LoadUint32(seq)+1)
	le := binary.LittleEndian
	le.PutUint64(p.page[offTSCBase:], c.TSC)
	le.PutUint64(p.page[offMult:], p.mult)
	le.PutUint32(p.page[offShift:], shift)
	le.PutUint64(p.page[offRealtime:], uint64(c.Realtime))
	le.PutUint64(p.page[offMonotonic:], uint64(c.Monotonic))
	le.PutUint64(p.page[offBoottime:], uint64(c.Boottime))
	le.PutUint64(p.page[offTAI:], uint64(c.TAI))
	atomic.StoreUint32(p.word32(offValid), 1)
	atomic.StoreUint32(seq, atomic.LoadUint32(seq)+1)
	p.last = c
}
