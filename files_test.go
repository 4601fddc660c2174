package kvmbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestFileSyscallsMatchLinux runs each family of files.c natively and in
// the sandbox and compares what the calls return, errno names included.
// The program works in a directory it makes under /tmp, which exists
// natively and in the sandbox's root.
func TestFileSyscallsMatchLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "files.c")
		for _, family := range []string{"open", "fds", "rw", "stat", "dir", "link", "attr", "pipe", "splice", "lock"} {
			t.Run(string(tc)+"/"+family, func(t *testing.T) {
				requireGuestMatchesLinux(t, sb, path, family)
			})
		}
	}
}

// TestFileStateOutlivesPrograms runs single busybox applets one after the
// other in one sandbox, each seeing what the ones before it left in its
// tmpfs, and compares them with the same sequence run natively in a host
// directory.
func TestFileStateOutlivesPrograms(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	host := t.TempDir()
	const guest = "/tmp/bb"
	steps := []struct {
		args  []string
		stdin string
	}{
		{[]string{"mkdir", "-p", "@/a/b/c"}, ""},
		{[]string{"mkdir", "@/a"}, ""},
		{[]string{"tee", "@/a/f"}, "hello\nworld\n"},
		{[]string{"cat", "@/a/f"}, ""},
		{[]string{"cp", "@/a/f", "@/a/b/g"}, ""},
		{[]string{"cp", "-r", "@/a/b", "@/a/copy"}, ""},
		{[]string{"ls", "-1R", "@/a"}, ""},
		{[]string{"mv", "@/a/copy/g", "@/a/moved"}, ""},
		{[]string{"ln", "-s", "moved", "@/a/link"}, ""},
		{[]string{"ln", "@/a/moved", "@/a/hard"}, ""},
		{[]string{"readlink", "@/a/link"}, ""},
		{[]string{"cat", "@/a/link"}, ""},
		{[]string{"stat", "-c", "%n %s %a %F %h", "@/a/f", "@/a/link", "@/a/hard", "@/a/b"}, ""},
		{[]string{"stat", "-L", "-c", "%n %s %F", "@/a/link"}, ""},
		{[]string{"chmod", "640", "@/a/f"}, ""},
		{[]string{"touch", "-d", "2020-01-02 03:04:05", "@/a/f"}, ""},
		{[]string{"stat", "-c", "%a %Y", "@/a/f"}, ""},
		{[]string{"truncate", "-s", "3", "@/a/f"}, ""},
		{[]string{"wc", "-c", "@/a/f"}, ""},
		{[]string{"head", "-c", "2", "@/a/moved"}, ""},
		{[]string{"mkfifo", "@/a/fifo"}, ""},
		{[]string{"ls", "-1F", "@/a"}, ""},
		{[]string{"rmdir", "@/a/b"}, ""},
		{[]string{"rm", "@/a/b"}, ""},
		{[]string{"rm", "-r", "@/a/b", "@/a/copy"}, ""},
		{[]string{"ls", "-1", "@/a"}, ""},
		{[]string{"cat", "@/a/nope"}, ""},
		{[]string{"rm", "-r", "@/a"}, ""},
		{[]string{"ls", "-1a", "@"}, ""},
	}
	// The native run works in host; the sandboxed one in guest.
	at := func(args []string, base string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.ReplaceAll(a, "@", base)
		}
		return out
	}
	mkdir := []string{"mkdir", guest}
	got, _ := runSandboxed(t, sb, context.Background(), busybox, mkdir, "")
	require.Equal(t, 0, got.Code, got.Stderr)
	for _, s := range steps {
		t.Run(strings.Join(s.args, " "), func(t *testing.T) {
			want := runNative(t, busybox, at(s.args, host), s.stdin)
			want.Stdout = strings.ReplaceAll(want.Stdout, host, guest)
			want.Stderr = strings.ReplaceAll(want.Stderr, host, guest)
			got, state := runSandboxed(t, sb, context.Background(), busybox, at(s.args, guest), s.stdin)
			require.Nil(t, state.Crash())
			require.Equal(t, want, got)
		})
	}
}

// TestBusyboxLsShowsFiles checks the long listing of files a program made,
// which the native comparison cannot (times differ).
func TestBusyboxLsShowsFiles(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	for _, args := range [][]string{
		{"mkdir", "-p", "/tmp/ls/sub"},
		{"touch", "/tmp/ls/empty"},
		{"ln", "-s", "empty", "/tmp/ls/link"},
	} {
		got, _ := runSandboxed(t, sb, context.Background(), busybox, args, "")
		require.Equal(t, 0, got.Code, "%v: %s", args, got.Stderr)
	}
	got, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"ls", "-ln", "/tmp/ls"}, "")
	require.Equal(t, 0, got.Code, got.Stderr)
	lines := strings.Split(strings.TrimSpace(got.Stdout), "\n")
	require.Len(t, lines, 4, got.Stdout)
	require.Equal(t, "total 0", lines[0])
	for i, want := range []string{"-rw-r--r--    1 0        0                0 ", "lrwxrwxrwx    1 0        0                5 ", "drwxr-xr-x    2 0        0"} {
		require.True(t, strings.HasPrefix(lines[i+1], want), "line %q, want prefix %q", lines[i+1], want)
	}
	require.True(t, strings.HasSuffix(lines[2], " link -> empty"), lines[2])
}

// TestGuestFilesStayInTheSandbox makes sure a guest's files stay in the
// sandbox: nothing appears in the host's /tmp.
func TestGuestFilesStayInTheSandbox(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	name := fmt.Sprintf("kvmbox-no-trace-%d", os.Getpid())
	got, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"touch", filepath.Join("/tmp", name)}, "")
	require.Equal(t, 0, got.Code, got.Stderr)
	_, err := os.Stat(filepath.Join("/tmp", name))
	require.True(t, os.IsNotExist(err), "the guest's file reached the host: %v", err)
}

// TestLockWaitEndsWhenKilled checks that F_OFD_SETLKW blocks and that the
// blocked process can still be killed.
func TestLockWaitEndsWhenKilled(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "files.c")
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(500*time.Millisecond))
	defer cancel()
	got, _ := runSandboxed(t, sb, ctx, path, []string{"block"}, "")
	require.Equal(t, syscall.SIGKILL, got.Signal)
	require.Contains(t, got.Stdout, "fcntl(f1, F_OFD_SETLK_, &l) = 0\nblocking\n")
	// The killed process's lock is gone: another program can take it.
	got, _ = runSandboxed(t, sb, context.Background(), path, []string{"lock"}, "")
	require.Equal(t, 0, got.Code, got.Stderr)
}

// TestStraceShowsPaths checks how strace shows the path calls.
func TestStraceShowsPaths(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	var trace strings.Builder
	sb := newSandbox(t, kvmbox.Config{Strace: &trace})
	runSandboxed(t, sb, context.Background(), busybox, []string{"mkdir", "/tmp/traced"}, "")
	runSandboxed(t, sb, context.Background(), busybox, []string{"cat", "/nonexistent"}, "")
	require.Contains(t, trace.String(), `mkdir("/tmp/traced", 0777) = 0`)
	require.Contains(t, trace.String(), `openat(AT_FDCWD, "/nonexistent", 0x0, 0) = -1 ENOENT (no such file or directory)`)
}

func TestFileMappingsMatchLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			for _, src := range []string{"mmapfile.c", "mmapshared.c"} {
				path := kvmtest.Guest(t, tc, src)
				want := runNative(t, path, nil, "")
				got, state := runSandboxed(t, sb, context.Background(), path, nil, "")
				require.Nil(t, state.Crash())
				require.Equal(t, want, got, src)
			}
		})
	}
}

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { master.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// TestDevTTYIsTheTerminalOfStdio checks that /dev/tty is the terminal
// the sandbox's standard input is, and ENXIO without one, as Linux
// answers a process without a controlling terminal.
func TestDevTTYIsTheTerminalOfStdio(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "files.c")
	got, state := runSandboxed(t, sb, context.Background(), path, []string{"tty"}, "")
	require.Nil(t, state.Crash())
	require.Equal(t, "== tty\nfd = open(\"/dev/tty\", O_RDWR) = -1 ENXIO\n", got.Stdout)

	master, slave := openPTY(t)
	cmd := sb.Command(context.Background(), path, "tty")
	var out strings.Builder
	cmd.Stdin, cmd.Stdout = slave, &out
	p, err := cmd.Start()
	require.NoError(t, err)
	require.Equal(t, 0, p.Wait().ExitCode())
	require.Equal(t, "== tty\n"+
		"fd = open(\"/dev/tty\", O_RDWR) = 3\n"+
		"fstat(fd, &st) = 0\n"+
		"tty 5:0 chr 1\n"+
		"tcgetattr(fd, &tio) = 0\n"+
		"write(fd, \"via tty\\n\", 8) = 8\n"+
		"close(fd) = 0\n", out.String())
	require.NoError(t, master.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 64)
	n, err := master.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "via tty\r\n", string(buf[:n]))
}

// TestFIFOOpenWaitsForItsOtherEnd: opening a FIFO is served off the exit
// path, where it must not wait; the vCPU's own thread then waits for the
// writer, which another process in the same sandbox supplies.
func TestFIFOOpenWaitsForItsOtherEnd(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	mkfifo, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"mkfifo", "/tmp/fifo"}, "")
	require.Equal(t, outcome{}, mkfifo)
	var out strings.Builder
	reader := sb.Command(context.Background(), busybox, "cat", "/tmp/fifo")
	reader.Stdout = &out
	p, err := reader.Start()
	require.NoError(t, err)
	writer, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"cp", "/proc/self/cmdline", "/tmp/fifo"}, "")
	require.Equal(t, outcome{}, writer)
	state := p.Wait()
	require.True(t, state.Success(), state.String())
	require.Equal(t, "busybox\x00cp\x00/proc/self/cmdline\x00/tmp/fifo\x00", strings.Replace(out.String(), busybox, "busybox", 1))
}
