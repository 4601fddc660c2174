package kernel

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// CPUs is how many CPUs the sandbox has: 0 to CPUs()-1, as many as the
// host lets kvmbox use.
func CPUs() int { return runtime.NumCPU() }

// Affinity returns t's CPU affinity mask, a bit per CPU in 64-bit words.
func (t *Task) Affinity() []uint64 {
	t.tg.mu.Lock()
	m := t.affinity
	t.tg.mu.Unlock()
	if m != nil {
		return m
	}
	n := CPUs()
	m = make([]uint64, (n+63)/64)
	for i := range n {
		m[i/64] |= 1 << (i % 64)
	}
	return m
}

// SetAffinity sets t's CPU affinity to the sandbox's CPUs in mask; EINVAL
// if there are none.
func (t *Task) SetAffinity(mask []uint64) error {
	n := CPUs()
	m := make([]uint64, (n+63)/64)
	some := false
	for i := range n {
		if i/64 < len(mask) && mask[i/64]&(1<<(i%64)) != 0 {
			m[i/64] |= 1 << (i % 64)
			some = true
		}
	}
	if !some {
		return unix.EINVAL
	}
	t.tg.mu.Lock()
	t.affinity = m
	t.tg.mu.Unlock()
	return nil
}
