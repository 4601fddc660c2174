package kvmbox_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestThreadBombStopsAtTheTaskLimit: threads count against MaxTasks too.
func TestThreadBombStopsAtTheTaskLimit(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{MaxTasks: 64})
	bombs := kvmtest.Guest(t, kvmtest.GCC, "bombs.c")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, _ := runSandboxed(t, sb, ctx, bombs, []string{"threads"}, "")
	require.Equal(t, "refused after 63 threads: Resource temporarily unavailable\n", got.Stdout)
}

// TestSignalStormIsContained floods two processes with signals; the storm
// ends when one of them dies of a signal that arrives before its handler
// is installed or stays default, and the host is unaffected.
func TestSignalStormIsContained(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	bombs := kvmtest.Guest(t, kvmtest.GCC, "bombs.c")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, _ := runSandboxed(t, sb, ctx, bombs, []string{"storm"}, "")
	require.NoError(t, ctx.Err())
	require.Equal(t, "storm over: child exited, parent got signals 1\n", got.Stdout)
}

// TestCloseEndsSpinningThreads closes a sandbox whose threads spin in
// user code: every guest thread ends.
func TestCloseEndsSpinningThreads(t *testing.T) {
	bombs := kvmtest.Guest(t, kvmtest.GCC, "bombs.c")
	goroutines := runtime.NumGoroutine()
	sb, err := kvmbox.New(kvmbox.Config{})
	require.NoError(t, err)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := sb.Command(context.Background(), bombs, "spin")
	cmd.Stdout = w
	p, err := cmd.Start()
	require.NoError(t, err)
	buf := make([]byte, 9)
	_, err = io.ReadFull(r, buf)
	require.NoError(t, err)
	require.Equal(t, "spinning\n", string(buf))
	start := time.Now()
	require.NoError(t, sb.Close())
	w.Close()
	require.Less(t, time.Since(start), kvmtest.Slowed(10*time.Second))
	require.Equal(t, 9, int(p.Wait().Signal()))
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 5*time.Second, 10*time.Millisecond)
}

// TestThousandSandboxesLeaveNothingBehind creates, uses and closes 1000
// sandboxes (200 under emulation): goroutines, file descriptors and host
// memory come back to their baseline.
func TestThousandSandboxesLeaveNothingBehind(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	run := func() {
		sb, err := kvmbox.New(kvmbox.Config{Memory: 64 << 20})
		require.NoError(t, err)
		got, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"echo", "ok"}, "")
		require.Equal(t, "ok\n", got.Stdout)
		require.NoError(t, sb.Close())
	}
	run()
	runtime.GC()
	fds, goroutines, rss := openFDs(t), runtime.NumGoroutine(), residentKiB(t)
	// Under emulation each sandbox takes far longer; 200 still show a
	// leak of a descriptor or a goroutine each.
	count := 1000
	if kvmtest.Emulated() {
		count = 200
	}
	for i := 0; i < count; i++ {
		run()
	}
	runtime.GC()
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, fds, openFDs(t), "host file descriptors leaked")
	require.Less(t, residentKiB(t), rss+64<<10, "host memory grew by more than 64 MiB over %d sandboxes", count)
}

// residentKiB is the test process's resident set, from /proc.
func residentKiB(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			require.NoError(t, err)
			return kib
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
