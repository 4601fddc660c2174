package kvm

import "fmt"

// probe runs the stub's probe code on a throw-away vCPU in user mode and
// records what the guest sees: CPUID leaves 1, 7 and 0xD, XCR0, and the CPL
// at which the syscall entry runs.
func (vm *VM) probe() error {
	// The probe runs before the features are known; map the slot
	// user-writable for it, since the entry may run at CPL 3.
	vm.features.StubAtCPL3 = true
	c, err := vm.newVCPU(probeVCPU)
	if err != nil {
		return err
	}
	defer c.release()
	if err := c.EnterUser(gpaProbeRoot, c.window+windowCode+stubProbe, 0); err != nil {
		return err
	}
	var f Features
	for i := 0; i < probeReports; i++ {
		exit, err := c.Run()
		if err != nil {
			return err
		}
		if exit.Kind != ExitSyscall {
			return fmt.Errorf("kvm: boot probe failed at step %d: %+v", i, exit)
		}
		r := c.Regs()
		switch i {
		case 0:
			f.CPUID1ECX, f.CPUID1EDX = uint32(r.RSI), uint32(r.RDX)
			s, err := c.Sregs()
			if err != nil {
				return fmt.Errorf("kvm: probe: %w", err)
			}
			f.StubAtCPL3 = s.CS.DPL == 3 || s.CS.Selector&3 == 3
		case 1:
			f.CPUID7EBX, f.CPUID7ECX = uint32(r.RBX), uint32(r.RSI)
		case 2:
			f.XSaveSize = uint32(r.RBX)
		case 3:
			f.XCR0 = r.RDX<<32 | r.RAX&0xffffffff
		}
	}
	if f.TSCKHz, err = c.TSCKHz(); err != nil {
		return err
	}
	if vm.tscOffset, err = c.TSCOffset(); err != nil {
		return err
	}
	vm.features = f
	return nil
}
