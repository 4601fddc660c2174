package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execWaitCommand is how exec --detach starts the process that stands for
// the exec'd one on the host: this binary with the global flags, then
// execWaitCommand and exec's own arguments, descriptor 3 a pipe on which
// it reports that the process started ("ok") or why it did not. It exits
// with the process's status, as the containerd shim expects of the pid
// in --pid-file.
const execWaitCommand = "__exec-wait"

// execOptions are exec's flags.
type execOptions struct {
	id            string
	process       *specs.Process
	detach        bool
	pidFile       string
	consoleSocket string
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseExec reads exec's command line: --process FILE, or the ID followed
// by the program and its arguments, run with the container's environment,
// working directory and user unless flags say otherwise.
func (rt *runtime) parseExec(args []string) (*execOptions, error) {
	fs := rt.commandFlags("exec")
	processFile := stringFlag(fs, "process", "p", "", "the process to run, as `FILE` (a config.json process)")
	detach := boolFlag(fs, "detach", "d", "return once the process runs, leaving a host process that exits with its status")
	pidFile := fs.String("pid-file", "", "write the host pid that stands for the process to `FILE`")
	consoleSocket := fs.String("console-socket", "", "send the terminal's master to the Unix socket `PATH`")
	tty := boolFlag(fs, "tty", "t", "run the process on a terminal")
	cwd := fs.String("cwd", "", "the working `DIR` inside the container")
	var env stringList
	fs.Var(&env, "env", "add `KEY=VALUE` to the environment (repeatable)")
	fs.Var(&env, "e", "short for --env")
	user := stringFlag(fs, "user", "u", "", "run as `UID[:GID]`")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	preserveFDs := fs.Int("preserve-fds", 0, "must be 0: only the standard streams reach the process")
	id, rest, err := parseWithID(fs, args)
	if err != nil {
		return nil, err
	}
	if *preserveFDs != 0 {
		return nil, errors.New("--preserve-fds: kvmbox passes only the standard streams to a process")
	}
	o := &execOptions{id: id, detach: *detach, pidFile: *pidFile, consoleSocket: *consoleSocket}
	if *processFile != "" {
		data, err := readLimited(*processFile)
		if err != nil {
			return nil, err
		}
		o.process = &specs.Process{}
		if err := decodeStrict(data, o.process); err != nil {
			name, isUnknown := unknownField(err)
			if !isUnknown {
				return nil, fmt.Errorf("--process %s: %w", *processFile, err)
			}
			rt.logLine("warning", fmt.Sprintf("%s: --process %s: the property %s is not in the runtime specification and is ignored", id, *processFile, name))
			o.process = &specs.Process{}
			if err := json.Unmarshal(data, o.process); err != nil {
				return nil, fmt.Errorf("--process %s: %w", *processFile, err)
			}
		}
		return o, nil
	}
	if len(rest) == 0 {
		return nil, errors.New("exec needs --process or a program to run")
	}
	st, err := rt.loadState(id)
	if err != nil {
		return nil, err
	}
	spec, _, err := loadBundleSpec(st.Bundle)
	if err != nil {
		return nil, err
	}
	if spec.Process == nil {
		return nil, errors.New("config.json has no process to take the environment from")
	}
	p := *spec.Process
	p.Args, p.Terminal = rest, *tty
	p.Env = append(append([]string(nil), p.Env...), env...)
	p.NoNewPrivileges = p.NoNewPrivileges || *noNewPrivs
	if *cwd != "" {
		p.Cwd = *cwd
	}
	if *user != "" {
		uid, gid, hasGID := strings.Cut(*user, ":")
		u, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: %w", *user, err)
		}
		p.User = specs.User{UID: uint32(u)}
		if hasGID {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: %w", *user, err)
			}
			p.User.GID = uint32(g)
		}
	}
	o.process = &p
	return o, nil
}

func (rt *runtime) exec(args []string, _ io.Writer) error {
	o, err := rt.parseExec(args)
	if err != nil {
		return err
	}
	if !o.detach {
		if err := writePidFile(o.pidFile, os.Getpid()); err != nil {
			return err
		}
		return rt.runExec(o, nil)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	waiter := exec.Command(rt.self, append(append(rt.globalArgs(), execWaitCommand), args...)...)
	waiter.Stdin, waiter.Stdout, waiter.Stderr = os.Stdin, os.Stdout, os.Stderr
	waiter.ExtraFiles = []*os.File{w}
	err = waiter.Start()
	w.Close()
	if err != nil {
		return err
	}
	answer, err := io.ReadAll(io.LimitReader(r, maxMessage))
	if err == nil && string(answer) != "ok" {
		err = errors.New(string(answer))
		if len(answer) == 0 {
			err = errors.New("the exec waiter exited before the process started")
		}
	}
	if err == nil {
		err = writePidFile(o.pidFile, waiter.Process.Pid)
	}
	if err != nil {
		waiter.Process.Kill()
		waiter.Wait()
		return err
	}
	return waiter.Process.Release()
}

// execWait is exec --detach's waiter.
func (rt *runtime) execWait(args []string, _ io.Writer) error {
	ready := os.NewFile(3, "ready")
	o, err := rt.parseExec(args)
	if err == nil {
		err = rt.runExec(o, ready)
	}
	var exit *exitError
	if err != nil && !errors.As(err, &exit) {
		io.WriteString(ready, err.Error())
		ready.Close()
	}
	return err
}

// runExec runs the process in the container with this command's standard
// streams (or a new terminal's) and returns its status as an exitError.
// ready, when set, learns that the process started, or why not.
func (rt *runtime) runExec(o *execOptions, ready *os.File) error {
	if _, err := rt.loadState(o.id); err != nil {
		return err
	}
	if rt.status(o.id) == statusStopped {
		return errors.New("cannot exec in a stopped container")
	}
	stdio := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	switch {
	case o.process.Terminal && o.consoleSocket != "":
		var rows, cols uint16
		if cs := o.process.ConsoleSize; cs != nil && cs.Height <= 0xffff && cs.Width <= 0xffff {
			rows, cols = uint16(cs.Height), uint16(cs.Width)
		}
		master, slave, err := newPty(rows, cols)
		if err != nil {
			return err
		}
		defer slave.Close()
		err = sendConsole(o.consoleSocket, master)
		master.Close()
		if err != nil {
			return err
		}
		stdio = []*os.File{slave, slave, slave}
	case o.process.Terminal && o.detach:
		return errors.New("process.terminal: a detached process's terminal needs --console-socket")
	}
	c, member, err := rt.dial(o.id)
	if err != nil {
		return errors.New("cannot exec in a stopped container")
	}
	defer c.Close()
	if err := c.send(request{Op: opExec, Process: o.process, Container: member}, stdio...); err != nil {
		return err
	}
	var r reply
	if _, err := c.receive(&r); err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	if ready != nil {
		io.WriteString(ready, "ok")
		ready.Close()
	}
	if !awaitExit(c, &r) {
		// The monitor is gone: the container stopped, and the sandbox's
		// processes were killed with it.
		return &exitError{code: 128 + int(syscall.SIGKILL)}
	}
	if r.Signal != 0 {
		return &exitError{code: 128 + r.Signal}
	}
	return &exitError{code: r.ExitCode}
}

// awaitExit passes the signals this process gets on to the process c
// runs until c reports its exit in r; it reports false when c ended
// without one.
func awaitExit(c *conn, r *reply) bool {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, forwardedSignals...)
	defer signal.Stop(ch)
	go func() {
		for sig := range ch {
			c.send(request{Op: opSignal, Signal: int(sig.(syscall.Signal))})
		}
	}()
	_, err := c.receive(r)
	return err == nil && r.Exited
}
