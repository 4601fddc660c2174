package kvm

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// testGuest is a VM with one user address space built by hand: user code at
// codeVA, one stack page below stackTop, and a data page at dataVA.
type testGuest struct {
	vm   *VM
	mem  []byte
	root uint64
	next uint64
}

const (
	codeVA   = 0x400000
	dataVA   = 0x600000
	stackTop = 0x800000
)

func newTestGuest(t *testing.T, code []byte) (*testGuest, *VCPU) {
	t.Helper()
	kvmtest.RequireKVM(t)
	mem, err := unix.Mmap(-1, 0, ReservedBytes+4<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Munmap(mem) })
	vm, err := NewVM(mem)
	require.NoError(t, err)
	t.Cleanup(func() { vm.Close() })
	g := &testGuest{vm: vm, mem: mem, next: ReservedBytes}
	g.root = g.alloc()
	binary.LittleEndian.PutUint64(mem[g.root+8*KernelPML4Index:], vm.KernelPML4Entry())
	codePA := g.mapPage(codeVA, ptePresent|pteUser)
	copy(mem[codePA:], code)
	g.mapPage(dataVA, ptePresent|pteUser|pteWrite|pteNX)
	g.mapPage(stackTop-pageSize, ptePresent|pteUser|pteWrite|pteNX)
	c, err := vm.NewVCPU()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.EnterUser(g.root, codeVA, stackTop))
	return g, c
}

func (g *testGuest) alloc() uint64 {
	p := g.next
	g.next += pageSize
	return p
}

func (g *testGuest) mapPage(va, flags uint64) uint64 {
	table := g.root
	for level := 3; level > 0; level-- {
		idx := (va >> (12 + 9*level)) & 511
		e := binary.LittleEndian.Uint64(g.mem[table+8*idx:])
		if e&ptePresent == 0 {
			e = g.alloc() | ptePresent | pteWrite | pteUser
			binary.LittleEndian.PutUint64(g.mem[table+8*idx:], e)
		}
		table = e & 0x000f_ffff_ffff_f000
	}
	pa := g.alloc()
	binary.LittleEndian.PutUint64(g.mem[table+8*((va>>12)&511):], pa|flags)
	return pa
}

func runLocked(t *testing.T, c *VCPU) Exit {
	t.Helper()
	exit, err := c.Run()
	require.NoError(t, err)
	return exit
}

func TestProbeMeasuresGuestFeatures(t *testing.T) {
	first, _ := newTestGuest(t, []byte{0xf4})
	g, _ := newTestGuest(t, []byte{0xf4})
	cached := g.vm.Features()
	require.Equal(t, first.vm.Features(), cached)
	// Later VMs take the first one's probe; running it on one of them
	// must find the same.
	require.NoError(t, g.vm.probe())
	f := g.vm.Features()
	require.Equal(t, cached, f)
	require.Equal(t, uint64(3), f.XCR0&3, "x87 and SSE state must be enabled")
	require.NotZero(t, f.CPUID1EDX&(1<<25), "SSE")
	require.GreaterOrEqual(t, f.XSaveSize, uint32(512))
	t.Logf("features: %+v", f)
}

func TestSyscallRoundTripPreservesRegisters(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	code := []byte{
		0x48, 0xc7, 0xc3, 0x11, 0x11, 0x00, 0x00, // mov $0x1111, %rbx
		0x48, 0xc7, 0xc5, 0x22, 0x22, 0x00, 0x00, // mov $0x2222, %rbp
		0x49, 0xc7, 0xc4, 0x33, 0x33, 0x00, 0x00, // mov $0x3333, %r12
		0x48, 0xc7, 0x44, 0x24, 0xf8, 0x44, 0x44, 0x00, 0x00, // movq $0x4444, -8(%rsp): the red zone
		0xb8, 0x27, 0x00, 0x00, 0x00, // mov $39, %eax
		0x0f, 0x05, // syscall
		0x48, 0x8b, 0x4c, 0x24, 0xf8, // mov -8(%rsp), %rcx
		0x0f, 0x0b, // ud2: stop here
	}
	_, c := newTestGuest(t, code)
	exit := runLocked(t, c)
	require.Equal(t, ExitSyscall, exit.Kind, exit.Reason)
	r := c.Regs()
	require.Equal(t, uint64(39), r.RAX)
	rip, rsp, _ := c.SyscallContext()
	require.Equal(t, uint64(codeVA+37), rip)
	require.Equal(t, uint64(stackTop), rsp)
	r.RAX = 12345
	c.MarkRegsDirty()
	exit = runLocked(t, c)
	require.Equal(t, ExitException, exit.Kind, exit.Reason)
	require.Equal(t, VectorInvalidOp, exit.Vector)
	require.Equal(t, uint64(codeVA+42), exit.RIP)
	require.Equal(t, uint64(selUserCS), exit.CS)
	r = c.Regs()
	require.Equal(t, uint64(12345), r.RAX)
	require.Equal(t, uint64(0x1111), r.RBX)
	require.Equal(t, uint64(0x2222), r.RBP)
	require.Equal(t, uint64(0x3333), r.R12)
	require.Equal(t, uint64(0x4444), r.RCX, "the red zone below the user RSP was overwritten")
	require.Equal(t, uint64(UserRFLAGS), r.R11&UserRFLAGS, "R11 holds the user RFLAGS after syscall")
}

func TestExceptionsReportVectorAndAddress(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cases := []struct {
		name   string
		code   []byte
		vector int
		cr2    uint64
	}{
		{"ud2", []byte{0x0f, 0x0b}, VectorInvalidOp, 0},
		{"int3", []byte{0xcc}, VectorBreakpoint, 0},
		{"divide", []byte{0x31, 0xc9, 0xf7, 0xf1}, VectorDivide, 0},
		{"unmapped read", []byte{0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x90, 0x00}, VectorPageFault, 0x900000},
		{"write to code", []byte{0xc6, 0x04, 0x25, 0x00, 0x00, 0x40, 0x00, 0x01}, VectorPageFault, codeVA},
		{"hlt", []byte{0xf4}, VectorGP, 0},
		{"out", []byte{0xe6, 0x10}, VectorGP, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newTestGuest(t, tc.code)
			exit := runLocked(t, c)
			if tc.name == "out" && exit.Kind == ExitFatal {
				// kvm-pvm turns a user-mode `out` into an exit; the kernel
				// must treat it as fatal because it did not come from the stub.
				require.Contains(t, exit.Reason, "unexpected port")
				return
			}
			require.Equal(t, ExitException, exit.Kind, exit.Reason)
			require.Equal(t, tc.vector, exit.Vector)
			require.Equal(t, tc.cr2, exit.CR2)
		})
	}
}

func TestKickInterruptsSpinningGuest(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, c := newTestGuest(t, []byte{0xeb, 0xfe}) // jmp .
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Kick()
	}()
	exit := runLocked(t, c)
	require.Equal(t, ExitKicked, exit.Kind)
	c.Kick()
	exit = runLocked(t, c)
	require.Equal(t, ExitKicked, exit.Kind, "a kick sent outside KVM_RUN must not be lost")
}

// TestReturnExitAndUserContext asks the stub to stop before it returns from
// a system call, reads the user context there, and enters user code with a
// new one (how the kernel delivers a signal); the XSAVE state goes in and
// out unchanged.
func TestReturnExitAndUserContext(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	code := []byte{
		0x48, 0xc7, 0xc3, 0x11, 0x11, 0x00, 0x00, // mov $0x1111, %rbx
		0xb8, 0x27, 0x00, 0x00, 0x00, // mov $39, %eax
		0x0f, 0x05, // syscall
		0x0f, 0x0b, // ud2: the normal return lands here
		0x48, 0x89, 0xd8, // other: mov %rbx, %rax
		0x0f, 0x0b, // ud2
	}
	const other = codeVA + 16
	g, c := newTestGuest(t, code)
	exit := runLocked(t, c)
	require.Equal(t, ExitSyscall, exit.Kind, exit.Reason)
	c.Regs().RAX = 7
	c.MarkRegsDirty()
	c.SetReturnExit(true)
	exit = runLocked(t, c)
	require.Equal(t, ExitReturn, exit.Kind, exit.Reason)
	u := c.SyscallUserRegs()
	require.Equal(t, uint64(7), u.RAX)
	require.Equal(t, uint64(codeVA+14), u.RIP)
	require.Equal(t, uint64(stackTop), u.RSP)
	require.Equal(t, u.RIP, u.RCX, "RCX holds the return address after syscall")

	var xsave [XSaveSize]byte
	require.NoError(t, c.XSave(&xsave))
	binary.LittleEndian.PutUint32(xsave[24:], 0x1f80|0x6000) // MXCSR: round toward zero
	xsave[xsaveXMM0] = 0x5a
	bv := binary.LittleEndian.Uint64(xsave[xsaveStateBV:])
	binary.LittleEndian.PutUint64(xsave[xsaveStateBV:], bv|legacyStateBV)
	require.NoError(t, c.SetXSave(&xsave))
	var back [XSaveSize]byte
	require.NoError(t, c.XSave(&back))
	require.Equal(t, uint32(0x7f80), binary.LittleEndian.Uint32(back[24:]))
	require.Equal(t, byte(0x5a), back[xsaveXMM0])

	// With XSTATE_BV clear, XRSTOR still loads MXCSR but resets the x87
	// and XMM registers; KVM must give the same result.
	binary.LittleEndian.PutUint32(xsave[24:], 0x1f80)
	binary.LittleEndian.PutUint64(xsave[xsaveStateBV:], 0)
	require.NoError(t, c.SetXSave(&xsave))
	binary.LittleEndian.PutUint32(xsave[24:], 0x1f80|0x6000)
	xsave[xsaveFCW] = 0x7f
	require.NoError(t, c.SetXSave(&xsave))
	require.NoError(t, c.XSave(&back))
	require.Equal(t, uint32(0x7f80), binary.LittleEndian.Uint32(back[24:]))
	require.Equal(t, uint16(fcwInit), binary.LittleEndian.Uint16(back[xsaveFCW:]))
	require.Zero(t, back[xsaveXMM0])

	c.SetReturnExit(false)
	u.RIP, u.RBX = other, 0x2222
	require.NoError(t, c.SetUserRegs(g.root, u))
	exit = runLocked(t, c)
	require.Equal(t, ExitException, exit.Kind, exit.Reason)
	require.Equal(t, uint64(other+3), exit.RIP)
	require.Equal(t, uint64(0x2222), c.Regs().RAX)
}

// TestPostMaskDecidesWhatIsPosted checks that, while a worker polls, the
// stub posts a system call whose bit is set (and takes no exit for it once
// the worker completes it) and exits at once for one whose bit is clear.
func TestPostMaskDecidesWhatIsPosted(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	code := []byte{
		0xb8, 0x27, 0x00, 0x00, 0x00, // mov $39, %eax
		0x0f, 0x05, // syscall: posted
		0x48, 0x89, 0xc3, // mov %rax, %rbx
		0xb8, 0x28, 0x00, 0x00, 0x00, // mov $40, %eax
		0x0f, 0x05, // syscall: not posted
		0x0f, 0x0b, // ud2
	}
	_, c := newTestGuest(t, code)
	var mask PostMask
	mask[0] = 1 << 39
	c.SetPostMask(&mask)
	c.SetPolling(true, 1<<30)
	served := make(chan Request, 1)
	go func() {
		var r Request
		for !c.Posted() || !c.TakeRequest(&r) {
			runtime.Gosched()
		}
		c.Complete(1234)
		served <- r
	}()
	exit := runLocked(t, c)
	require.Equal(t, ExitSyscall, exit.Kind, exit.Reason)
	require.Equal(t, uint64(40), c.Regs().RAX)
	require.Equal(t, uint64(1234), c.Regs().RBX, "the worker's result came back without an exit")
	require.Equal(t, uint64(39), (<-served).Nr)
	require.False(t, c.Posted())
	_, done := c.SettleMailbox()
	require.False(t, done, "the unposted call left the mailbox alone")

	c.SetPosting(40, true)
	require.Equal(t, uint64(1<<39|1<<40), atomic.LoadUint64(c.postWord(0)))
	c.SetPosting(39, false)
	require.Equal(t, uint64(1<<40), atomic.LoadUint64(c.postWord(0)))
}

// TestReusedVCPUStartsWithAnIdleMailbox checks that a result a killed
// thread never collected does not become the next thread's.
func TestReusedVCPUStartsWithAnIdleMailbox(t *testing.T) {
	g, c := newTestGuest(t, []byte{0xf4})
	var mask PostMask
	mask[0] = ^uint64(0)
	c.SetPostMask(&mask)
	c.SetPolling(true, 100)
	binary.LittleEndian.PutUint64(c.slot()[slotResult:], 99)
	atomic.StoreUint32(c.slotWord(slotMailbox), MailboxDone)
	c.SetReturnExit(true)
	require.NoError(t, c.Close())

	again, err := g.vm.NewVCPU()
	require.NoError(t, err)
	require.Same(t, c, again, "the closed vCPU is handed out again")
	_, done := again.SettleMailbox()
	require.False(t, done, "the old result is gone")
	require.Zero(t, atomic.LoadUint32(again.slotWord(slotPolling)))
	require.Zero(t, atomic.LoadUint32(again.slotWord(slotReturnExit)))
	require.Zero(t, atomic.LoadUint64(again.postWord(0)))
}
