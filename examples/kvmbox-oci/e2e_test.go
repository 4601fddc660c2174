package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var (
	buildOnce  sync.Once
	binaryDir  string
	binaryPath string
	buildErr   error
)

// TestMain removes the runtime binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaryDir != "" {
		os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// runtimeBinary builds kvmbox-oci once for the tests.
func runtimeBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binaryDir, buildErr = os.MkdirTemp("", "kvmbox-oci-test")
		if buildErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "kvmbox-oci")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binaryPath
}

// ociEnv is a runtime binary, a --root and a busybox bundle.
type ociEnv struct {
	t      *testing.T
	bin    string
	root   string
	bundle string
	log    string
}

func newOCIEnv(t *testing.T) *ociEnv {
	kvmtest.RequireKVM(t)
	kvmtest.RequireFile(t, "/bin/busybox")
	e := &ociEnv{t: t, bin: runtimeBinary(t), root: filepath.Join(t.TempDir(), "state"), bundle: t.TempDir()}
	e.log = filepath.Join(e.bundle, "log.json")
	bin := filepath.Join(e.bundle, "rootfs", "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bin, "busybox"), busybox, 0o755))
	require.NoError(t, os.Symlink("busybox", filepath.Join(bin, "sh")))
	return e
}

// writeSpec writes the bundle's config.json: the default with args.
func (e *ociEnv) writeSpec(change func(*specs.Spec), args ...string) {
	s := defaultSpec()
	s.Process.Terminal = false
	s.Process.Args = args
	if change != nil {
		change(s)
	}
	data, err := json.Marshal(s)
	require.NoError(e.t, err)
	require.NoError(e.t, os.WriteFile(filepath.Join(e.bundle, "config.json"), data, 0o644))
}

// run runs the runtime with the given standard output file (the
// container's, when it creates one; a fresh one when nil) and returns its
// exit status, stdout and stderr. Files rather than pipes: a monitor or
// exec waiter left running holds them open.
func (e *ociEnv) run(stdout *os.File, args ...string) (int, string, string) {
	e.t.Helper()
	cmd := exec.Command(e.bin, append([]string{"--root", e.root, "--log", e.log, "--log-format", "json"}, args...)...)
	dir := e.t.TempDir()
	errFile, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(e.t, err)
	defer errFile.Close()
	cmd.Stdout, cmd.Stderr = stdout, errFile
	if stdout == nil {
		outFile, err := os.Create(filepath.Join(dir, "stdout"))
		require.NoError(e.t, err)
		defer outFile.Close()
		cmd.Stdout = outFile
	}
	err = cmd.Run()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		require.True(e.t, ok, "%v", err)
		code = exit.ExitCode()
	}
	out, _ := os.ReadFile(filepath.Join(dir, "stdout"))
	errOut, err := os.ReadFile(errFile.Name())
	require.NoError(e.t, err)
	return code, string(out), string(errOut)
}

func (e *ociEnv) state(id string) specs.State {
	e.t.Helper()
	code, out, stderr := e.run(nil, "state", id)
	require.Equal(e.t, 0, code, stderr)
	var s specs.State
	require.NoError(e.t, json.Unmarshal([]byte(out), &s))
	return s
}

// reap waits for pid, an orphan this test process adopted as a child
// subreaper (as containerd's shim does), and returns its exit status as
// the shim reports it.
func reap(t *testing.T, pid int) int {
	t.Helper()
	var ws unix.WaitStatus
	_, err := unix.Wait4(pid, &ws, 0, nil)
	require.NoError(t, err)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func readPid(t *testing.T, name string) int {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(data))
	require.NoError(t, err)
	return pid
}

// The life of a container as containerd's shim drives it: create, state,
// start, exec (attached and detached), ps, kill, delete, with hooks on the
// host, and the container's exit status as the pid in --pid-file's.
func TestContainerLifecycle(t *testing.T) {
	e := newOCIEnv(t)
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	hookLog := filepath.Join(t.TempDir(), "hooks")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "{ echo " + name + "; cat; echo; } >> " + hookLog}}
	}
	e.writeSpec(func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{hook("prestart")}, CreateRuntime: []specs.Hook{hook("createRuntime")},
			Poststart: []specs.Hook{hook("poststart")}, Poststop: []specs.Hook{hook("poststop")}}
		s.Annotations = map[string]string{"org.example": "yes"}
		s.Hostname = "web"
	}, "sh", "-c", `echo started on $(hostname); trap "echo got TERM; exit 3" TERM; while :; do sleep 0.05; done`)
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer out.Close()
	pidFile := filepath.Join(t.TempDir(), "pid")

	code, _, _ := e.run(out, "create", "--bundle", e.bundle, "--pid-file", pidFile, "web")
	require.Equal(t, 0, code)
	pid := readPid(t, pidFile)
	sock, err := os.Stat(filepath.Join(e.root, "web", socketFile))
	require.NoError(t, err)
	require.Equal(t, os.ModeSocket|0o600, sock.Mode(), "only the monitor's owner may connect")
	s := e.state("web")
	require.Equal(t, specs.State{Version: specs.Version, ID: "web", Status: "created", Pid: pid, Bundle: e.bundle,
		Annotations: map[string]string{"org.example": "yes"}}, s)

	code, _, stderr := e.run(nil, "create", "--bundle", e.bundle, "web")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container with id exists: web")

	code, _, stderr = e.run(nil, "start", "web")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, specs.ContainerState("running"), e.state("web").Status)

	code, stdout, stderr := e.run(nil, "exec", "web", "sh", "-c", "echo in exec $(hostname); exit 5")
	require.Equal(t, 5, code, stderr)
	require.Equal(t, "in exec web\n", stdout)

	process, err := json.Marshal(specs.Process{Args: []string{"sh", "-c", "read line; echo read $line; exit 6"}, Cwd: "/", Env: []string{"PATH=/bin"}})
	require.NoError(t, err)
	processFile := filepath.Join(t.TempDir(), "process.json")
	require.NoError(t, os.WriteFile(processFile, process, 0o644))
	execPidFile := filepath.Join(t.TempDir(), "exec.pid")
	stdinR, stdinW, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(e.bin, "--root", e.root, "exec", "--process", processFile, "--detach", "--pid-file", execPidFile, "web")
	execOut, err := os.Create(filepath.Join(t.TempDir(), "exec.out"))
	require.NoError(t, err)
	defer execOut.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, execOut, execOut
	require.NoError(t, cmd.Run())
	stdinR.Close()
	execPid := readPid(t, execPidFile)

	code, stdout, _ = e.run(nil, "ps", "--format", "json", "web")
	require.Equal(t, 0, code)
	var pids []int
	require.NoError(t, json.Unmarshal([]byte(stdout), &pids))
	require.ElementsMatch(t, []int{pid, execPid}, pids)

	fmt.Fprintln(stdinW, "hello")
	stdinW.Close()
	require.Equal(t, 6, reap(t, execPid), "the detached exec's pid exits with the process's status")
	execText, err := os.ReadFile(execOut.Name())
	require.NoError(t, err)
	require.Equal(t, "read hello\n", string(execText))

	code, _, stderr = e.run(nil, "delete", "web")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "cannot delete container web that is not stopped: running")

	code, _, stderr = e.run(nil, "kill", "web", "TERM")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 3, reap(t, pid), "the monitor exits with the container's status")
	s = e.state("web")
	require.Equal(t, specs.ContainerState("stopped"), s.Status)
	require.Zero(t, s.Pid)

	code, _, stderr = e.run(nil, "kill", "web", "KILL")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container not running")
	code, _, stderr = e.run(nil, "kill", "--all", "web", "KILL")
	require.Equal(t, 0, code, "kill --all of a stopped container signals what is left, nothing: %s", stderr)

	code, _, stderr = e.run(nil, "delete", "web")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = e.run(nil, "state", "web")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container does not exist")
	entries, err := os.ReadDir(e.root)
	require.NoError(t, err)
	require.Empty(t, entries)

	text, err := os.ReadFile(out.Name())
	require.NoError(t, err)
	require.Equal(t, "started on web\ngot TERM\n", string(text))
	hooks, err := os.ReadFile(hookLog)
	require.NoError(t, err)
	var names []string
	for line := range strings.Lines(string(hooks)) {
		if !strings.HasPrefix(line, "{") {
			names = append(names, strings.TrimSpace(line))
			continue
		}
		var st specs.State
		require.NoError(t, json.Unmarshal([]byte(line), &st), line)
		require.Equal(t, "web", st.ID)
		require.Equal(t, e.bundle, st.Bundle)
	}
	require.Equal(t, []string{"prestart", "createRuntime", "poststart", "poststop"}, names)
}

// kill --all, delete --force, signal deaths and run: the exit statuses
// runc gives.
func TestKillDeleteAndRun(t *testing.T) {
	e := newOCIEnv(t)
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	e.writeSpec(nil, "sh", "-c", "sh -c 'sleep 1000' & wait")
	pidFile := filepath.Join(t.TempDir(), "pid")
	code, _, stderr := e.run(nil, "create", "--bundle", e.bundle, "--pid-file", pidFile, "a")
	require.Equal(t, 0, code, stderr)
	pid := readPid(t, pidFile)
	code, _, stderr = e.run(nil, "start", "a")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = e.run(nil, "start", "a")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "already running")
	code, _, stderr = e.run(nil, "kill", "--all", "a", "9")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 128+9, reap(t, pid))
	code, _, stderr = e.run(nil, "start", "a")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "stopped")
	code, _, stderr = e.run(nil, "delete", "a")
	require.Equal(t, 0, code, stderr)

	code, _, stderr = e.run(nil, "create", "--bundle", e.bundle, "--pid-file", pidFile, "b")
	require.Equal(t, 0, code, stderr)
	pid = readPid(t, pidFile)
	code, _, stderr = e.run(nil, "start", "b")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = e.run(nil, "delete", "--force", "b")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 128+9, reap(t, pid))
	code, _, _ = e.run(nil, "delete", "--force", "b")
	require.Equal(t, 0, code, "delete --force of a container that does not exist")
	code, _, stderr = e.run(nil, "delete", "b")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container does not exist")

	code, _, stderr = e.run(nil, "create", "--bundle", e.bundle, "--pid-file", pidFile, "c")
	require.Equal(t, 0, code, stderr)
	pid = readPid(t, pidFile)
	code, _, stderr = e.run(nil, "delete", "c")
	require.Equal(t, 0, code, "a created container is deleted without --force: %s", stderr)
	require.Equal(t, 128+9, reap(t, pid))

	e.writeSpec(nil, "sh", "-c", "echo hi; kill -SEGV $$")
	code, stdout, stderr := e.run(nil, "run", "--bundle", e.bundle, "d")
	require.Equal(t, 128+11, code, stderr)
	require.Equal(t, "hi\n", stdout)
	entries, err := os.ReadDir(e.root)
	require.NoError(t, err)
	require.Empty(t, entries, "run deletes the container it ran")
}

// Bad input fails with runc's exit status 1 and a message that says what
// is wrong, leaving no state and no process.
func TestBadInput(t *testing.T) {
	e := newOCIEnv(t)
	e.writeSpec(nil, "sh", "-c", "exit 0")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--bundle", t.TempDir(), "x"}, "config.json: no such file"},
		{[]string{"create", "--bundle", e.bundle, "../x"}, "invalid container ID"},
		{[]string{"create", "--bundle", e.bundle, "a/b"}, "invalid container ID"},
		{[]string{"--root", "/proc/kvmbox-oci", "create", "--bundle", e.bundle, "x"}, "--root"},
		{[]string{"kill", "nothere", "KILL"}, "container does not exist"},
		{[]string{"start", "nothere"}, "container does not exist"},
		{[]string{"exec", "nothere", "sh"}, "container does not exist"},
		{[]string{"checkpoint", "nothere"}, "checkpoint is not supported"},
		{[]string{"pause", "nothere"}, "container does not exist"},
	} {
		code, _, stderr := e.run(nil, c.args...)
		require.Equal(t, 1, code, "%q: %s", c.args, stderr)
		require.Contains(t, stderr, c.want, c.args)
	}
	for name, change := range map[string]func(*specs.Spec){
		"root.path":  func(s *specs.Spec) { s.Root.Path = "/nothere" },
		"ociVersion": func(s *specs.Spec) { s.Version = "2.0.0" },
		"mounts[0]":  func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "/x", Type: "nfs"}} },
	} {
		e.writeSpec(change, "sh")
		code, _, stderr := e.run(nil, "create", "--bundle", e.bundle, "x")
		require.Equal(t, 1, code, name)
		require.Contains(t, stderr, name)
	}
	require.NoError(t, os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(`{"ociVersion": "1.0.0", "bogus": 1}`), 0o644))
	code, _, stderr := e.run(nil, "create", "--bundle", e.bundle, "x")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "root.path: required")
	entries, err := os.ReadDir(e.root)
	if err == nil {
		require.Empty(t, entries)
	}
	log, err := os.ReadFile(e.log)
	require.NoError(t, err)
	require.Contains(t, string(log), `"level":"error"`, "errors reach the --log in JSON, where the shim reads them")
	require.Contains(t, string(log), `the property \"bogus\" is not in the runtime specification`, "an unknown property is ignored with a warning")
}

// receiveConsole accepts one connection on a console socket and returns
// the pty master sent over it, as containerd's shim does.
func receiveConsole(t *testing.T, l *net.UnixListener) *os.File {
	t.Helper()
	c, err := l.AcceptUnix()
	require.NoError(t, err)
	defer c.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	require.NoError(t, err)
	files, err := receivedFiles(oob[:oobn])
	require.NoError(t, err)
	require.Len(t, files, 1)
	return files[0]
}

// process.terminal with --console-socket: the container's streams are a
// new terminal whose master goes to the socket, for create and exec.
func TestConsoleSocket(t *testing.T) {
	e := newOCIEnv(t)
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	e.writeSpec(func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 33, Width: 111}
	}, "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on a terminal; stty size; read line; echo got $line; exit 7")
	socket := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	require.NoError(t, err)
	defer l.Close()
	masters := make(chan *os.File, 1)
	go func() { masters <- receiveConsole(t, l) }()

	pidFile := filepath.Join(t.TempDir(), "pid")
	code, _, stderr := e.run(nil, "create", "--bundle", e.bundle, "--console-socket", socket, "--pid-file", pidFile, "tty")
	require.Equal(t, 0, code, stderr)
	master := <-masters
	defer master.Close()
	code, _, stderr = e.run(nil, "start", "tty")
	require.Equal(t, 0, code, stderr)
	fmt.Fprint(master, "hello\n")
	require.Equal(t, 7, reap(t, readPid(t, pidFile)))
	// The master reads what the terminal holds, then EIO: nothing has the
	// slave open any more.
	out, _ := io.ReadAll(master)
	text := strings.ReplaceAll(string(out), "\r\n", "\n")
	// The terminal echoes the input wherever it arrives among the output.
	for _, line := range []string{"on a terminal\n", "33 111\n", "got hello\n"} {
		require.Contains(t, text, line)
	}

	go func() { masters <- receiveConsole(t, l) }()
	code, _, stderr = e.run(nil, "create", "--bundle", e.bundle, "--console-socket", socket, "tty2")
	require.Equal(t, 0, code, stderr)
	initMaster := <-masters
	defer initMaster.Close()
	code, _, stderr = e.run(nil, "start", "tty2")
	require.Equal(t, 0, code, stderr)
	go func() { masters <- receiveConsole(t, l) }()
	code, _, stderr = e.run(nil, "exec", "--tty", "--console-socket", socket, "--detach", "--pid-file", pidFile, "tty2",
		"sh", "-c", "[ -t 0 ] && echo exec on a terminal")
	require.Equal(t, 0, code, stderr)
	execMaster := <-masters
	defer execMaster.Close()
	require.Equal(t, 0, reap(t, readPid(t, pidFile)))
	out, _ = io.ReadAll(execMaster)
	require.Equal(t, "exec on a terminal\r\n", string(out))
	code, _, stderr = e.run(nil, "delete", "--force", "tty2")
	require.Equal(t, 0, code, stderr)

	code, _, stderr = e.run(nil, "create", "--bundle", e.bundle, "notty")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--console-socket")
	code, _, stderr = e.run(nil, "delete", "tty")
	require.Equal(t, 0, code, stderr)
}

// features, spec and list print what runc's do.
func TestFeaturesSpecAndList(t *testing.T) {
	e := &ociEnv{t: t, bin: runtimeBinary(t), root: filepath.Join(t.TempDir(), "state"), bundle: t.TempDir()}
	code, out, stderr := e.run(nil, "features")
	require.Equal(t, 0, code, stderr)
	var f struct {
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &f))
	require.Equal(t, specs.Version, f.OCIVersionMax)
	require.Contains(t, f.Hooks, "poststop")

	code, _, stderr = e.run(nil, "spec", "--bundle", e.bundle)
	require.Equal(t, 0, code, stderr)
	spec, _, err := loadBundleSpec(e.bundle)
	require.NoError(t, err)
	require.Equal(t, defaultSpec(), spec)
	code, _, stderr = e.run(nil, "spec", "--bundle", e.bundle)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "exists")

	code, out, stderr = e.run(nil, "list", "--format", "json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "[]\n", out)
}
