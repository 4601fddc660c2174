package kvmbox_test

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestWaitingMatchesLinux runs each family of poll.c natively and in the
// sandbox, on both ways a system call reaches the kernel (poll and
// epoll_wait without a timeout may be served exitless), and compares what
// the calls return.
func TestWaitingMatchesLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			path := kvmtest.Guest(t, tc, "poll.c")
			for _, family := range []string{"poll", "select", "epoll", "eventfd", "timerfd", "ppoll"} {
				t.Run(fmt.Sprintf("exitpath=%v/%s/%s", exitPath, tc, family), func(t *testing.T) {
					t.Parallel()
					requireGuestMatchesLinux(t, sb, path, family)
				})
			}
		}
	}
}

// TestWaitsEndWhenKilled checks that each way of waiting blocks, that the
// waiting process can still be killed, and that no wait leaves a goroutine
// behind.
func TestWaitsEndWhenKilled(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "poll.c")
	// A first run starts the sandbox's own goroutines.
	runSandboxed(t, sb, context.Background(), path, nil, "")
	goroutines := runtime.NumGoroutine()
	for _, how := range []string{"poll", "ppoll", "select", "epoll", "eventfd", "timerfd"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(200*time.Millisecond))
			defer cancel()
			got, _ := runSandboxed(t, sb, ctx, path, []string{"hang", how}, "")
			require.Equal(t, syscall.SIGKILL, got.Signal)
			require.Equal(t, "blocking\n", got.Stdout)
		})
	}
	// Counted here rather than in require.Eventually, whose condition
	// runs on a goroutine of its own.
	for end := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines)
}
