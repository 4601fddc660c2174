// Command sandbox-exec runs a Linux x86-64 program inside a kvmbox
// sandbox:
//
//	sandbox-exec [flags] -- PROGRAM [ARGS...]
//
// Standard streams pass through, and the program's exit status becomes
// sandbox-exec's (128+N when signal N ended it, as a shell reports it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kvmbox/kvmbox"
)

const usage = `usage: sandbox-exec [flags] -- PROGRAM [ARGS...]

Runs PROGRAM, a Linux x86-64 executable found on the host (a name without a
slash is looked up in $PATH, or with --userland in the program's PATH),
inside a KVM virtual machine whose kernel is kvmbox's. A dynamically linked
program needs its interpreter and libraries visible: --userland shows the
host's /usr, /bin, /sbin, /lib* and /etc read-only (and not /root, /home or
/var), so that bash, python3 or coreutils run as natively. Its standard
streams are sandbox-exec's; its exit status is sandbox-exec's (128+N if
signal N ended it).

The program sees an empty environment apart from PATH and HOME, and --env.
Its file system is an empty in-memory root (or, with --root, a host directory
it can read but not change) with /proc, /dev, /dev/shm and /tmp, plus what
--userland, --mount and --tmpfs add, and the program itself at its host
path, read-only; nothing else of the host is visible.

Its network is its own loopback. -p publishes a port of it on the host, as
docker run -p does: the program then has eth0, 10.0.2.15, and sees clients
on the host's loopback (and IPv6 clients) as 10.0.2.2, others as themselves.
Each --allow rule opens destinations on the host's network to it (10.0.2.2
is the host's loopback, which only a rule for 127.0.0.1 opens), and names it
may resolve through the resolver at 10.0.2.3; everything else is refused.

Flags:
`

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }

func (e *envFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

type mountFlags []kvmbox.Mount

func (m *mountFlags) String() string { return fmt.Sprint(*m) }

// Set parses HOST:GUEST[:ro|rw].
func (m *mountFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
		return fmt.Errorf("%q is not HOST:GUEST[:ro|rw] with an absolute GUEST", v)
	}
	mount := kvmbox.Mount{Source: parts[0], Target: parts[1], ReadOnly: true}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
		case "rw":
			mount.ReadOnly = false
		default:
			return fmt.Errorf("%q: mode must be ro or rw", v)
		}
	}
	*m = append(*m, mount)
	return nil
}

type allowFlags []kvmbox.AllowRule

func (a *allowFlags) String() string { return fmt.Sprint(*a) }

// Set parses a rule as kvmbox.ParseAllowRule does.
func (a *allowFlags) Set(v string) error {
	r, err := kvmbox.ParseAllowRule(v)
	if err != nil {
		return err
	}
	*a = append(*a, r)
	return nil
}

type tmpfsFlags []kvmbox.Tmpfs

type publishFlags []kvmbox.PublishedPort

func (p *publishFlags) String() string { return fmt.Sprint(*p) }

// Set parses docker run -p's [HOSTADDR:]HOSTPORT:PORT[/tcp|/udp].
func (p *publishFlags) Set(v string) error {
	port, err := kvmbox.ParsePublishedPort(v)
	if err != nil {
		return err
	}
	*p = append(*p, port)
	return nil
}

func (t *tmpfsFlags) String() string { return fmt.Sprint(*t) }

// Set parses GUEST[:SIZE].
func (t *tmpfsFlags) Set(v string) error {
	target, size, _ := strings.Cut(v, ":")
	if !strings.HasPrefix(target, "/") {
		return fmt.Errorf("%q is not an absolute path", target)
	}
	fs := kvmbox.Tmpfs{Target: target}
	if size != "" {
		n, err := parseSize(size)
		if err != nil {
			return err
		}
		fs.Size = int64(n)
	}
	*t = append(*t, fs)
	return nil
}

// parseSize reads sizes like 512m, 2g, 1048576.
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox-exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var env envFlags
	fs.Var(&env, "env", "set `KEY=VALUE` in the program's environment (repeatable)")
	mem := fs.String("mem", "1g", "guest memory limit (`SIZE`: bytes, or with k, m, g)")
	timeout := fs.Duration("timeout", 0, "kill the program after `DURATION` (e.g. 30s); 0 means never")
	strace := fs.Bool("strace", false, "print each system call, its arguments and result on stderr")
	debug := fs.Bool("debug", false, "on a crash, print the faulting address, decoded instruction and registers; report unsupported system calls")
	hostname := fs.String("hostname", "sandbox", "the host name the program sees")
	var mounts mountFlags
	fs.Var(&mounts, "mount", "mount host directory HOST at GUEST, read-only unless `HOST:GUEST[:ro|rw]` says rw (repeatable)")
	var tmpfss tmpfsFlags
	fs.Var(&tmpfss, "tmpfs", "mount an in-memory file system at `GUEST[:SIZE]` (repeatable)")
	var allow allowFlags
	fs.Var(&allow, "allow", "let the program reach `RULE`: ADDRESS[/BITS][:PORT[-PORT]][/tcp|/udp] or HOST[:PORT[-PORT]][/tcp|/udp] (repeatable); any --allow gives it eth0 and DNS")
	workdir := fs.String("workdir", "/", "the program's working `DIR` inside the sandbox")
	root := fs.String("root", "", "show host `DIR` as the root file system; writes go to memory, never to DIR")
	userland := fs.Bool("userland", false, "show the host's programs, libraries and configuration read-only (/usr, /bin, /sbin, /lib*, /etc); not /root, /home, /var")
	var publish publishFlags
	publishUsage := "publish the sandbox's PORT on the host as docker run -p does: `[HOSTADDR:]HOSTPORT:PORT[/tcp|/udp]` (repeatable; HOSTPORT 0 takes a free port, printed on stderr)"
	fs.Var(&publish, "p", publishUsage)
	fs.Var(&publish, "publish", publishUsage)
	pids := fs.Int("pids", 1024, "the most threads and processes the sandbox may hold at once (`N`); fork fails with EAGAIN past it")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	memBytes, err := parseSize(*mem)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox-exec: --mem: %v\n", err)
		return 2
	}
	programEnv := append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/"}, env...)
	var path string
	if *userland {
		// The program's PATH names the host's own directories, which
		// --userland shows: find the program where it will look.
		path, err = lookPath(fs.Arg(0), envValue(programEnv, "PATH"))
	} else {
		path, err = exec.LookPath(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(stderr, "sandbox-exec: %v\n", err)
		return 127
	}
	if *pids < 1 {
		fmt.Fprintf(stderr, "sandbox-exec: --pids must be at least 1\n")
		return 2
	}
	cfg := kvmbox.Config{Memory: memBytes, Hostname: *hostname, Root: *root, HostUserland: *userland, Mounts: mounts, Tmpfs: tmpfss, MaxTasks: *pids, Publish: publish}
	if len(allow) > 0 {
		cfg.Outbound = &kvmbox.OutboundPolicy{Allow: allow}
	}
	if *strace {
		cfg.Strace = stderr
	}
	if *debug {
		cfg.Debug = stderr
	}
	sb, err := kvmbox.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox-exec: %v\n", err)
		return 125
	}
	defer sb.Close()
	for i, addr := range sb.PublishedAddrs() {
		if publish[i].HostPort == 0 {
			fmt.Fprintf(stderr, "sandbox-exec: published %s on %s\n", publish[i], addr)
		}
	}

	ctx := context.Background()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	cmd := sb.Command(ctx, path, fs.Args()[1:]...)
	cmd.Args[0] = fs.Arg(0)
	cmd.Dir = *workdir
	cmd.Env = programEnv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	p, err := cmd.Start()
	if err != nil {
		fmt.Fprintf(stderr, "sandbox-exec: %v\n", err)
		return 126
	}
	stop := forwardSignals(p)
	state := p.Wait()
	stop()
	if sig := state.Signal(); sig != 0 {
		if ctx.Err() == context.DeadlineExceeded {
			fmt.Fprintf(stderr, "sandbox-exec: killed after the %v timeout\n", *timeout)
		} else if !*debug {
			fmt.Fprintf(stderr, "sandbox-exec: program killed by %v (--debug shows where)\n", sig)
		}
		return 128 + int(sig)
	}
	return state.ExitCode()
}

// envValue returns the last value env gives key, as getenv in the program
// sees it.
func envValue(env []string, key string) string {
	value := ""
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			value = v
		}
	}
	return value
}

// lookPath finds an executable named name in the directories of pathList,
// as a shell would; a name with a slash is used as it is.
func lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return exec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue
		}
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in the program's PATH %s", name, pathList)
}

// forwardSignals passes the signals a user sends sandbox-exec (Ctrl-C,
// kill) to the sandboxed program, until stop is called.
func forwardSignals(p *kvmbox.Process) (stop func()) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				p.Signal(sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
