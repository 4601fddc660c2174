package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/kvm"
	"github.com/kvmbox/kvmbox/mm"
	"golang.org/x/sys/unix"
)

// Result is one measured workload.
type Result struct {
	Name    string
	NsPerOp float64
	// ExitsPerOp is the number of VM exits per operation (NaN outside
	// kvmbox).
	ExitsPerOp float64
}

const sysGetppid = 110

// RawExit times n round trips of the cheapest VM exit: user code that
// executes `out` in a loop, with the host re-entering at once.
func RawExit(n int) (Result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	phys, err := mm.NewPhysMem(kvm.ReservedBytes + 16<<20)
	if err != nil {
		return Result{}, err
	}
	defer phys.Close()
	if err := phys.ReserveLow(kvm.ReservedBytes); err != nil {
		return Result{}, err
	}
	vm, err := kvm.NewVM(phys.Bytes())
	if err != nil {
		return Result{}, err
	}
	defer vm.Close()
	as, err := mm.NewAddressSpace(phys, mm.Options{
		UserTop: kernel.UserTop, MmapBase: kernel.UserTop, Limit: 1 << 20,
		SharedPML4: []mm.PML4Entry{{Index: kvm.KernelPML4Index, Value: vm.KernelPML4Entry()}},
	})
	if err != nil {
		return Result{}, err
	}
	defer as.Release()
	const code = loadAddr
	if _, err := as.Mmap(code, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED); err != nil {
		return Result{}, err
	}
	if _, err := as.CopyOut(code, []byte{0xe6, 0x10, 0xeb, 0xfc}); err != nil { // 1: out %al, $0x10; jmp 1b
		return Result{}, err
	}
	if err := as.Mprotect(code, 4096, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		return Result{}, err
	}
	c, err := vm.NewVCPU()
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	if err := c.EnterUser(as.Root(), code, 0); err != nil {
		return Result{}, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Run(); err != nil {
			return Result{}, err
		}
	}
	return Result{Name: "raw VM exit (guest out loop)", NsPerOp: float64(time.Since(start).Nanoseconds()) / float64(n), ExitsPerOp: 1}, nil
}

func writeGuest(dir string, n int) (string, error) {
	if n < 1 || n > 1<<31 {
		return "", fmt.Errorf("bench: %d iterations out of range", n)
	}
	exe, err := syscallLoop(sysGetppid, uint32(n))
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "getppid-loop")
	return path, os.WriteFile(path, exe, 0o755)
}

// getppid runs a getppid-loop guest of n calls in rt. It returns the
// nanoseconds per call, timed inside the guest, and the VM exits per
// system call (NaN outside kvmbox).
func getppid(rt runner, exe string, n int) (ns, exits float64, err error) {
	out, p, err := run(rt, exe)
	if err != nil {
		return 0, 0, err
	}
	d, err := elapsed(out)
	if err != nil {
		return 0, 0, err
	}
	exits = math.NaN()
	if sp, ok := p.(*sandboxProcess); ok {
		exits = float64(sp.stats.VMExits) / float64(sp.stats.Syscalls)
	}
	return float64(d) / float64(n), exits, nil
}

func getppidIn(rt func(dir string) runner, n int) (Result, error) {
	dir, err := os.MkdirTemp("", "kvmbox-bench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	path, err := writeGuest(dir, n)
	if err != nil {
		return Result{}, err
	}
	r := rt(dir)
	ns, exits, err := getppid(r, path, n)
	if err != nil {
		return Result{}, err
	}
	return Result{Name: r.name() + " getppid", NsPerOp: ns, ExitsPerOp: exits}, nil
}

// SandboxGetppid times n getppid calls made by a guest in a sandbox,
// measured inside the guest, through the exitless path or, with exitPath,
// through a VM exit each.
func SandboxGetppid(n int, exitPath bool) (Result, error) {
	return getppidIn(func(dir string) runner { return kvmboxRunner{exitPath: exitPath, files: dir} }, n)
}

// NativeGetppid runs the same guest program natively.
func NativeGetppid(n int) (Result, error) {
	return getppidIn(func(dir string) runner { return nativeRunner{files: dir} }, n)
}
