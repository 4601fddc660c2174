package kvmbox_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestFutexSyscallsMatchLinux runs futex.c natively and in the sandbox and
// compares what the futex calls a single thread can make return, errno
// names and the words WAKE_OP changes included.
func TestFutexSyscallsMatchLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			path := kvmtest.Guest(t, tc, "futex.c")
			requireGuestMatchesLinux(t, sb, path)
		})
	}
}

// TestFutexWaitEndsWhenTheProcessIsKilled kills a guest blocked in a
// futex wait that nothing will wake.
func TestFutexWaitEndsWhenTheProcessIsKilled(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "futex.c")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, _ := runSandboxed(t, sb, ctx, path, []string{"forever"}, "")
	require.Equal(t, syscall.SIGKILL, got.Signal)
	require.Empty(t, got.Stdout, "the wait does not return to the guest")
	require.Less(t, time.Since(start), kvmtest.Slowed(20*time.Second), "the kill must end the wait")
}
