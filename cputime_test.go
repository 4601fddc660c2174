package kvmbox_test

import (
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestCPUTimeMatchesLinux runs cputime.c natively and in the sandbox with
// glibc and musl: signals to a process through a thread's id, the
// CPU-time clocks and their sleeps and timers, RLIMIT_CPU and the CPU
// affinity calls.
func TestCPUTimeMatchesLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			inv := invocation{Path: kvmtest.Guest(t, tc, "cputime.c")}
			requireMatchesLinux(t, sb, inv, 3*time.Minute)
		})
	}
}
