package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// stopTimeout bounds how long delete waits for a killed container's
// monitor to exit.
const stopTimeout = 30 * time.Second

// loadBundleSpec reads and checks a bundle's config.json; unknown names
// a property it ignored.
func loadBundleSpec(bundle string) (spec *specs.Spec, unknown string, err error) {
	data, err := readLimited(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, "", err
	}
	return parseSpec(data)
}

// globalArgs passes the global flags on to the monitor and exec waiters.
func (rt *runtime) globalArgs() []string {
	return []string{"--root", rt.root, "--log", rt.logPath, "--log-format", rt.logFormat, "--debug=" + strconv.FormatBool(rt.debug)}
}

func stringFlag(fs *flag.FlagSet, name, short, value, usage string) *string {
	s := fs.String(name, value, usage)
	if short != "" {
		fs.StringVar(s, short, value, "short for --"+name)
	}
	return s
}

func boolFlag(fs *flag.FlagSet, name, short, usage string) *bool {
	b := fs.Bool(name, false, usage)
	if short != "" {
		fs.BoolVar(b, short, false, "short for --"+name)
	}
	return b
}

// createOptions are the flags of create and run.
type createOptions struct {
	bundle, pidFile, consoleSocket *string
	preserveFDs                    *int
	detach                         *bool
}

func (rt *runtime) createFlags(name string) (*flag.FlagSet, createOptions) {
	fs := rt.commandFlags(name)
	o := createOptions{
		bundle:        stringFlag(fs, "bundle", "b", ".", "the bundle `DIR` holding config.json"),
		pidFile:       fs.String("pid-file", "", "write the container's host pid (its monitor's) to `FILE`"),
		consoleSocket: fs.String("console-socket", "", "send the terminal's master to the Unix socket `PATH`"),
		preserveFDs:   fs.Int("preserve-fds", 0, "must be 0: only the standard streams reach the container"),
	}
	fs.Bool("no-pivot", false, "accepted for runc compatibility")
	fs.Bool("no-new-keyring", false, "accepted for runc compatibility")
	if name == "run" {
		o.detach = boolFlag(fs, "detach", "d", "return once the container runs")
	}
	return fs, o
}

// writePidFile writes pid as runc does: whole, through a rename.
func writePidFile(name string, pid int) error {
	if name == "" {
		return nil
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	return writeFileAtomic(abs, []byte(strconv.Itoa(pid)))
}

func (rt *runtime) create(args []string, _ io.Writer) error {
	fs, o := rt.createFlags("create")
	id, rest, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("create takes one container ID, not %q", rest)
	}
	monitor, _, err := rt.createContainer(id, o, false)
	if err != nil {
		return err
	}
	monitor.Process.Release()
	return nil
}

// createContainer checks the bundle, makes the state directory and starts
// the container's monitor, whose standard streams are the caller's (or a
// new terminal's, sent to the console socket), and runs the creation
// hooks. On failure it leaves no state and no process behind.
func (rt *runtime) createContainer(id string, o createOptions, foreground bool) (*exec.Cmd, *containerState, error) {
	if *o.preserveFDs != 0 {
		return nil, nil, errors.New("--preserve-fds: kvmbox passes only the standard streams to a container")
	}
	bundle, err := filepath.Abs(*o.bundle)
	if err != nil {
		return nil, nil, err
	}
	spec, unknown, err := loadBundleSpec(bundle)
	if err != nil {
		return nil, nil, err
	}
	if unknown != "" {
		rt.logLine("warning", fmt.Sprintf("%s: config.json: the property %s is not in the runtime specification %s and is ignored", id, unknown, specs.Version))
	}
	dir := rt.stateDir(id)
	pod, podPid, err := rt.podOf(spec.Annotations)
	if err != nil {
		return nil, nil, err
	}
	p, err := planContainer(spec, bundle, filepath.Join(dir, emptyDir), podPid)
	if err != nil {
		return nil, nil, err
	}
	stdio := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	switch {
	case p.process.terminal && *o.consoleSocket != "":
		master, slave, err := newPty(p.process.rows, p.process.cols)
		if err != nil {
			return nil, nil, err
		}
		defer slave.Close()
		err = sendConsole(*o.consoleSocket, master)
		master.Close()
		if err != nil {
			return nil, nil, err
		}
		stdio = []*os.File{slave, slave, slave}
	case p.process.terminal && !foreground:
		return nil, nil, errors.New("process.terminal: a detached container's terminal needs --console-socket")
	case !p.process.terminal && *o.consoleSocket != "":
		return nil, nil, errors.New("--console-socket: process.terminal is false, so there is no terminal to send")
	}
	if err := os.MkdirAll(rt.root, 0o711); err != nil {
		return nil, nil, fmt.Errorf("--root: %w", err)
	}
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, nil, fmt.Errorf("container with id exists: %s", id)
		}
		return nil, nil, fmt.Errorf("--root: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Mkdir(filepath.Join(dir, emptyDir), 0o555); err != nil {
		return nil, nil, err
	}
	st := &containerState{ID: id, Bundle: bundle, Rootfs: p.sandbox.Root, Created: time.Now().UTC(),
		Pod: pod, Annotations: spec.Annotations, Hooks: spec.Hooks}
	if err := rt.saveState(st); err != nil {
		return nil, nil, err
	}
	for _, n := range p.notes {
		rt.logLine("warning", id+": "+n)
	}
	monitor, err := rt.startMonitor(id, pod, spec.Annotations[criContainerType] == criSandbox, stdio)
	if err != nil {
		return nil, nil, err
	}
	st.MonitorPid = monitor.Process.Pid
	err = rt.saveState(st)
	if err == nil && spec.Hooks != nil {
		state := rt.ociState(st)
		for _, hooks := range []struct {
			name string
			list []specs.Hook
		}{{"prestart", spec.Hooks.Prestart}, {"createRuntime", spec.Hooks.CreateRuntime}, {"createContainer", spec.Hooks.CreateContainer}} {
			if err = runHooks(hooks.name, hooks.list, state); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = writePidFile(*o.pidFile, st.MonitorPid)
	}
	if err != nil {
		monitor.Process.Kill()
		monitor.Wait()
		return nil, nil, err
	}
	ok = true
	return monitor, st, nil
}

// startMonitor starts a container's monitor in a session of its own and
// waits until its sandbox is up; or, for a container that joins the pod
// sandbox pod, the waiter that stands for it, once it is in the sandbox.
// A pod sandbox's monitor stays in the host's mount namespace: the
// root file systems of the pod's containers, which it mounts in the
// sandbox, are mounted on the host after it starts.
func (rt *runtime) startMonitor(id, pod string, podSandbox bool, stdio []*os.File) (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// Hooks find "the container" through the pid in its state, the
	// monitor's: namespaces of its own keep what they set up there
	// (Docker's network hook, for one) off the host's. Where root cannot
	// make namespaces (a chroot, a container without CAP_SYS_ADMIN), the
	// monitor runs without them.
	// A waiter holds no sandbox and needs no namespaces.
	var namespaces uintptr
	if os.Geteuid() == 0 && pod == "" {
		namespaces = unix.CLONE_NEWNET | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
		if podSandbox {
			namespaces &^= unix.CLONE_NEWNS
		}
	}
	command, exited := monitorCommand, "the container's monitor exited before its sandbox was up"
	if pod != "" {
		command, exited = joinWaitCommand, "the container's waiter exited before it joined the pod sandbox "+pod
	}
	var cmd *exec.Cmd
	for {
		cmd = exec.Command(rt.self, append(rt.globalArgs(), command, id)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
		cmd.ExtraFiles = []*os.File{w}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: namespaces}
		err = cmd.Start()
		if namespaces == 0 || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) {
			break
		}
		rt.logLine("warning", fmt.Sprintf("%s: the monitor runs in the host's namespaces: %v", id, err))
		namespaces = 0
	}
	w.Close()
	if err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(io.LimitReader(r, maxMessage))
	if err == nil && string(answer) != "ok" {
		err = errors.New(string(answer))
		if len(answer) == 0 {
			err = errors.New(exited)
		}
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return cmd, nil
}

func (rt *runtime) start(args []string, _ io.Writer) error {
	id, _, err := parseWithID(rt.commandFlags("start"), args)
	if err != nil {
		return err
	}
	st, err := rt.loadState(id)
	if err != nil {
		return err
	}
	return rt.startContainer(st)
}

func (rt *runtime) startContainer(st *containerState) error {
	switch rt.status(st.ID) {
	case statusStopped:
		return errors.New("cannot start a container that has stopped")
	case statusRunning:
		return errors.New("cannot start an already running container")
	case statusPaused:
		return errors.New("cannot start a container in the paused state")
	}
	if _, err := rt.ask(st.ID, request{Op: opStart}); err != nil {
		return err
	}
	if st.Hooks != nil {
		if err := runHooks("poststart", st.Hooks.Poststart, rt.ociState(st)); err != nil {
			rt.logLine("warning", err.Error())
			fmt.Fprintf(rt.stderr, "kvmbox-oci: warning: %v\n", err)
		}
	}
	return nil
}

// runContainer is create and start, and without --detach a wait for the
// container's end, whose status becomes this command's, and a delete.
func (rt *runtime) runContainer(args []string, _ io.Writer) error {
	fs, o := rt.createFlags("run")
	id, rest, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("run takes one container ID, not %q", rest)
	}
	monitor, st, err := rt.createContainer(id, o, !*o.detach)
	if err != nil {
		return err
	}
	if err := rt.startContainer(st); err != nil {
		monitor.Process.Kill()
		monitor.Wait()
		rt.remove(st)
		return err
	}
	if *o.detach {
		monitor.Process.Release()
		return nil
	}
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, forwardedSignals...)
	go func() {
		for sig := range ch {
			rt.ask(id, request{Op: opKill, Signal: int(sig.(syscall.Signal))})
		}
	}()
	monitor.Wait()
	signal.Stop(ch)
	rt.remove(st)
	return &exitError{code: waitCode(monitor.ProcessState)}
}

// waitCode turns a host process's end into an exit status: its own, or
// 128+N for signal N.
func waitCode(s *os.ProcessState) int {
	if ws, ok := s.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return s.ExitCode()
}

// remove runs the poststop hooks and removes a stopped container's state.
func (rt *runtime) remove(st *containerState) error {
	if st.Hooks != nil {
		if err := runHooks("poststop", st.Hooks.Poststop, rt.ociState(st)); err != nil {
			rt.logLine("warning", err.Error())
			fmt.Fprintf(rt.stderr, "kvmbox-oci: warning: %v\n", err)
		}
	}
	return os.RemoveAll(rt.stateDir(st.ID))
}

func (rt *runtime) state(args []string, stdout io.Writer) error {
	id, _, err := parseWithID(rt.commandFlags("state"), args)
	if err != nil {
		return err
	}
	st, err := rt.loadState(id)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(rt.ociState(st), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func (rt *runtime) kill(args []string, _ io.Writer) error {
	fs := rt.commandFlags("kill")
	all := boolFlag(fs, "all", "a", "signal every process in the container")
	id, rest, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	sig := syscall.SIGTERM
	switch len(rest) {
	case 0:
	case 1:
		if sig, err = parseSignal(rest[0]); err != nil {
			return err
		}
	default:
		return fmt.Errorf("kill takes an ID and a signal, not %q", rest)
	}
	if _, err := rt.loadState(id); err != nil {
		return err
	}
	if rt.status(id) == statusStopped {
		// As runc: kill --all signals what is left of a stopped
		// container, which here is nothing (the shim sends it once the
		// container's process has exited).
		if *all {
			return nil
		}
		return errors.New("container not running")
	}
	_, err = rt.ask(id, request{Op: opKill, Signal: int(sig), All: *all})
	return err
}

func (rt *runtime) delete(args []string, _ io.Writer) error {
	fs := rt.commandFlags("delete")
	force := boolFlag(fs, "force", "f", "kill a running container (SIGKILL) and delete it")
	id, _, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	st, err := rt.loadState(id)
	if errors.Is(err, errNotExist) && *force {
		return nil
	}
	if err != nil {
		return err
	}
	switch status := rt.status(id); {
	case (status == statusRunning || status == statusPaused) && !*force:
		return fmt.Errorf("cannot delete container %s that is not stopped: %s", id, status)
	case status != statusStopped:
		if _, err := rt.ask(id, request{Op: opKill, Signal: int(unix.SIGKILL), All: true}); err != nil && rt.status(id) != statusStopped {
			return err
		}
		if err := rt.waitStopped(id, stopTimeout); err != nil {
			return err
		}
	}
	return rt.remove(st)
}

func (rt *runtime) ps(args []string, stdout io.Writer) error {
	fs := rt.commandFlags("ps")
	format := stringFlag(fs, "format", "f", "table", "`table` or json")
	id, _, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("--format %q: must be table or json", *format)
	}
	if _, err := rt.loadState(id); err != nil {
		return err
	}
	pids := []int{}
	if r, err := rt.ask(id, request{Op: opPs}); err == nil {
		pids = r.Pids
	}
	if *format == "json" {
		return json.NewEncoder(stdout).Encode(pids)
	}
	fmt.Fprintln(stdout, "PID")
	for _, pid := range pids {
		fmt.Fprintln(stdout, pid)
	}
	return nil
}

func (rt *runtime) list(args []string, stdout io.Writer) error {
	flags := rt.commandFlags("list")
	format := stringFlag(flags, "format", "f", "table", "`table` or json")
	if err := flags.Parse(args); err != nil {
		return errUsage
	}
	entries, err := os.ReadDir(rt.root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	states := []ociState{}
	for _, e := range entries {
		if st, err := rt.loadState(e.Name()); err == nil && checkID(e.Name()) == nil {
			states = append(states, rt.ociState(st))
		}
	}
	if *format == "json" {
		return json.NewEncoder(stdout).Encode(states)
	}
	w := tabwriter.NewWriter(stdout, 12, 1, 3, ' ', 0)
	fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED")
	for _, s := range states {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano))
	}
	return w.Flush()
}

func (rt *runtime) features(args []string, stdout io.Writer) error {
	no := false
	f := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "poststart", "poststop"},
		MountOptions:  knownMountOptions,
		Linux: &features.Linux{
			Namespaces: []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Cgroup:     &features.Cgroup{V1: &no, V2: &no, Systemd: &no, SystemdUser: &no, Rdma: &no},
			Seccomp:    &features.Seccomp{Enabled: &no},
			Apparmor:   &features.Apparmor{Enabled: &no},
			Selinux:    &features.Selinux{Enabled: &no},
		},
	}
	out, err := json.MarshalIndent(f, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// defaultSpec is what spec writes: a shell on a terminal, in a sandbox
// with its own loopback network, over the bundle's rootfs.
func defaultSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: true,
			Args:     []string{"sh"},
			Env:      []string{"PATH=" + defaultPath, "TERM=xterm"},
			Cwd:      "/",
			Rlimits:  []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},

			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "kvmbox",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
		},
	}
}

func (rt *runtime) spec(args []string, _ io.Writer) error {
	fs := rt.commandFlags("spec")
	bundle := stringFlag(fs, "bundle", "b", ".", "write config.json in `DIR`")
	fs.Bool("rootless", false, "accepted for runc compatibility: a kvmbox sandbox needs no root on the host beyond /dev/kvm")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	name := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(name); err == nil {
		return fmt.Errorf("File %s exists. Remove it first", name)
	}
	data, err := json.MarshalIndent(defaultSpec(), "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(data, '\n'), 0o666)
}
