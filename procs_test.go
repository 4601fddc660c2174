package kvmbox_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestProcessesThreadsAndSignalsMatchLinux runs procs.c natively and in the
// sandbox: wait statuses, stop and continue, threads, fault handlers on the
// alternate stack, queued signals, masks, restarts, execve and vfork.
func TestProcessesThreadsAndSignalsMatchLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			path := kvmtest.Guest(t, tc, "procs.c")
			requireMatchesLinux(t, sb, invocation{Path: path}, 30*time.Second)
		})
	}
}

// TestForkBombStopsAtTheTaskLimit runs a shell that forks without end in
// a sandbox limited to 16 tasks: a fork fails with EAGAIN there (the shell
// gives up), and the sandbox stays usable.
func TestForkBombStopsAtTheTaskLimit(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{MaxTasks: 16})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := sb.Command(ctx, busybox, "sh", "-c", `i=0; while [ $i -lt 40 ]; do "$0" sleep 1 & i=$((i+1)); done; wait`, busybox)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *kvmbox.ExitError
	require.ErrorAs(t, err, &exitErr, "the shell gives up when fork fails")
	require.Equal(t, 2, exitErr.ExitCode())
	require.Contains(t, stderr.String(), "can't fork: Resource temporarily unavailable")

	got, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"echo", "still usable"}, "")
	require.Equal(t, "still usable\n", got.Stdout)
}

// TestSignalFromOutsideReachesTheHandler sends SIGTERM through the API to a
// shell that traps it.
func TestSignalFromOutsideReachesTheHandler(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := sb.Command(context.Background(), busybox, "sh", "-c", `trap 'echo caught; exit 7' TERM; echo ready; while :; do "$0" sleep 0.05; done`, busybox)
	cmd.Stdout = w
	p, err := cmd.Start()
	require.NoError(t, err)
	lines := bufio.NewReader(r)
	line, err := lines.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	require.NoError(t, p.Signal(syscall.SIGTERM))
	state := p.Wait()
	w.Close()
	require.Equal(t, 7, state.ExitCode())
	rest, _ := io.ReadAll(lines)
	require.Equal(t, "caught\n", string(rest))
}

// TestThousandProcessesLeaveNothingBehind runs 1000 fork-exec-wait cycles
// and checks that the host is back where it started: goroutines (one run
// loop per thread) and guest memory.
func TestThousandProcessesLeaveNothingBehind(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	warm, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"true"}, "")
	require.Equal(t, 0, warm.Code)
	goroutines := runtime.NumGoroutine()
	resident := sb.Stats().GuestResidentBytes
	// Under emulation each process takes far longer; a hundred still
	// shows whether each one leaves something behind.
	count := 1000
	if kvmtest.Emulated() {
		count = 100
	}
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(120*time.Second))
	defer cancel()
	got, _ := runSandboxed(t, sb, ctx, busybox, []string{"sh", "-c", `i=0; while [ $i -lt $1 ]; do "$0" true || exit 1; i=$((i+1)); done; echo $i`, busybox, strconv.Itoa(count)}, "")
	require.Equal(t, strconv.Itoa(count)+"\n", got.Stdout, got.Stderr)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 5*time.Second, 10*time.Millisecond,
		"goroutines: %d before, %d after", goroutines, runtime.NumGoroutine())
	require.Less(t, sb.Stats().GuestResidentBytes, resident+16<<20, "guest memory held after the processes are gone")
}
