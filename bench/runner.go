package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/kvmbox/kvmbox"
)

// Runtime names, the columns of a Report. gVisor's are "gVisor " and the
// platform.
const (
	Native         = "native"
	KvmboxExitPath = "kvmbox exit path"
	KvmboxExitless = "kvmbox exitless"
)

// runner runs host executables: natively, in a kvmbox sandbox, or in
// gVisor.
type runner interface {
	name() string
	// start starts exe with args, its stdin read from stdin (empty when
	// nil) and its stdout written to stdout.
	start(exe string, args []string, stdin io.Reader, stdout io.Writer) (process, error)
	// filesDir is where the programs see the harness's files directory.
	filesDir() string
	// memDir is a directory in an in-memory file system the programs may
	// write to: a tmpfs under /dev/shm natively, the sandbox's /tmp.
	memDir() string
}

type process interface {
	// wait waits for the program; it fails unless the program exited 0.
	wait() error
}

type nativeRunner struct{ files, shm string }

func (nativeRunner) name() string { return Native }

func (r nativeRunner) filesDir() string { return r.files }

func (r nativeRunner) memDir() string { return r.shm }

func (nativeRunner) start(exe string, args []string, stdin io.Reader, stdout io.Writer) (process, error) {
	return startCmd(exec.Command(exe, args...), stdin, stdout)
}

// cmdProcess is a host process; ctx, when set, bounds it.
type cmdProcess struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	ctx    context.Context
	cancel context.CancelFunc
}

func startCmd(cmd *exec.Cmd, stdin io.Reader, stdout io.Writer) (*cmdProcess, error) {
	p := &cmdProcess{cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, p.stderr
	return p, cmd.Start()
}

func (p *cmdProcess) wait() error {
	err := p.cmd.Wait()
	if p.ctx != nil {
		timedOut := errors.Is(p.ctx.Err(), context.DeadlineExceeded)
		p.cancel()
		if timedOut {
			return fmt.Errorf("%s: timed out", p.cmd.Args[0])
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", p.cmd.Args[0], err, strings.TrimSpace(p.stderr.String()))
	}
	return nil
}

// kvmboxRunner boots a sandbox for each program, with the files directory
// mounted at /data.
type kvmboxRunner struct {
	exitPath bool
	files    string
	// memory is the sandbox's memory limit; 256 MiB when zero.
	memory uint64
}

func (r kvmboxRunner) name() string {
	if r.exitPath {
		return KvmboxExitPath
	}
	return KvmboxExitless
}

func (kvmboxRunner) filesDir() string { return "/data" }

func (kvmboxRunner) memDir() string { return "/tmp" }

// sandboxProcess is a program in its own sandbox; stats holds the
// sandbox's counters once wait returns.
type sandboxProcess struct {
	sb     *kvmbox.Sandbox
	p      *kvmbox.Process
	stderr *bytes.Buffer
	stats  kvmbox.Stats
}

func (r kvmboxRunner) start(exe string, args []string, stdin io.Reader, stdout io.Writer) (process, error) {
	memory := r.memory
	if memory == 0 {
		memory = 256 << 20
	}
	sb, err := kvmbox.New(kvmbox.Config{
		Memory:       memory,
		ExitPathOnly: r.exitPath,
		Mounts:       []kvmbox.Mount{{Source: r.files, Target: "/data"}},
	})
	if err != nil {
		return nil, err
	}
	sp := &sandboxProcess{sb: sb, stderr: new(bytes.Buffer)}
	cmd := sb.Command(context.Background(), exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, sp.stderr
	if sp.p, err = cmd.Start(); err != nil {
		return nil, errors.Join(err, sb.Close())
	}
	return sp, nil
}

func (p *sandboxProcess) wait() error {
	state := p.p.Wait()
	p.stats = p.sb.Stats()
	if err := p.sb.Close(); err != nil {
		return err
	}
	if !state.Success() {
		return fmt.Errorf("%v: %s", state, strings.TrimSpace(p.stderr.String()))
	}
	return nil
}

// gvisorRunner runs each program with `runsc do` on one platform. gVisor
// sees the host's root file system, so host paths work unchanged.
type gvisorRunner struct {
	platform string
	// network is runsc's --network: none, or sandbox for the network
	// workloads where it works.
	network string
	files   string
	// timeout bounds each program, so that a platform that hangs cannot
	// hang the harness.
	timeout time.Duration
}

func (r gvisorRunner) name() string { return "gVisor " + r.platform }

func (r gvisorRunner) filesDir() string { return r.files }

// memDir is gVisor's own /tmp, an in-memory file system with `runsc do`.
func (gvisorRunner) memDir() string { return "/tmp" }

func (r gvisorRunner) start(exe string, args []string, stdin io.Reader, stdout io.Writer) (process, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	// --ignore-cgroups: the workloads set no limits, and where no cgroup
	// hierarchy is mounted (the kvm-in-qemu guest) runsc would refuse to
	// start.
	cmd := exec.CommandContext(ctx, "runsc", append([]string{"--rootless=false", "--ignore-cgroups", "--network=" + r.network, "--platform=" + r.platform, "do", exe}, args...)...)
	// The sandbox and gofer may hold the output pipes after runsc is
	// killed; stop waiting for them soon after.
	cmd.WaitDelay = time.Second
	p, err := startCmd(cmd, stdin, stdout)
	if err != nil {
		cancel()
		return nil, err
	}
	p.ctx, p.cancel = ctx, cancel
	return p, nil
}

// probeGVisor returns a runner for platform if a program runs there
// within 15 seconds.
func probeGVisor(platform, files, hello string) (runner, error) {
	r := gvisorRunner{platform: platform, network: "none", files: files, timeout: 15 * time.Second}
	if err := probeHello(r, hello); err != nil {
		return nil, err
	}
	r.timeout = 10 * time.Minute
	return r, nil
}

// probeHello runs hello in r and says why it did not print hello.
func probeHello(r runner, hello string) error {
	out, _, err := run(r, hello)
	if err != nil {
		lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
		return errors.New(lines[len(lines)-1])
	}
	if string(out) != "hello\n" {
		return fmt.Errorf("hello wrote %q", out)
	}
	return nil
}

// withSandboxNetwork returns g with runsc's own network stack and a
// network interface (--network=sandbox) if a program runs so, and g as
// it is, with the reason, if not. Its loopback is the same with
// --network=none.
func withSandboxNetwork(g gvisorRunner, hello string) (gvisorRunner, error) {
	n := g
	n.network = "sandbox"
	timeout := n.timeout
	n.timeout = 15 * time.Second
	if err := probeHello(n, hello); err != nil {
		return g, err
	}
	n.timeout = timeout
	return n, nil
}

// gvisorRunners returns a runner for each gVisor platform that works, and
// the reasons the others do not.
func gvisorRunners(files, hello string) ([]runner, []Unavailable) {
	if _, err := exec.LookPath("runsc"); err != nil {
		return nil, []Unavailable{{"gVisor", "runsc is not on PATH"}}
	}
	var runners []runner
	var unavailable []Unavailable
	for _, platform := range []string{"ptrace", "systrap", "kvm"} {
		r, err := probeGVisor(platform, files, hello)
		if err != nil {
			unavailable = append(unavailable, Unavailable{"gVisor " + platform, err.Error()})
			continue
		}
		runners = append(runners, r)
	}
	return runners, unavailable
}

// run runs exe to completion in rt and returns its stdout.
func run(rt runner, exe string, args ...string) ([]byte, process, error) {
	var out bytes.Buffer
	p, err := rt.start(exe, args, nil, &out)
	if err != nil {
		return nil, nil, err
	}
	if err := p.wait(); err != nil {
		return nil, nil, err
	}
	return out.Bytes(), p, nil
}
