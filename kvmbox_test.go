package kvmbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// bothLibcs are the C toolchains guests are compared with Linux under.
var bothLibcs = []kvmtest.Toolchain{kvmtest.GCC, kvmtest.Musl}

// TestMain removes the guests the tests built.
func TestMain(m *testing.M) { os.Exit(kvmtest.Main(m)) }

// outcome is what a run looks like from outside.
type outcome struct {
	Stdout, Stderr string
	Code           int
	Signal         syscall.Signal
}

var testEnv = []string{"A=1", "GREETING=hello world"}

// invocation is one run of a program, described once for the host and a
// sandbox.
type invocation struct {
	Path  string
	Args  []string
	Dir   string   // the working directory; when empty, the test's on the host and / in a sandbox
	Env   []string // testEnv when nil
	Stdin string
}

func (inv invocation) env() []string {
	if inv.Env == nil {
		return testEnv
	}
	return inv.Env
}

// native runs inv on the host. A run past ctx's deadline fails the test:
// both sides would report the same SIGKILL and hide a hang.
func (inv invocation) native(t *testing.T, ctx context.Context) outcome {
	t.Helper()
	cmd := exec.CommandContext(ctx, inv.Path, inv.Args...)
	cmd.Dir, cmd.Env = inv.Dir, inv.env()
	cmd.Stdin = strings.NewReader(inv.Stdin)
	// Orphaned children holding the output pipes must not stall Wait.
	cmd.WaitDelay = time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "%s %q did not finish natively", inv.Path, inv.Args)
	o := outcome{Stdout: out.String(), Stderr: errOut.String()}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		ws := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			o.Signal = ws.Signal()
		} else {
			o.Code = ws.ExitStatus()
		}
	} else {
		require.NoError(t, err)
	}
	o.Stdout = documented(strings.ReplaceAll(o.Stdout, inv.Path, "PROGRAM"))
	return o
}

// kvmboxBehaviour holds the lines of the test programs' output where Linux
// versions differ: the tests hold the sandbox to what kvmbox documents
// (that of Linux 6.18) whichever kernel runs the native side.
var kvmboxBehaviour = []string{
	// Linux 6.1 has no fchmodat2 (ENOSYS).
	`syscall(SYS_fchmodat2, AT_FDCWD, "lm", 0600, AT_SYMLINK_NOFOLLOW) = -1 EOPNOTSUPP`,
	`syscall(SYS_fchmodat2, AT_FDCWD, "lm", 0600, 0x4000) = -1 EINVAL`,
	`syscall(SYS_fchmodat2, fd, "", 0604, AT_EMPTY_PATH) = 0`,
	// Linux 7.3 answers EFAULT.
	"unknown flag 0x200 = -1 ENOSYS",
	// Linux before 6.14 has no RWF_NOSIGNAL (EOPNOTSUPP).
	"pwritev2 RWF_NOSIGNAL = -1 EPIPE",
}

// documented replaces each line of a native run's output that kvmbox
// documents (the same text up to " = ") by kvmbox's form of it.
func documented(out string) string {
	lines := strings.SplitAfter(out, "\n")
	for i, line := range lines {
		key, _, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		for _, doc := range kvmboxBehaviour {
			if strings.HasPrefix(doc, key+" = ") {
				lines[i] = doc + line[len(strings.TrimRight(line, "\n")):]
			}
		}
	}
	return strings.Join(lines, "")
}

// sandboxed runs inv in sb; cancelling ctx kills it.
func (inv invocation) sandboxed(t *testing.T, sb *kvmbox.Sandbox, ctx context.Context) (outcome, *kvmbox.ProcessState) {
	t.Helper()
	cmd := sb.Command(ctx, inv.Path, inv.Args...)
	cmd.Dir, cmd.Env = inv.Dir, inv.env()
	cmd.Stdin = strings.NewReader(inv.Stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	p, err := cmd.Start()
	require.NoError(t, err)
	state := p.Wait()
	o := outcome{Stdout: strings.ReplaceAll(out.String(), inv.Path, "PROGRAM"), Stderr: errOut.String(), Signal: state.Signal()}
	if o.Signal == 0 {
		o.Code = state.ExitCode()
	}
	return o, state
}

// requireMatchesLinux runs inv natively and then in sb, each within
// timeout (stretched under emulation) so that a hang fails instead of
// blocking the suite, and requires the same output and exit status or
// death signal.
func requireMatchesLinux(t *testing.T, sb *kvmbox.Sandbox, inv invocation, timeout time.Duration) {
	t.Helper()
	timeout = kvmtest.Slowed(timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	want := inv.native(t, ctx)
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, _ := inv.sandboxed(t, sb, ctx)
	require.NoError(t, ctx.Err(), "%s %q did not finish in the sandbox: %+v", inv.Path, inv.Args, got)
	require.Equal(t, want, got, "%s %q", inv.Path, inv.Args)
}

// requireGuestMatchesLinux runs a guest program that must succeed natively
// and compares its sandboxed run with the native one; the sandboxed run
// must not crash.
func requireGuestMatchesLinux(t *testing.T, sb *kvmbox.Sandbox, path string, args ...string) {
	t.Helper()
	want := runNative(t, path, args, "")
	got, state := runSandboxed(t, sb, context.Background(), path, args, "")
	require.Nil(t, state.Crash())
	require.Equal(t, 0, want.Code, want.Stdout+want.Stderr)
	require.Equal(t, want, got)
}

func runNative(t *testing.T, path string, args []string, stdin string) outcome {
	t.Helper()
	return invocation{Path: path, Args: args, Stdin: stdin}.native(t, context.Background())
}

func newSandbox(t testing.TB, cfg kvmbox.Config) *kvmbox.Sandbox {
	t.Helper()
	kvmtest.RequireKVM(t)
	sb, err := kvmbox.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	return sb
}

func runSandboxed(t *testing.T, sb *kvmbox.Sandbox, ctx context.Context, path string, args []string, stdin string) (outcome, *kvmbox.ProcessState) {
	t.Helper()
	return invocation{Path: path, Args: args, Stdin: stdin}.sandboxed(t, sb, ctx)
}

func TestProgramsMatchLinux(t *testing.T) {
	stdin := "first line\nsecond line\nthird\n"
	cases := []struct {
		tc   kvmtest.Toolchain
		src  string
		args []string
	}{
		{kvmtest.GCC, "hello_nolibc.S", nil},
		{kvmtest.GCC, "basics.c", []string{"5", "two words"}},
		{kvmtest.GCC, "basics.c", nil},
		{kvmtest.GCCStaticPIE, "basics.c", []string{"3"}},
		{kvmtest.Musl, "basics.c", []string{"4", "x"}},
		{kvmtest.GCC, "fault.c", []string{"exit"}},
		{kvmtest.Musl, "fault.c", []string{"exit"}},
		{kvmtest.GCC, "cpu.c", nil},
		{kvmtest.Musl, "cpu.c", nil},
	}
	// Both ways a system call reaches the kernel must give Linux's results.
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, c := range cases {
			t.Run(fmt.Sprintf("exitpath=%v/%s/%s/%v", exitPath, c.tc, c.src, c.args), func(t *testing.T) {
				path := kvmtest.Guest(t, c.tc, c.src)
				want := runNative(t, path, c.args, stdin)
				got, state := runSandboxed(t, sb, context.Background(), path, c.args, stdin)
				require.Nil(t, state.Crash())
				require.Equal(t, want, got)
			})
		}
	}
}

func TestBusyboxAppletsMatchLinux(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	for _, args := range [][]string{
		{"echo", "hello", "from", "busybox"},
		{"seq", "1", "20"},
		{"expr", "6", "*", "7"},
		{"printf", "%05d|%s|%x\n", "42", "str", "255"},
		{"basename", "/a/b/c.txt", ".txt"},
		{"false"},
		{"true"},
		{"tr", "a-z", "A-Z"},
		{"wc", "-l"},
		{"sort", "-r"},
		{"uniq", "-c"},
		{"sha256sum"},
		{"md5sum"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdin := "banana\napple\napple\ncherry\n"
			want := runNative(t, busybox, args, stdin)
			got, _ := runSandboxed(t, sb, context.Background(), busybox, args, stdin)
			require.Equal(t, want, got)
		})
	}
}

func TestFaultsEndWithTheirSignal(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "fault.c")
		for _, how := range []string{"segv", "ill", "fpe", "trap"} {
			t.Run(string(tc)+"/"+how, func(t *testing.T) {
				want := runNative(t, path, []string{how}, "")
				got, state := runSandboxed(t, sb, context.Background(), path, []string{how}, "")
				require.NotZero(t, want.Signal)
				require.Equal(t, want, got)
				require.Error(t, state.Crash())
			})
		}
	}
}

func TestCrashReportDecodesTheFaultingInstruction(t *testing.T) {
	var debug bytes.Buffer
	sb := newSandbox(t, kvmbox.Config{Debug: &debug})
	path := kvmtest.Guest(t, kvmtest.GCC, "fault.c")
	_, state := runSandboxed(t, sb, context.Background(), path, []string{"segv"}, "")
	require.Equal(t, syscall.SIGSEGV, state.Signal())
	report := state.Crash().Error()
	require.Contains(t, report, "page fault at 0x10")
	require.Contains(t, report, "mov")
	require.Contains(t, report, "rip ")
	require.Contains(t, debug.String(), "page fault at 0x10")
}

func TestSpinningGuestIsStoppedByContext(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "fault.c")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, _ := runSandboxed(t, sb, ctx, path, []string{"spin"}, "")
	require.Equal(t, syscall.SIGKILL, got.Signal)
	require.Less(t, time.Since(start), 20*time.Second, "the kill must interrupt the spinning vCPU")
}

func TestPageTableChangesReachTheGuest(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "memory.c")
		for _, c := range []string{"munmap", "mprotect", "dontneed", "reuse"} {
			for _, size := range []string{"pages", "huge"} {
				t.Run(string(tc)+"/"+c+"/"+size, func(t *testing.T) {
					want := runNative(t, path, []string{c, size}, "")
					got, _ := runSandboxed(t, sb, context.Background(), path, []string{c, size}, "")
					require.Equal(t, want, got)
				})
			}
		}
	}
}

func TestStraceShowsEachSyscall(t *testing.T) {
	var trace bytes.Buffer
	sb := newSandbox(t, kvmbox.Config{Strace: &trace})
	path := kvmtest.Guest(t, kvmtest.GCC, "hello_nolibc.S")
	got, _ := runSandboxed(t, sb, context.Background(), path, nil, "")
	require.Equal(t, 7, got.Code)
	require.Equal(t, "[pid 1] write(1, \"hello from a bare guest\\n\", 24) = 24\n[pid 1] exit_group(7) = 0\n", trace.String())

	trace.Reset()
	basics := kvmtest.Guest(t, kvmtest.GCC, "basics.c")
	runSandboxed(t, sb, context.Background(), basics, nil, "")
	require.Contains(t, trace.String(), "write(99, \"x\", 1) = -1 EBADF (bad file descriptor)")
	require.Contains(t, trace.String(), "brk(0x0) = ")
}

func TestMemoryLimitGivesENOMEM(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{Memory: 64 << 20})
	path := kvmtest.Guest(t, kvmtest.GCC, "basics.c")
	got, state := runSandboxed(t, sb, context.Background(), path, nil, "")
	require.Nil(t, state.Crash())
	require.Contains(t, got.Stderr, "mmap: Cannot allocate memory")
	require.Equal(t, 1, got.Code)
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

func TestHostileGuestsHurtOnlyThemselves(t *testing.T) {
	kvmtest.RequireKVM(t)
	hostile := kvmtest.Guest(t, kvmtest.GCC, "hostile.c")
	randcode := kvmtest.Guest(t, kvmtest.GCC, "randcode.c")
	runtime.GC()
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	survived := 0
	const seeds = 40
	for seed := 1; seed <= seeds; seed++ {
		func() {
			sb, err := kvmbox.New(kvmbox.Config{Memory: 256 << 20})
			require.NoError(t, err)
			defer sb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, _ := runSandboxed(t, sb, ctx, hostile, []string{fmt.Sprint(seed), "3000"}, "")
			require.NoError(t, ctx.Err(), "seed %d: the guest hung: %+v", seed, got)
			if got.Stdout == "survived\n" {
				survived++
			}
			runSandboxed(t, sb, ctx, randcode, []string{fmt.Sprint(seed)}, "")
		}()
	}
	// Garbage can legitimately make a guest kill itself; most runs must
	// still reach the end, or the calls are not being exercised.
	require.Greater(t, survived, seeds/2)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, fds, openFDs(t), "host file descriptors leaked")
}

func TestClocksComeFromTheVDSO(t *testing.T) {
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			sb := newSandbox(t, kvmbox.Config{})
			path := kvmtest.Guest(t, tc, "clock.c")
			got, _ := runSandboxed(t, sb, context.Background(), path, nil, "")
			hostNow := time.Now().UnixNano()
			lines := strings.Split(strings.TrimSpace(got.Stdout), "\n")
			require.Equal(t, []string{"monotonic=1", "gettimeofday agrees=1", "time agrees=1"}, lines[:3])
			var guestNow int64
			_, err := fmt.Sscan(lines[3], &guestNow)
			require.NoError(t, err)
			require.InDelta(t, hostNow, guestNow, float64(2*time.Second), "the guest's CLOCK_REALTIME is the host's")
			require.Less(t, sb.Stats().Syscalls, uint64(1000), "600,000 clock reads must not be system calls")
		})
	}
}
