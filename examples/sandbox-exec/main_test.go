package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestMain removes the guests the tests built.
func TestMain(m *testing.M) { os.Exit(kvmtest.Main(m)) }

func sandboxExec(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	code, _, stderr := sandboxExec(t, "", "--help")
	require.Equal(t, 0, code)
	for _, flag := range []string{"-env", "-mem", "-timeout", "-strace", "-debug", "-allow", "PROGRAM [ARGS...]"} {
		require.Contains(t, stderr, flag)
	}
	code, _, _ = sandboxExec(t, "")
	require.Equal(t, 2, code, "no program is a usage error")
	code, _, stderr = sandboxExec(t, "", "--mem", "lots", "--", "/bin/true")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--mem")
}

func TestExitStatusAndStdio(t *testing.T) {
	kvmtest.RequireKVM(t)
	prog := kvmtest.Guest(t, kvmtest.GCC, "basics.c")
	code, stdout, stderr := sandboxExec(t, "one\ntwo\n", "--env", "COLOR=blue", "--", prog, "9")
	require.Equal(t, 9, code)
	require.Contains(t, stdout, "env COLOR=blue\n")
	require.Contains(t, stdout, "env PATH=")
	require.Contains(t, stdout, "stdin lines=2 bytes=8\n")
	require.Equal(t, "to stderr\n", stderr)

	code, _, _ = sandboxExec(t, "", "--", "busybox", "false")
	require.Equal(t, 1, code, "a name without a slash is looked up in PATH")

	code, _, stderr = sandboxExec(t, "", "--", "no-such-program-anywhere")
	require.Equal(t, 127, code)
	require.Contains(t, stderr, "not found")
}

func TestSignalsBecome128PlusN(t *testing.T) {
	kvmtest.RequireKVM(t)
	prog := kvmtest.Guest(t, kvmtest.GCC, "fault.c")
	code, _, stderr := sandboxExec(t, "", "--", prog, "segv")
	require.Equal(t, 128+11, code)
	require.Contains(t, stderr, "segmentation fault")

	code, _, stderr = sandboxExec(t, "", "--debug", "--", prog, "ill")
	require.Equal(t, 128+4, code)
	require.Contains(t, stderr, "exception 6")
	require.Contains(t, stderr, "ud2")
	require.Contains(t, stderr, "rip ")
}

func TestTimeoutStopsASpinningProgram(t *testing.T) {
	kvmtest.RequireKVM(t)
	prog := kvmtest.Guest(t, kvmtest.GCC, "fault.c")
	code, _, stderr := sandboxExec(t, "", "--timeout", "200ms", "--", prog, "spin")
	require.Equal(t, 128+9, code)
	require.Contains(t, stderr, "timeout")
}

func TestStraceLines(t *testing.T) {
	kvmtest.RequireKVM(t)
	code, stdout, stderr := sandboxExec(t, "", "--strace", "--", "busybox", "echo", "traced")
	require.Equal(t, 0, code)
	require.Equal(t, "traced\n", stdout)
	require.Contains(t, stderr, `write(1, "traced\n", 7) = 7`)
	require.Contains(t, stderr, "exit_group(0) = 0")
}

func TestMemoryLimit(t *testing.T) {
	kvmtest.RequireKVM(t)
	prog := kvmtest.Guest(t, kvmtest.GCC, "basics.c")
	code, _, stderr := sandboxExec(t, "", "--mem", "48m", "--", prog)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "Cannot allocate memory")
}

// TestUserlandRunsHostPrograms runs the host's python3 and bash with
// --userland, which finds a bare name in the program's PATH and shows
// neither /root nor /home; without it, the error names the flag.
func TestUserlandRunsHostPrograms(t *testing.T) {
	kvmtest.RequireKVM(t)
	kvmtest.RequireFile(t, "/usr/bin/python3")
	kvmtest.RequireFile(t, "/bin/bash")
	code, stdout, stderr := sandboxExec(t, "", "--userland", "--", "python3", "-c", "print(1)")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "1\n", stdout)

	code, stdout, stderr = sandboxExec(t, "", "--userland", "--", "bash", "-c", "ls /; ls -d /root /home")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stdout, "usr\n")
	require.NotContains(t, stdout, "root")
	require.NotContains(t, stdout, "home")
	require.Contains(t, stderr, "cannot access '/root'")
	require.Contains(t, stderr, "cannot access '/home'")

	code, _, stderr = sandboxExec(t, "", "--", "/bin/bash", "-c", "true")
	require.Equal(t, 126, code)
	require.Contains(t, stderr, "--userland")
}

// TestPublishServesTheHost publishes busybox nc's port on a free port of
// the host's loopback: a host client gets what nc sends it.
func TestPublishServesTheHost(t *testing.T) {
	kvmtest.RequireKVM(t)
	kvmtest.RequireTool(t, "busybox")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	host := l.Addr().String()
	require.NoError(t, l.Close())
	done := make(chan int)
	go func() {
		code, _, _ := sandboxExec(t, "from the sandbox\n", "-p", host+":8080", "--timeout", "2m", "--", "busybox", "nc", "-l", "-p", "8080")
		done <- code
	}()
	// Until nc listens, the sandbox resets the host's connections.
	for {
		got, err := readAll(host)
		if err == nil && got != "" {
			require.Equal(t, "from the sandbox\n", got)
			break
		}
		select {
		case code := <-done:
			t.Fatalf("sandbox-exec ended with %d before serving", code)
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.Equal(t, 0, <-done)

	code, _, stderr := sandboxExec(t, "", "-p", "80/sctp", "--", "busybox", "true")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "protocol")
}

// readAll connects to addr and reads until the connection ends.
func readAll(addr string) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestAllow reaches a host listener on the loopback through the gateway
// with busybox nc, which only an --allow for its port opens.
func TestAllow(t *testing.T) {
	code, _, stderr := sandboxExec(t, "", "--allow", "10.0.0.1/8", "--", "/bin/true")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `"10.0.0.1/8"`)

	kvmtest.RequireKVM(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("pong " + line))
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	code, stdout, stderr := sandboxExec(t, "ping\n", "--allow", "127.0.0.1:"+port+"/tcp", "--", "busybox", "nc", "10.0.2.2", port)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "pong ping\n", stdout)
	code, _, stderr = sandboxExec(t, "ping\n", "--debug", "--allow", "127.0.0.1:1/tcp", "--", "busybox", "nc", "10.0.2.2", port)
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "kvmbox: network: refused tcp 10.0.2.15:")
	require.Contains(t, stderr, "Connection refused")
}
