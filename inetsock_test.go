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

// TestInetSocketsMatchLinux runs inetsock.c natively and in the sandbox:
// TCP and UDP over IPv4 and IPv6 on loopback (options, addresses,
// connections, data, shutdown, SIGPIPE, timeouts, signals, readiness,
// datagrams, v4-mapped addresses), with glibc and musl, through both
// ways a system call reaches the kernel.
func TestInetSocketsMatchLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				inv := invocation{Path: kvmtest.Guest(t, tc, "inetsock.c")}
				requireMatchesLinux(t, sb, inv, time.Minute)
			})
		}
	}
}

// TestInetSocketWaitsEndWhenKilled kills guests blocked in TCP and UDP
// calls: each must die of SIGKILL and leave no goroutine behind.
func TestInetSocketWaitsEndWhenKilled(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "inetsock.c")
	// A first run starts the sandbox's own goroutines and its network.
	runSandboxed(t, sb, context.Background(), path, []string{"hang", "none"}, "")
	goroutines := runtime.NumGoroutine()
	for _, how := range []string{"accept", "recv", "send", "udp", "connect"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(500*time.Millisecond))
			defer cancel()
			got, _ := runSandboxed(t, sb, ctx, path, []string{"hang", how}, "")
			require.Equal(t, syscall.SIGKILL, got.Signal)
			require.Equal(t, "blocking\n", got.Stdout)
		})
	}
	for end := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines)
}

// TestSandboxCloseEndsItsNetwork kills guests blocked in TCP calls with
// connections and listeners open, closes their sandboxes, and requires
// the network's goroutines and host descriptors gone.
func TestSandboxCloseEndsItsNetwork(t *testing.T) {
	kvmtest.RequireKVM(t)
	path := kvmtest.Guest(t, kvmtest.GCC, "inetsock.c")
	runtime.GC()
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	for range 3 {
		func() {
			sb, err := kvmbox.New(kvmbox.Config{})
			require.NoError(t, err)
			defer sb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(500*time.Millisecond))
			defer cancel()
			got, _ := runSandboxed(t, sb, ctx, path, []string{"hang", "recv"}, "")
			require.Equal(t, syscall.SIGKILL, got.Signal)
		}()
	}
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, fds, openFDs(t), "host file descriptors leaked")
}
