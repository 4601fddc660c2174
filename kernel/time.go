package kernel

import (
	"fmt"
	"time"

	"github.com/kvmbox/kvmbox/kernel/vdso"
	"github.com/kvmbox/kvmbox/mm"
	"golang.org/x/sys/unix"
)

// timeUpdate is how often the vDSO's time page is refreshed from the host
// clocks; between updates the guest extrapolates with its TSC.
const timeUpdate = 50 * time.Millisecond

// vdsoState is the vDSO shared by every process of a sandbox: its code
// frames and the time page.
type vdsoState struct {
	timeFrame   uint64
	imageFrames []uint64
	page        *vdso.TimePage
}

// setUpVDSO copies the vDSO into guest frames and starts the time page.
func (k *Kernel) setUpVDSO() error {
	frame, err := k.phys.AllocFrame()
	if err != nil {
		return err
	}
	k.vdso.timeFrame = frame
	for i := 0; i < vdso.ImagePages; i++ {
		f, err := k.phys.AllocFrame()
		if err != nil {
			return err
		}
		copy(k.phys.Frame(f), vdso.Image[i*4096:min(len(vdso.Image), (i+1)*4096)])
		k.vdso.imageFrames = append(k.vdso.imageFrames, f)
	}
	khz := k.Features().TSCKHz
	if khz == 0 {
		return fmt.Errorf("kernel: the guest TSC frequency is unknown")
	}
	k.vdso.page = vdso.NewTimePage(k.phys.Frame(frame), khz)
	k.updateTime()
	k.background.Add(1)
	go func() {
		defer k.background.Done()
		tick := time.NewTicker(timeUpdate)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				k.updateTime()
			case <-k.done:
				return
			}
		}
	}()
	return nil
}

func (k *Kernel) updateTime() {
	var mono, boot, tai unix.Timespec
	tsc := k.vm.GuestTSC()
	now := time.Now()
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	unix.ClockGettime(unix.CLOCK_TAI, &tai)
	k.vdso.page.Update(vdso.Clocks{TSC: tsc, Realtime: now.UnixNano(), Monotonic: mono.Nano(), Boottime: boot.Nano(), TAI: tai.Nano()})
}

// mapVDSO maps the time page and the vDSO just below mmapBase in as. The
// guest can never make the time page writable, as on Linux; a process that
// makes its vDSO writable gets a copy of its own.
func (k *Kernel) mapVDSO(as *mm.AddressSpace, mmapBase uint64) (ehdr, newBase uint64, err error) {
	v := &k.vdso
	image := mmapBase - uint64(len(v.imageFrames))*4096
	vvar := image - 4096
	if err := as.MapFrames(vvar, []uint64{v.timeFrame}, unix.PROT_READ, mm.FramesPrivate|mm.FramesReadOnly, "[vvar]"); err != nil {
		return 0, 0, err
	}
	if err := as.MapFrames(image, v.imageFrames, unix.PROT_READ|unix.PROT_EXEC, mm.FramesPrivate, "[vdso]"); err != nil {
		return 0, 0, err
	}
	return image, vvar, nil
}
