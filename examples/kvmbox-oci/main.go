// Command kvmbox-oci is an OCI runtime: the command line of runc, so that
// containerd's runc shim, Docker and Kubernetes (through a RuntimeClass)
// run containers in kvmbox sandboxes.
//
//	kvmbox-oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND [FLAGS] ID
//
// Each container is one kvmbox sandbox held by a monitor process (this
// binary again), whose pid is the one create writes to --pid-file: it
// exits with the container's status, 128+N when signal N ended it.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const usage = `usage: kvmbox-oci [global flags] COMMAND [flags] [ID]

An OCI runtime that runs each container in a kvmbox sandbox (a KVM virtual
machine whose kernel is kvmbox's), with runc's command line.

Commands:
  create --bundle DIR [--pid-file FILE] [--console-socket SOCK] ID
  start ID
  run --bundle DIR [--detach] [--pid-file FILE] [--console-socket SOCK] ID
  state ID
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  exec [--process FILE | ID ARGS...] [--detach] [--pid-file FILE] [--tty] [--console-socket SOCK] ID
  ps [--format table|json] ID
  pause ID
  resume ID
  update [--resources FILE | --memory BYTES --pids-limit N] ID
  events [--stats] [--interval DURATION] ID
  list [--format table|json]
  features
  spec [--bundle DIR]

Global flags:
`

// runtime holds the global flags.
type runtime struct {
	root      string
	logPath   string
	logFormat string
	debug     bool
	stderr    io.Writer
	// self is how the monitor and exec waiters run this binary again.
	self string
}

// exitError carries a command's exit status, with nothing left to report.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	rt := &runtime{stderr: stderr}
	fs := flag.NewFlagSet("kvmbox-oci", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&rt.root, "root", "/run/kvmbox-oci", "the `DIR` holding the containers' state")
	fs.StringVar(&rt.logPath, "log", "", "append errors and notes to `FILE`")
	fs.StringVar(&rt.logFormat, "log-format", "text", "the log's format: text or json")
	fs.BoolVar(&rt.debug, "debug", false, "send the sandboxes' crash reports and unsupported system calls to the --log file")
	fs.Bool("systemd-cgroup", false, "accepted for runc compatibility; kvmbox uses no host cgroup")
	fs.String("criu", "", "accepted for runc compatibility; checkpointing is not supported")
	fs.String("rootless", "auto", "accepted for runc compatibility")
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
	if rt.logFormat != "text" && rt.logFormat != "json" {
		fmt.Fprintf(stderr, "kvmbox-oci: --log-format %q: must be text or json\n", rt.logFormat)
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	for _, p := range []*string{&rt.root, &rt.logPath} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			fmt.Fprintf(stderr, "kvmbox-oci: %v\n", err)
			return 1
		}
		*p = abs
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "kvmbox-oci: %v\n", err)
		return 1
	}
	rt.self = self
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	commands := map[string]func([]string, io.Writer) error{
		"create": rt.create, "start": rt.start, "run": rt.runContainer, "state": rt.state,
		"kill": rt.kill, "delete": rt.delete, "exec": rt.exec, "ps": rt.ps, "list": rt.list,
		"features": rt.features, "spec": rt.spec, "pause": rt.pause, "resume": rt.resume,
		"update": rt.update, "events": rt.events,
		monitorCommand: rt.monitor, execWaitCommand: rt.execWait, joinWaitCommand: rt.joinWait,
	}
	f, ok := commands[cmd]
	switch {
	case slices.Contains(unsupportedCommands, cmd):
		rt.errorf("%s is not supported: a kvmbox sandbox cannot be checkpointed yet", cmd)
		return 1
	case !ok:
		rt.errorf("unknown command %q", cmd)
		return 2
	}
	err = f(rest, stdout)
	var exit *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	rt.errorf("%v", err)
	return 1
}

// unsupportedCommands are runc's commands that kvmbox-oci does not have.
var unsupportedCommands = []string{"checkpoint", "restore"}

// errUsage is a command line error whose message flag has printed.
var errUsage = errors.New("usage")

// errorf reports an error on stderr and in the log, as runc does; the
// containerd shim reads the log's last error.
func (rt *runtime) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(rt.stderr, "kvmbox-oci: %s\n", msg)
	rt.logLine("error", msg)
}

// logLine appends one line to the --log file, if there is one.
func (rt *runtime) logLine(level, msg string) {
	if rt.logPath == "" {
		return
	}
	f, err := os.OpenFile(rt.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if rt.logFormat == "json" {
		line, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		f.Write(append(line, '\n'))
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

// commandFlags makes a command's flag set, which reports errors on stderr.
func (rt *runtime) commandFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("kvmbox-oci "+name, flag.ContinueOnError)
	fs.SetOutput(rt.stderr)
	return fs
}

// parseWithID parses a command's flags and returns its container ID
// (checked) and the arguments after it.
func parseWithID(fs *flag.FlagSet, args []string) (string, []string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", nil, err
		}
		return "", nil, errUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(fs.Output(), "%s: a container ID is required\n", fs.Name())
		return "", nil, errUsage
	}
	id := fs.Arg(0)
	if err := checkID(id); err != nil {
		return "", nil, err
	}
	return id, fs.Args()[1:], nil
}

// checkID accepts the IDs runc does: letters, digits and _+-. only, and
// never . or .., so that an ID always names one directory under --root.
func checkID(id string) error {
	if id == "" || id == "." || id == ".." {
		return fmt.Errorf("invalid container ID %q", id)
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+-.", c)
		if !ok {
			return fmt.Errorf("invalid container ID %q: only letters, digits and _+-. may appear", id)
		}
	}
	return nil
}
