package kernel

import (
	"encoding/binary"

	"github.com/kvmbox/kvmbox/kvm"
	"golang.org/x/sys/unix"
)

// The x86-64 signal frame, as Linux builds it on the user stack:
//
//	rt_sigframe: pretcode (the restorer), ucontext, siginfo
//	ucontext:    uc_flags, uc_link, uc_stack, uc_mcontext (sigcontext), uc_sigmask
//	below it, 64-byte aligned, the XSAVE area with its software bytes
const (
	frameUContext   = 8
	frameInfo       = frameUContext + ucSize
	frameSize       = frameInfo + 128
	ucFlags         = 0
	ucStack         = 16
	ucMContext      = 40
	ucSigMask       = ucMContext + sigcontextSize
	ucSize          = ucSigMask + 8
	sigcontextSize  = 256
	scFPState       = 184
	redZone         = 128
	ucFPXState      = 0x1
	ucSigcontextSS  = 0x2
	fpXStateMagic1  = 0x46505853
	fpXStateMagic2  = 0x46505845
	fxswBytesOffset = 464
	xsaveHeader     = 512
	minXSaveSize    = 512 + 64
	// mxcsrDefault and fcwDefault are the FPU control words a new program
	// starts with.
	mxcsrDefault = 0x1f80
	fcwDefault   = 0x37f
)

// sigcontext register order (asm/sigcontext.h), as offsets of each field.
func sigcontextRegs(r *kvm.Regs) []*uint64 {
	return []*uint64{&r.R8, &r.R9, &r.R10, &r.R11, &r.R12, &r.R13, &r.R14, &r.R15,
		&r.RDI, &r.RSI, &r.RBP, &r.RBX, &r.RDX, &r.RAX, &r.RCX, &r.RSP, &r.RIP, &r.RFLAGS}
}

// xsaveSize is the XSAVE area this CPU's state needs, as the guest sees it.
func (k *Kernel) xsaveSize() int {
	n := int(k.Features().XSaveSize)
	return min(max(n, minXSaveSize), kvm.XSaveSize)
}

// onAltStack reports whether sp lies on t's alternate signal stack.
func (t *Task) onAltStack(sp uint64) bool {
	return t.altStackSize != 0 && sp > t.altStackSP && sp-t.altStackSP <= t.altStackSize
}

// pushSignalFrame builds the frame for a handler of info's signal on the
// user stack (or the alternate stack), and points r and the FPU at the
// handler.
func (t *Task) pushSignalFrame(r *kvm.Regs, act SigAction, info *SigInfo, oldMask SigSet) error {
	sp := r.RSP
	onAlt := t.onAltStack(sp)
	switchStack := act.Flags&SaOnStack != 0 && t.altStackSize != 0 && !onAlt
	if switchStack {
		sp = t.altStackSP + t.altStackSize
	} else {
		sp -= redZone
	}
	var xsave [kvm.XSaveSize]byte
	if err := t.vcpu.XSave(&xsave); err != nil {
		return err
	}
	size := t.tg.k.xsaveSize()
	fp := (sp - uint64(size) - 4) &^ 63
	frame := ((fp - frameSize) &^ 15) - 8
	if (switchStack || onAlt) && frame < t.altStackSP {
		return unix.EFAULT // the alternate stack overflowed
	}
	features := t.tg.k.Features()
	sw := xsave[fxswBytesOffset:]
	binary.LittleEndian.PutUint32(sw[0:], fpXStateMagic1)
	binary.LittleEndian.PutUint32(sw[4:], uint32(size+4))
	binary.LittleEndian.PutUint64(sw[8:], features.XCR0)
	binary.LittleEndian.PutUint32(sw[16:], uint32(size))
	buf := make([]byte, size+4)
	copy(buf, xsave[:size])
	binary.LittleEndian.PutUint32(buf[size:], fpXStateMagic2)
	as := t.tg.mm
	if _, err := as.CopyOut(fp, buf); err != nil {
		return err
	}

	var f [frameSize]byte
	binary.LittleEndian.PutUint64(f[0:], act.Restorer)
	uc := f[frameUContext:]
	binary.LittleEndian.PutUint64(uc[ucFlags:], ucFPXState|ucSigcontextSS)
	altFlags := uint32(0)
	if t.altStackSize == 0 {
		altFlags = ssDisable
	} else if onAlt {
		altFlags = ssOnStack
	}
	binary.LittleEndian.PutUint64(uc[ucStack:], t.altStackSP)
	binary.LittleEndian.PutUint32(uc[ucStack+8:], altFlags|t.altStackFlags)
	binary.LittleEndian.PutUint64(uc[ucStack+16:], t.altStackSize)
	mc := uc[ucMContext:]
	for i, p := range sigcontextRegs(r) {
		binary.LittleEndian.PutUint64(mc[8*i:], *p)
	}
	binary.LittleEndian.PutUint16(mc[144:], 0x33) // cs
	binary.LittleEndian.PutUint16(mc[150:], 0x2b) // ss
	if info.Signo() == int(unix.SIGSEGV) || info.Signo() == int(unix.SIGBUS) {
		binary.LittleEndian.PutUint64(mc[176:], binary.LittleEndian.Uint64(info[16:])) // cr2
	}
	binary.LittleEndian.PutUint64(mc[168:], uint64(oldMask)) // oldmask
	binary.LittleEndian.PutUint64(mc[scFPState:], fp)
	binary.LittleEndian.PutUint64(uc[ucSigMask:], uint64(oldMask))
	copy(f[frameInfo:], info[:])
	if _, err := as.CopyOut(frame, f[:]); err != nil {
		return err
	}
	if t.altStackFlags&ssAutoDisarm != 0 && act.Flags&SaOnStack != 0 {
		t.altStackSP, t.altStackSize, t.altStackFlags = 0, 0, 0
	}

	r.RSP = frame
	r.RIP = act.Handler
	r.RDI = uint64(info.Signo())
	r.RSI = frame + frameInfo
	r.RDX = frame + frameUContext
	r.RAX = 0
	// The handler starts with the direction and trap flags clear and the
	// initial FPU state, as on Linux.
	r.RFLAGS &^= 1<<10 | 1<<8
	return t.resetXSave()
}

// sigaltstack flags.
const (
	ssOnStack    = 1
	ssDisable    = 2
	ssAutoDisarm = 1 << 31
)

// SigReturn restores the context a signal handler interrupted from the
// frame at the user stack (rt_sigreturn): registers, FPU state, signal
// mask and alternate stack. A frame it cannot use kills the process with
// SIGSEGV, as on Linux.
func (t *Task) SigReturn() error {
	r := t.vcpu.SyscallUserRegs()
	uc := r.RSP // the handler's return popped pretcode
	var buf [ucSize]byte
	if _, err := t.tg.mm.CopyIn(buf[:], uc); err != nil {
		return t.forceSegv()
	}
	mc := buf[ucMContext:]
	var n kvm.Regs
	for i, p := range sigcontextRegs(&n) {
		*p = binary.LittleEndian.Uint64(mc[8*i:])
	}
	if n.RIP >= UserTop {
		return t.forceSegv()
	}
	if fp := binary.LittleEndian.Uint64(mc[scFPState:]); fp != 0 {
		if err := t.restoreXSave(fp); err != nil {
			return t.forceSegv()
		}
	}
	t.SetSigMask(SigSet(binary.LittleEndian.Uint64(buf[ucSigMask:])))
	sp := binary.LittleEndian.Uint64(buf[ucStack:])
	flags := binary.LittleEndian.Uint32(buf[ucStack+8:])
	size := binary.LittleEndian.Uint64(buf[ucStack+16:])
	if !t.onAltStack(r.RSP) {
		switch {
		case flags&ssDisable != 0:
			t.SetAltStack(0, 0, 0)
		case size >= minSigStackSize:
			t.SetAltStack(sp, size, flags&ssAutoDisarm)
		}
	}
	t.setRegs = &n
	return nil
}

// minSigStackSize is MINSIGSTKSZ.
const minSigStackSize = 2048

// restoreXSave loads the FPU state a handler's frame holds at fp, keeping
// only what the guest may set.
func (t *Task) restoreXSave(fp uint64) error {
	size := t.tg.k.xsaveSize()
	var xsave [kvm.XSaveSize]byte
	if err := t.vcpu.XSave(&xsave); err != nil {
		return err
	}
	if _, err := t.tg.mm.CopyIn(xsave[:size], fp); err != nil {
		return err
	}
	mxcsrMask := binary.LittleEndian.Uint32(xsave[28:])
	if mxcsrMask == 0 {
		mxcsrMask = 0xffbf
	}
	mxcsr := binary.LittleEndian.Uint32(xsave[24:])
	binary.LittleEndian.PutUint32(xsave[24:], mxcsr&mxcsrMask)
	hdr := xsave[xsaveHeader:]
	bv := binary.LittleEndian.Uint64(hdr) & t.tg.k.Features().XCR0
	clear(hdr[:64])
	binary.LittleEndian.PutUint64(hdr, bv)
	return t.vcpu.SetXSave(&xsave)
}

// resetXSave gives the task the FPU state a new program starts with.
func (t *Task) resetXSave() error {
	var xsave [kvm.XSaveSize]byte
	binary.LittleEndian.PutUint16(xsave[0:], fcwDefault)
	binary.LittleEndian.PutUint32(xsave[24:], mxcsrDefault)
	return t.vcpu.SetXSave(&xsave)
}

// forceSegv kills the process with SIGSEGV for a signal frame it cannot
// use, as Linux's force_sigsegv does.
func (t *Task) forceSegv() error {
	t.tg.Exit(ExitStatus{Signal: unix.SIGSEGV})
	return nil
}
