package kvm

import (
	"fmt"
	"unsafe"
)

const (
	msrTSC         = 0x10
	ioctlGetMSRs   = 0xC008AE88
	ioctlGetTSCKHz = 0xAEA3
)

// hostTSC reads the host's time-stamp counter.
func hostTSC() uint64

// TSCOffset measures guest TSC minus host TSC for this vCPU (KVM offsets
// the guest's counter; it does not scale it here), so the host can pair
// its clocks with the TSC values the guest reads. The vCPU must not be
// running. Of a few reads, the one bracketed most tightly wins.
func (c *VCPU) TSCOffset() (int64, error) {
	var best int64
	bestSpan := ^uint64(0)
	for i := 0; i < 5; i++ {
		m := msrs{Nmsrs: 1}
		m.Entries[0].Index = msrTSC
		before := hostTSC()
		n, err := ioctl(c.fd, ioctlGetMSRs, uintptr(unsafe.Pointer(&m)))
		after := hostTSC()
		if err != nil || n != 1 {
			return 0, fmt.Errorf("kvm: reading the guest TSC: %v", err)
		}
		if span := after - before; span < bestSpan {
			bestSpan = span
			best = int64(m.Entries[0].Data - (before + span/2))
		}
	}
	return best, nil
}

// TSCKHz is the guest's TSC frequency in kHz.
func (c *VCPU) TSCKHz() (uint64, error) {
	khz, err := ioctl(c.fd, ioctlGetTSCKHz, 0)
	if err != nil || khz == 0 {
		return 0, fmt.Errorf("kvm: KVM_GET_TSC_KHZ: %v", err)
	}
	return uint64(khz), nil
}
