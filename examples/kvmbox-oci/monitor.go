package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/kvmbox/kvmbox"
	"golang.org/x/sys/unix"
)

// monitorCommand is how create starts a container's monitor: this binary
// with the global flags, then monitorCommand ID, its standard streams the
// container's and descriptor 3 a pipe on which it reports that it is
// ready ("ok") or why it failed.
const monitorCommand = "__monitor"

// monitor holds one container's sandbox and serves the commands that act
// on it over the socket in its state directory. It exits when the
// container's process does, with its status. A pod's pause container's
// monitor holds the pod's sandbox, which the pod's other containers join.
type monitor struct {
	rt *runtime
	id string
	sb *kvmbox.Sandbox

	mu sync.Mutex
	// containers are the monitor's own, under its ID, and the pod's
	// containers that joined its sandbox.
	containers map[string]*container

	exit     chan int
	exitOnce sync.Once
	// memoryLimit and maxTasks are the sandbox's limits, which stats
	// reports; update changes maxTasks. Guarded by mu.
	memoryLimit uint64
	maxTasks    int
}

// container is one container whose processes run in the monitor's
// sandbox.
type container struct {
	id string
	// rootfs is the host directory of its root file system; root is where
	// it is mounted in the sandbox, "" for the sandbox's own root.
	rootfs string
	root   string
	plan   *plan
	// stdio are the standard streams of a container that joined the pod,
	// sent by its waiter; the monitor's own otherwise.
	stdio  []*os.File
	status string
	init   *kvmbox.Process
	// pid is the host pid that stands for the container.
	pid int
	// execs are the exec connections open now, by the host pid at their
	// other end.
	execs map[*conn]int
	// stopped learns the container's exit status, once.
	stopped func(code int)
	endOnce sync.Once
}

func (rt *runtime) monitor(args []string, _ io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	ready := os.NewFile(3, "ready")
	code, err := rt.serveContainer(args[0], ready)
	if err != nil {
		io.WriteString(ready, err.Error())
		ready.Close()
		rt.logLine("error", fmt.Sprintf("monitor of %s: %v", args[0], err))
		return &exitError{code: 1}
	}
	return &exitError{code: code}
}

// serveContainer boots the container's sandbox, reports on ready, and
// serves requests until the container's process exits.
func (rt *runtime) serveContainer(id string, ready *os.File) (int, error) {
	st, err := rt.loadState(id)
	if err != nil {
		return 0, err
	}
	spec, _, err := loadBundleSpec(st.Bundle)
	if err != nil {
		return 0, err
	}
	p, err := planContainer(spec, st.Bundle, filepath.Join(rt.stateDir(id), emptyDir), 0)
	if err != nil {
		return 0, err
	}
	if rt.debug && rt.logPath != "" {
		debug, err := os.OpenFile(rt.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 0, err
		}
		defer debug.Close()
		p.sandbox.Debug = debug
	}
	sb, err := kvmbox.New(p.sandbox)
	if err != nil {
		return 0, err
	}
	defer sb.Close()
	dir, err := os.Open(rt.stateDir(id))
	if err != nil {
		return 0, err
	}
	defer dir.Close()
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: socketPath(dir), Net: "unixpacket"})
	if err != nil {
		return 0, err
	}
	l.SetUnlinkOnClose(false)
	// Whoever can connect can run programs in the container.
	if err := os.Chmod(filepath.Join(rt.stateDir(id), socketFile), 0o600); err != nil {
		l.Close()
		return 0, err
	}
	m := &monitor{rt: rt, id: id, sb: sb, exit: make(chan int, 1),
		memoryLimit: cmp.Or(p.sandbox.Memory, defaultMemoryLimit), maxTasks: cmp.Or(p.sandbox.MaxTasks, defaultMaxTasks)}
	own := &container{id: id, rootfs: st.Rootfs, plan: p, stdio: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		status: statusCreated, pid: os.Getpid(), execs: map[*conn]int{}, stopped: m.finish}
	m.containers = map[string]*container{id: own}
	// Writes to a closed stdout or stderr fail with EPIPE for the
	// container instead of ending the monitor.
	signal.Ignore(syscall.SIGPIPE)
	m.forwardSignals()
	go m.accept(l)
	if _, err := io.WriteString(ready, "ok"); err != nil {
		return 0, err
	}
	ready.Close()
	code := <-m.exit
	l.Close()
	os.Remove(filepath.Join(rt.stateDir(id), socketFile))
	return code, nil
}

// finish ends the monitor with code, once.
func (m *monitor) finish(code int) {
	m.exitOnce.Do(func() { m.exit <- code })
}

// end records that c stopped with code, once. A container that joined
// the pod takes its remaining processes with it, as its own pid namespace
// would under runc, and leaves the sandbox's file system tree.
func (m *monitor) end(c *container, code int) {
	c.endOnce.Do(func() {
		m.mu.Lock()
		c.status = statusStopped
		if c.root != "" {
			delete(m.containers, c.id)
		}
		m.mu.Unlock()
		if c.root != "" {
			// Before the waiter reports the end: the shim unmounts the
			// root file system then, which must not be busy.
			m.sb.KillRoot(c.root)
			m.sb.Unmount(c.root)
		}
		c.stopped(code)
	})
}

// lookup finds the container a request names: the monitor's own when it
// names none.
func (m *monitor) lookup(id string) (*container, error) {
	if id == "" {
		id = m.id
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s is not in the pod sandbox %s", id, m.id)
	}
	return c, nil
}

// forwardedSignals are passed to the container's process when the
// monitor receives them, as they would reach runc's container process
// through its pid.
var forwardedSignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

func (m *monitor) forwardSignals() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, forwardedSignals...)
	go func() {
		for sig := range ch {
			if own, err := m.lookup(m.id); err == nil {
				m.kill(own, sig.(syscall.Signal), false)
			}
		}
	}()
}

func (m *monitor) accept(l *net.UnixListener) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		go m.serve(&conn{c})
	}
}

// serve answers one connection's request.
func (m *monitor) serve(c *conn) {
	var req request
	files, err := c.receive(&req)
	if err != nil {
		c.Close()
		return
	}
	switch req.Op {
	case opExec:
		m.exec(c, req, files)
		return
	case opJoin:
		m.join(c, req, files)
		return
	}
	defer c.Close()
	closeAll(files)
	var r reply
	ct, err := m.lookup(req.Container)
	switch {
	case err != nil:
	case req.Op == opStatus:
		m.mu.Lock()
		r.Status = ct.status
		if ct.status != statusStopped && m.sb.Paused() {
			r.Status = statusPaused
		}
		m.mu.Unlock()
	case req.Op == opPause:
		err = m.pause(ct)
	case req.Op == opResume:
		err = m.resume(ct)
	case req.Op == opUpdate:
		err = m.update(ct, req.Resources)
	case req.Op == opStats:
		r.Stats = m.stats()
	case req.Op == opStart:
		err = m.start(ct)
	case req.Op == opKill:
		err = m.kill(ct, syscall.Signal(req.Signal), req.All)
	case req.Op == opPs:
		r.Pids = m.pids(ct)
	default:
		err = fmt.Errorf("unknown request %q", req.Op)
	}
	if err != nil {
		r.Error = err.Error()
	}
	c.send(r)
}

// command makes a kvmbox command for a planned process of ct.
func (m *monitor) command(ct *container, pp procPlan) *kvmbox.Cmd {
	cmd := m.sb.Command(context.Background(), pp.path)
	cmd.Args, cmd.Env, cmd.Dir = pp.args, pp.env, pp.dir
	cmd.InSandbox, cmd.Root = true, ct.root
	cmd.UID, cmd.GID, cmd.Groups = pp.uid, pp.gid, pp.groups
	cmd.NoNewPrivs = pp.noNewPrivs
	cmd.Limits = pp.limits
	cmd.Capabilities = pp.caps
	return cmd
}

// start runs the container's process with its standard streams. A
// container that joined the pod starts once the pause container runs: the
// sandbox's first process is its init.
func (m *monitor) start(ct *container) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ct.status != statusCreated {
		return fmt.Errorf("cannot start a container that is %s", ct.status)
	}
	if own := m.containers[m.id]; ct != own && own.status != statusRunning {
		return fmt.Errorf("the pod sandbox %s is %s, not running", m.id, own.status)
	}
	cmd := m.command(ct, ct.plan.process)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ct.stdio[0], ct.stdio[1], ct.stdio[2]
	p, err := cmd.Start()
	if err != nil {
		ct.status = statusStopped
		go m.end(ct, 127)
		return err
	}
	ct.init, ct.status = p, statusRunning
	go func() {
		m.end(ct, exitCode(p.Wait()))
	}()
	return nil
}

// exitCode is how a process's end is reported: its exit status, or 128+N
// when signal N ended it.
func exitCode(s *kvmbox.ProcessState) int {
	if sig := s.Signal(); sig != 0 {
		return 128 + int(sig)
	}
	return s.ExitCode()
}

// kill signals the container's process, or with all every process in the
// container: the whole sandbox's for the monitor's own (the pod's
// containers share its pid namespace), those under its root for one that
// joined the pod. A container not started yet ends unless the signal is
// one a process ignores by default.
func (m *monitor) kill(ct *container, sig syscall.Signal, all bool) error {
	m.mu.Lock()
	status, init := ct.status, ct.init
	m.mu.Unlock()
	switch {
	case status == statusCreated:
		switch sig {
		case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH, unix.SIGCONT:
		default:
			go m.end(ct, 128+int(sig))
		}
		return nil
	case status != statusRunning:
		return errors.New("container not running")
	case all && ct.root != "":
		return m.sb.SignalRoot(ct.root, sig)
	case all:
		return m.sb.Signal(sig)
	}
	return init.Signal(sig)
}

// pids are the host processes that stand for the container's: the
// monitor or the waiter of a container that joined the pod, and the exec
// commands waiting on processes in it.
func (m *monitor) pids(ct *container) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	pids := []int{ct.pid}
	for _, pid := range ct.execs {
		pids = append(pids, pid)
	}
	return pids
}

// exec runs another process in the container with the three descriptors
// sent with the request as its standard streams. The connection stays
// open while it runs: signal requests on it reach the process, its end
// is the last reply, and a connection closed early kills the process.
func (m *monitor) exec(c *conn, req request, files []*os.File) {
	defer c.Close()
	defer closeAll(files)
	fail := func(err error) { c.send(reply{Error: err.Error()}) }
	if len(files) != 3 || req.Process == nil {
		fail(errors.New("exec needs a process and three descriptors"))
		return
	}
	ct, err := m.lookup(req.Container)
	if err != nil {
		fail(errors.New("cannot exec in a stopped container"))
		return
	}
	pp, _, err := planProcess("process", req.Process, ct.rootfs)
	if err != nil {
		fail(err)
		return
	}
	m.mu.Lock()
	if ct.status == statusStopped {
		m.mu.Unlock()
		fail(errors.New("cannot exec in a stopped container"))
		return
	}
	if m.sb.Paused() {
		m.mu.Unlock()
		fail(errors.New("cannot exec in a paused container"))
		return
	}
	cmd := m.command(ct, pp)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], files[2]
	p, err := cmd.Start()
	if err != nil {
		m.mu.Unlock()
		fail(err)
		return
	}
	ct.execs[c] = peerPid(c)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(ct.execs, c)
		m.mu.Unlock()
	}()
	if err := c.send(reply{}); err != nil {
		p.Kill()
	}
	go func() {
		for {
			var r request
			if _, err := c.receive(&r); err != nil {
				p.Kill()
				return
			}
			if r.Op == opSignal {
				p.Signal(syscall.Signal(r.Signal))
			}
		}
	}()
	s := p.Wait()
	c.send(reply{Exited: true, ExitCode: s.ExitCode(), Signal: int(s.Signal())})
}

// peerPid is the host pid of the process at a connection's other end.
func peerPid(c *conn) int {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var pid int
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}
