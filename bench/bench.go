package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/kvm"
	"github.com/kvmbox/kvmbox/mm"
	"golang.org/x/sys/unix"
)

// Result is one measured workload.
type Result struct {
	Name    string
	NsPerOp float64
	// ExitsPerOp is the number of VM exits per operation (NaN natively).
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

// SandboxGetppid times n getppid calls made by a guest in a sandbox,
// measured inside the guest, through the exitless path or, with exitPath,
// through a VM exit each.
func SandboxGetppid(n int, exitPath bool) (Result, error) {
	dir, err := os.MkdirTemp("", "kvmbox-bench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	path, err := writeGuest(dir, n)
	if err != nil {
		return Result{}, err
	}
	sb, err := kvmbox.New(kvmbox.Config{Memory: 64 << 20, ExitPathOnly: exitPath})
	if err != nil {
		return Result{}, err
	}
	defer sb.Close()
	var out bytes.Buffer
	cmd := sb.Command(context.Background(), path)
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return Result{}, err
	}
	ns, err := elapsed(out.Bytes())
	if err != nil {
		return Result{}, err
	}
	st := sb.Stats()
	name := "sandboxed getppid (exitless)"
	if exitPath {
		name = "sandboxed getppid (exit path)"
	}
	return Result{Name: name, NsPerOp: float64(ns) / float64(n), ExitsPerOp: float64(st.VMExits) / float64(st.Syscalls)}, nil
}

// NativeGetppid runs the same guest program natively.
func NativeGetppid(n int) (Result, error) {
	dir, err := os.MkdirTemp("", "kvmbox-bench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	path, err := writeGuest(dir, n)
	if err != nil {
		return Result{}, err
	}
	out, err := exec.Command(path).Output()
	if err != nil {
		return Result{}, err
	}
	ns, err := elapsed(out)
	if err != nil {
		return Result{}, err
	}
	return Result{Name: "native getppid", NsPerOp: float64(ns) / float64(n)}, nil
}
