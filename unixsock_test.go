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

// TestUnixSocketsMatchLinux runs unixsock.c natively and in the sandbox:
// Unix-domain sockets of each type, names in a directory the program
// makes under /tmp (which exists natively and in the sandbox's root) and
// in the abstract namespace, descriptor and credential passing, readiness and SIGPIPE,
// with glibc and musl, through both ways a system call reaches the
// kernel.
func TestUnixSocketsMatchLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				inv := invocation{Path: kvmtest.Guest(t, tc, "unixsock.c")}
				requireMatchesLinux(t, sb, inv, time.Minute)
			})
		}
	}
}

// TestSocketWaitsEndWhenKilled kills guests blocked in socket calls: each
// must die of SIGKILL and leave no goroutine behind.
func TestSocketWaitsEndWhenKilled(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "unixsock.c")
	// A first run starts the sandbox's own goroutines.
	runSandboxed(t, sb, context.Background(), path, []string{"hang", "none"}, "")
	goroutines := runtime.NumGoroutine()
	for _, how := range []string{"recv", "send", "accept", "connect"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(200*time.Millisecond))
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
