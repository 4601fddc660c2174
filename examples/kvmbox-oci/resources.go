package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Defaults of kvmbox.Config that a container's stats report as its
// limits when its configuration sets none.
const (
	defaultMemoryLimit = 1 << 30
	defaultMaxTasks    = 1024
)

// errNotRunning and errNotPaused are runc's errors for pause and resume
// of a container in the wrong state.
var (
	errNotRunning = errors.New("container not running")
	errNotPaused  = errors.New("container not paused")
)

// sandboxStats is what the monitor reports for events.
type sandboxStats struct {
	MemoryUsage uint64 `json:"memoryUsage"`
	MemoryLimit uint64 `json:"memoryLimit"`
	Tasks       int    `json:"tasks"`
	MaxTasks    int    `json:"maxTasks"`
	// CPUUser and CPUKernel are the monitor's CPU time in nanoseconds,
	// its vCPU threads' included.
	CPUUser   uint64 `json:"cpuUser"`
	CPUKernel uint64 `json:"cpuKernel"`
}

// pause freezes the sandbox, as runc freezes the container's cgroup: a
// created or running container may be paused. A pod's containers share
// one sandbox, so one of them cannot be paused alone.
func (m *monitor) pause(ct *container) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ct.status == statusStopped || m.sb.Paused() {
		return errNotRunning
	}
	if ct.root != "" || len(m.containers) > 1 {
		return fmt.Errorf("cannot pause %s: the containers of the pod sandbox %s share it, and one cannot be paused alone", ct.id, m.id)
	}
	return m.sb.Pause()
}

func (m *monitor) resume(ct *container) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ct.status == statusStopped || ct.root != "" || !m.sb.Paused() {
		return errNotPaused
	}
	return m.sb.Resume()
}

// update applies what of r a running sandbox can change: pids.limit.
// memory.limit cannot change after boot, so one other than the
// sandbox's is refused; the rest is checked as create checks it.
func (m *monitor) update(ct *container, r *specs.LinuxResources) error {
	if r == nil {
		return errors.New("update needs resources")
	}
	dropUnchanged(r)
	var asked plan
	if err := asked.addResources(r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ct.status == statusStopped {
		return errNotRunning
	}
	if asked.sandbox.Memory != 0 && asked.sandbox.Memory != m.memoryLimit {
		return refuse("linux.resources.memory.limit", "kvmbox cannot change a running sandbox's memory (%d bytes)", m.memoryLimit)
	}
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	if ct.root != "" {
		return refuse("linux.resources.pids.limit", "the containers of the pod sandbox %s share its limit, which its own container's update changes", m.id)
	}
	// As at create, no limit (-1) is kvmbox's default.
	m.maxTasks = defaultMaxTasks
	if asked.sandbox.MaxTasks > 0 {
		m.maxTasks = asked.sandbox.MaxTasks
	}
	m.sb.SetMaxTasks(m.maxTasks)
	return nil
}

// dropUnchanged clears the memory, CPU and pids values that are zero:
// runc's update leaves those unchanged, and Docker sends every one,
// zero when not asked for.
func dropUnchanged(r *specs.LinuxResources) {
	zeroToNil := func(v **int64) {
		if *v != nil && **v == 0 {
			*v = nil
		}
	}
	zeroToNilU := func(v **uint64) {
		if *v != nil && **v == 0 {
			*v = nil
		}
	}
	if m := r.Memory; m != nil {
		for _, v := range []**int64{&m.Limit, &m.Reservation, &m.Swap, &m.Kernel, &m.KernelTCP} {
			zeroToNil(v)
		}
		zeroToNilU(&m.Swappiness)
	}
	if c := r.CPU; c != nil {
		for _, v := range []**int64{&c.Quota, &c.RealtimeRuntime, &c.Idle} {
			zeroToNil(v)
		}
		for _, v := range []**uint64{&c.Shares, &c.Period, &c.RealtimePeriod, &c.Burst} {
			zeroToNilU(v)
		}
	}
	if p := r.Pids; p != nil {
		zeroToNil(&p.Limit)
	}
}

// stats counts the sandbox's memory, threads and the monitor's CPU time.
func (m *monitor) stats() *sandboxStats {
	s := m.sb.Stats()
	m.mu.Lock()
	out := &sandboxStats{MemoryUsage: s.GuestResidentBytes, MemoryLimit: m.memoryLimit, Tasks: s.Tasks, MaxTasks: m.maxTasks}
	m.mu.Unlock()
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		out.CPUUser = uint64(ru.Utime.Nano())
		out.CPUKernel = uint64(ru.Stime.Nano())
	}
	return out
}

func (rt *runtime) pause(args []string, _ io.Writer) error {
	return rt.simpleRequest("pause", opPause, args)
}

func (rt *runtime) resume(args []string, _ io.Writer) error {
	return rt.simpleRequest("resume", opResume, args)
}

// simpleRequest sends the container's monitor a request without
// arguments; a stopped container has no monitor to answer.
func (rt *runtime) simpleRequest(name, op string, args []string) error {
	id, _, err := parseWithID(rt.commandFlags(name), args)
	if err != nil {
		return err
	}
	if _, err := rt.loadState(id); err != nil {
		return err
	}
	if rt.status(id) == statusStopped {
		if op == opResume {
			return errNotPaused
		}
		return errNotRunning
	}
	_, err = rt.ask(id, request{Op: op})
	return err
}

// update takes runc's flags: --resources (-r) FILE, "-" for stdin, with
// a linux.resources document, or --memory and --pids-limit. runc's other
// flags are accepted and have no effect, as those resources have none at
// create.
func (rt *runtime) update(args []string, _ io.Writer) error {
	fs := rt.commandFlags("update")
	resources := stringFlag(fs, "resources", "r", "", "read linux.resources from `FILE` (- for stdin)")
	memory := fs.String("memory", "", "the memory limit in bytes (k, m or g suffix; -1 for none): must be the sandbox's")
	pidsLimit := fs.Int64("pids-limit", 0, "the most threads the sandbox may have (-1 for kvmbox's default)")
	for _, name := range []string{"blkio-weight", "cpu-period", "cpu-quota", "cpu-rt-period", "cpu-rt-runtime",
		"cpu-share", "cpuset-cpus", "cpuset-mems", "kernel-memory", "kernel-memory-tcp", "memory-reservation",
		"memory-swap", "cpu-idle", "l3-cache-schema", "mem-bw-schema"} {
		fs.String(name, "", "accepted for runc compatibility; no effect")
	}
	id, _, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	var r specs.LinuxResources
	if *resources != "" {
		in := os.Stdin
		if *resources != "-" {
			if in, err = os.Open(*resources); err != nil {
				return err
			}
			defer in.Close()
		}
		data, err := io.ReadAll(io.LimitReader(in, maxConfigSize+1))
		if err != nil {
			return err
		}
		if len(data) > maxConfigSize {
			return fmt.Errorf("--resources: more than %d bytes", maxConfigSize)
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("--resources: %w", err)
		}
	} else {
		if *memory != "" {
			limit := int64(-1)
			if *memory != "-1" {
				if limit, err = parseSize(*memory); err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
			}
			r.Memory = &specs.LinuxMemory{Limit: &limit}
		}
		if *pidsLimit != 0 {
			r.Pids = &specs.LinuxPids{Limit: pidsLimit}
		}
	}
	if _, err := rt.loadState(id); err != nil {
		return err
	}
	if rt.status(id) == statusStopped {
		return errNotRunning
	}
	_, err = rt.ask(id, request{Op: opUpdate, Resources: &r})
	return err
}

// The event runc's events command prints, with the stats kvmbox has.
type event struct {
	Type string     `json:"type"`
	ID   string     `json:"id"`
	Data *statsData `json:"data,omitempty"`
}

type statsData struct {
	CPU    cpuStats    `json:"cpu"`
	Memory memoryStats `json:"memory"`
	Pids   pidsStats   `json:"pids"`
}

type cpuStats struct {
	Usage cpuUsage `json:"usage"`
}

type cpuUsage struct {
	Total  uint64 `json:"total,omitempty"`
	Kernel uint64 `json:"kernel"`
	User   uint64 `json:"user"`
}

type memoryStats struct {
	Usage memoryEntry `json:"usage"`
}

type memoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type pidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// events prints the container's stats as runc does: once with --stats,
// else every --interval until the container stops.
func (rt *runtime) events(args []string, stdout io.Writer) error {
	fs := rt.commandFlags("events")
	once := fs.Bool("stats", false, "print the container's stats once and exit")
	interval := fs.Duration("interval", 5*time.Second, "how often to print stats")
	id, _, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval %v: must be positive", *interval)
	}
	if _, err := rt.loadState(id); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for first := true; ; first = false {
		r, err := rt.ask(id, request{Op: opStats})
		switch {
		case err != nil && first:
			return fmt.Errorf("container with id %s is not running", id)
		case err != nil:
			return nil
		}
		if err := enc.Encode(statsEvent(id, r.Stats)); err != nil {
			return err
		}
		if *once {
			return nil
		}
		time.Sleep(*interval)
	}
}

func statsEvent(id string, s *sandboxStats) event {
	e := event{Type: "stats", ID: id, Data: &statsData{}}
	if s == nil {
		return e
	}
	e.Data.CPU.Usage = cpuUsage{Total: s.CPUUser + s.CPUKernel, Kernel: s.CPUKernel, User: s.CPUUser}
	e.Data.Memory.Usage = memoryEntry{Limit: s.MemoryLimit, Usage: s.MemoryUsage}
	e.Data.Pids = pidsStats{Current: uint64(s.Tasks), Limit: uint64(s.MaxTasks)}
	return e
}
