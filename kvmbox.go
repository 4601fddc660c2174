// Package kvmbox runs untrusted, unmodified Linux x86-64 programs inside a
// KVM virtual machine, with a Linux-compatible kernel written in Go serving
// every system call they make.
//
//	sb, err := kvmbox.New(kvmbox.Config{})
//	...
//	defer sb.Close()
//	cmd := sb.Command(ctx, "/bin/busybox", "echo", "hello")
//	cmd.Stdout = os.Stdout
//	err = cmd.Run()
package kvmbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/kernel/loader"
	"github.com/kvmbox/kvmbox/kvm"
	"github.com/kvmbox/kvmbox/syscalls"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/hostfs"
	"github.com/kvmbox/kvmbox/vfs/overlay"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
	"golang.org/x/sys/unix"
)

// Config configures a Sandbox.
type Config struct {
	// Memory bounds the guest's memory in bytes; 1 GiB when zero.
	Memory uint64
	// Hostname is what uname reports until a guest's sethostname changes
	// it (inside this sandbox only); "sandbox" when empty.
	Hostname string
	// Strace, when set, receives one line per system call the guest makes.
	Strace io.Writer
	// Debug, when set, receives crash reports (faulting address, decoded
	// instruction, registers), notes about unsupported system calls, and
	// the network flows and DNS queries Outbound refuses.
	Debug io.Writer
	// Root, when set, is a host directory shown as the sandbox's root
	// file system through an overlay: the sandbox reads it, and its
	// writes go to an in-memory layer above it, never to the host. When
	// empty, the root is an empty in-memory file system. /proc, /dev,
	// /dev/shm and /tmp are mounted over either.
	Root string
	// ReadOnlyRoot makes the root file system read-only: writes to it fail
	// with EROFS, while /proc, /dev, /tmp and the mounts keep their modes.
	ReadOnlyRoot bool
	// HostUserland shows the host's installed programs, libraries and
	// configuration, read-only, at their own paths: /usr, /bin, /sbin,
	// /lib, /lib32, /lib64, /libx32 and /etc, those the host has. Where
	// the host links one of them to another (/bin -> usr/bin on a
	// merged-/usr system), the sandbox gets the same symbolic link. Nothing
	// else of the host is shown: not /root, /home, /var, /srv, /opt or
	// /run. With it, the host's dynamically linked programs (bash, python3,
	// coreutils) run as they do natively. /etc is shown whole: a host
	// that keeps secrets there readable by the embedding process
	// (/etc/shadow when it runs as root) shows them too.
	HostUserland bool
	// Mounts are host directories made visible inside the sandbox, in
	// order, over the root (and over HostUserland's directories).
	Mounts []Mount
	// Tmpfs are extra in-memory file systems.
	Tmpfs []Tmpfs
	// ExitPathOnly serves every system call through a VM exit. By default
	// a host worker serves hot, non-blocking system calls while the guest
	// waits, without an exit (the worker polls only while calls arrive).
	ExitPathOnly bool
	// MaxTasks bounds the threads of all the sandbox's processes together:
	// fork and clone fail with EAGAIN past it (a fork bomb stops there).
	// 1024 when zero.
	MaxTasks int
	// Publish are ports of the sandbox reachable from the host (see
	// PublishedPort). They give the sandbox eth0; New fails, naming the
	// mapping, when a host port cannot be listened on.
	Publish []PublishedPort
	// Outbound, when set, lets the sandbox reach what it allows on the
	// host's network, through eth0 (10.0.2.15/24) and the gateway
	// 10.0.2.2, and resolve the names it allows through the resolver at
	// 10.0.2.3, which /etc/resolv.conf names. Refused flows are logged
	// to Debug. Without it the sandbox has loopback only.
	Outbound *OutboundPolicy
}

// Mount makes the host directory Source visible at Target inside the
// sandbox. Symbolic links and ".." inside it cannot reach outside it. A
// regular file may be mounted too, read-only only.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
	// Overlay shows the directory as Config.Root shows the root: writes
	// go to an in-memory layer above it, never to the host.
	Overlay bool
}

// Tmpfs is an in-memory file system at Target, bounded to Size bytes
// (unbounded when 0, within the sandbox's memory).
type Tmpfs struct {
	Target string
	Size   int64
}

// rootFS builds the overlay root over Root, or returns nil for the
// kernel's default empty root.
func (c *Config) rootFS() (vfs.FileSystem, error) {
	if c.Root == "" {
		return nil, nil
	}
	fs, err := overlayOf(c.Root)
	if err != nil {
		return nil, fmt.Errorf("kvmbox: root %s: %w", c.Root, err)
	}
	return fs, nil
}

// overlayOf shows the host directory dir read-only under an in-memory
// layer that takes the writes.
func overlayOf(dir string) (vfs.FileSystem, error) {
	lower, err := hostfs.New(dir, hostfs.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	fs, err := overlay.New(context.Background(), lower, tmpfs.New(tmpfs.Options{}))
	if err != nil {
		lower.Release()
		return nil, err
	}
	return fs, nil
}

// hostUserlandDirs are the host directories HostUserland shows.
var hostUserlandDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

// hostUserland returns the read-only mounts and symbolic links that show
// the host's userland under hostRoot (normally "/") at the same paths in
// the sandbox; a directory the host lacks is skipped.
func hostUserland(hostRoot string) ([]Mount, []kernel.Symlink, error) {
	var mounts []Mount
	var links []kernel.Symlink
	for _, dir := range hostUserlandDirs {
		src := filepath.Join(hostRoot, dir)
		st, err := os.Lstat(src)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("kvmbox: host userland: %w", err)
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return nil, nil, fmt.Errorf("kvmbox: host userland: %w", err)
			}
			links = append(links, kernel.Symlink{Path: dir, Target: target})
		case st.IsDir():
			mounts = append(mounts, Mount{Source: src, Target: dir, ReadOnly: true})
		}
	}
	return mounts, links, nil
}

// mounts turns the configuration into file systems and symbolic links for
// the kernel.
func (c *Config) mounts() ([]kernel.Mount, []kernel.Symlink, error) {
	var out []kernel.Mount
	release := func() {
		for _, m := range out {
			m.FS.Release()
		}
	}
	var links []kernel.Symlink
	var userland []Mount
	if c.HostUserland {
		var err error
		if userland, links, err = hostUserland("/"); err != nil {
			return nil, nil, err
		}
	}
	addHost := func(mounts []Mount) error {
		for _, m := range mounts {
			if !filepath.IsAbs(m.Target) {
				return fmt.Errorf("kvmbox: mount target %q is not absolute", m.Target)
			}
			fs, err := hostMount(m)
			if err != nil {
				return fmt.Errorf("kvmbox: mount %s: %w", m.Source, err)
			}
			out = append(out, kernel.Mount{Target: m.Target, FS: fs, ReadOnly: m.ReadOnly})
		}
		return nil
	}
	if err := addHost(userland); err != nil {
		release()
		return nil, nil, err
	}
	if c.Outbound != nil {
		// Over the host's /etc (or none), before the configured mounts,
		// which may bring a resolv.conf of their own.
		conf, err := tmpfs.NewFile([]byte(resolvConf), 0o644)
		if err != nil {
			release()
			return nil, nil, err
		}
		out = append(out, kernel.Mount{Target: "/etc/resolv.conf", FS: conf, ReadOnly: true})
	}
	if err := addHost(c.Mounts); err != nil {
		release()
		return nil, nil, err
	}
	for _, t := range c.Tmpfs {
		if !filepath.IsAbs(t.Target) || t.Size < 0 {
			release()
			return nil, nil, fmt.Errorf("kvmbox: bad tmpfs %q (size %d)", t.Target, t.Size)
		}
		out = append(out, kernel.Mount{Target: t.Target, FS: tmpfs.New(tmpfs.Options{MaxBytes: t.Size})})
	}
	return out, links, nil
}

// hostMount opens a Mount's source: a directory, or a regular file when
// the mount is read-only.
func hostMount(m Mount) (vfs.FileSystem, error) {
	if m.Overlay {
		return overlayOf(m.Source)
	}
	if st, err := os.Stat(m.Source); err == nil && st.Mode().IsRegular() {
		if !m.ReadOnly {
			return nil, errors.New("a file can only be mounted read-only")
		}
		return hostfs.NewFile(m.Source)
	}
	return hostfs.New(m.Source, hostfs.Options{ReadOnly: m.ReadOnly})
}

// Sandbox is one VM with its own kernel. Programs started in it share
// nothing with the host but what the Sandbox gives them.
type Sandbox struct {
	k      *kernel.Kernel
	closed sync.Once
}

// Available reports whether this host can run sandboxes (/dev/kvm usable).
func Available() error { return kvm.Available() }

// New boots a sandbox.
func New(cfg Config) (*Sandbox, error) {
	network, err := cfg.Outbound.network(cfg.Debug)
	if err != nil {
		return nil, err
	}
	network.Publish = cfg.publishedPorts()
	root, err := cfg.rootFS()
	if err != nil {
		return nil, err
	}
	mounts, links, err := cfg.mounts()
	if err != nil {
		if root != nil {
			root.Release()
		}
		return nil, err
	}
	k, err := kernel.New(kernel.Config{
		Root:         root,
		Mounts:       mounts,
		ReadOnlyRoot: cfg.ReadOnlyRoot,
		Symlinks:     links,
		MemoryLimit:  cfg.Memory,
		Hostname:     cfg.Hostname,
		Syscalls:     syscalls.Dispatcher{},
		Strace:       cfg.Strace,
		Debug:        cfg.Debug,
		ExitPathOnly: cfg.ExitPathOnly,
		MaxTasks:     cfg.MaxTasks,
		Network:      network,
	})
	if err != nil {
		return nil, err
	}
	return &Sandbox{k: k}, nil
}

// Signal sends sig to every process in the sandbox, as kill(-1, sig)
// from outside it would.
func (s *Sandbox) Signal(sig syscall.Signal) error {
	for _, tg := range s.k.Processes() {
		if err := tg.SendSignal(kernel.NewSigInfo(int(sig), kernel.SiUser)); err != nil {
			return err
		}
	}
	return nil
}

// SignalRoot sends sig to every process whose root directory is dir: those
// that a Cmd with Root dir started, and their descendants that have not
// changed root (chroot) since.
func (s *Sandbox) SignalRoot(dir string, sig syscall.Signal) error {
	root, err := s.k.LookupDir(dir)
	if err != nil {
		return fmt.Errorf("kvmbox: %s: %w", dir, err)
	}
	for _, tg := range s.k.Processes() {
		if !tg.RootIs(root) {
			continue
		}
		if err := tg.SendSignal(kernel.NewSigInfo(int(sig), kernel.SiUser)); err != nil {
			return err
		}
	}
	return nil
}

// KillRoot ends every process whose root directory is dir with SIGKILL, as
// SignalRoot would, and returns once they have exited and closed their
// files.
func (s *Sandbox) KillRoot(dir string) error {
	root, err := s.k.LookupDir(dir)
	if err != nil {
		return fmt.Errorf("kvmbox: %s: %w", dir, err)
	}
	// Again until none is left: a process may be forking as it is killed.
	for {
		var killed []*kernel.ThreadGroup
		for _, tg := range s.k.Processes() {
			select {
			case <-tg.Done():
				continue
			default:
			}
			if tg.RootIs(root) {
				tg.Kill(kernel.Killed)
				killed = append(killed, tg)
			}
		}
		if len(killed) == 0 {
			return nil
		}
		for _, tg := range killed {
			<-tg.Done()
		}
	}
}

// Mount mounts a host directory or file in the running sandbox, as
// Config.Mounts does at boot, creating its mount point (and the
// directories above it).
func (s *Sandbox) Mount(m Mount) error {
	if !filepath.IsAbs(m.Target) {
		return fmt.Errorf("kvmbox: mount target %q is not absolute", m.Target)
	}
	fs, err := hostMount(m)
	if err != nil {
		return fmt.Errorf("kvmbox: mount %s: %w", m.Source, err)
	}
	if err := s.k.AddMount(kernel.Mount{Target: m.Target, FS: fs, ReadOnly: m.ReadOnly}); err != nil {
		return fmt.Errorf("kvmbox: mount %s on %s: %w", m.Source, m.Target, err)
	}
	return nil
}

// MountTmpfs mounts an in-memory file system in the running sandbox, as
// Config.Tmpfs does at boot.
func (s *Sandbox) MountTmpfs(t Tmpfs) error {
	if !filepath.IsAbs(t.Target) || t.Size < 0 {
		return fmt.Errorf("kvmbox: bad tmpfs %q (size %d)", t.Target, t.Size)
	}
	if err := s.k.AddMount(kernel.Mount{Target: t.Target, FS: tmpfs.New(tmpfs.Options{MaxBytes: t.Size})}); err != nil {
		return fmt.Errorf("kvmbox: tmpfs on %s: %w", t.Target, err)
	}
	return nil
}

// Bind makes the sandbox's file or directory at source visible at target
// too, with the mounts below it (mount --rbind), creating target (and the
// directories above it).
func (s *Sandbox) Bind(source, target string) error {
	if err := s.k.Bind(source, target); err != nil {
		return fmt.Errorf("kvmbox: bind %s on %s: %w", source, target, err)
	}
	return nil
}

// Unmount removes the mount whose root is at target, and the mounts below
// it, from the sandbox's file system tree, as umount -l does, and lets go
// of the host directories they alone served (so the host may unmount
// them): files open on them keep reading and writing, but paths no longer
// resolve through them.
func (s *Sandbox) Unmount(target string) error {
	if err := s.k.Unmount(target); err != nil {
		return fmt.Errorf("kvmbox: unmount %s: %w", target, err)
	}
	return nil
}

// Remount makes the mount whose root is at target read-only (writes fail
// with EROFS) or read-write.
func (s *Sandbox) Remount(target string, readOnly bool) error {
	if err := s.k.Remount(target, readOnly); err != nil {
		return fmt.Errorf("kvmbox: remount %s: %w", target, err)
	}
	return nil
}

// Kill ends every process in the sandbox with SIGKILL; the sandbox stays
// usable for new commands.
func (s *Sandbox) Kill() {
	for _, tg := range s.k.Processes() {
		tg.Kill(kernel.Killed)
	}
}

// Pause stops every thread in the sandbox from running, as the cgroup
// freezer does, and returns once none runs: a thread in guest code leaves
// it as at an interrupt, and one in a system call finishes it and waits
// before returning. Nothing the guest can see (no signal, no wait status)
// marks the pause; time goes on, so timers expire meanwhile. Threads
// started while paused wait too. SIGKILL (Kill, KillRoot) still ends
// processes. It fails when the sandbox is paused already.
func (s *Sandbox) Pause() error {
	if err := s.k.Freeze(); err != nil {
		return errors.New("kvmbox: sandbox is paused already")
	}
	return nil
}

// Resume lets the threads Pause stopped run again; it fails when the
// sandbox is not paused.
func (s *Sandbox) Resume() error {
	if err := s.k.Thaw(); err != nil {
		return errors.New("kvmbox: sandbox is not paused")
	}
	return nil
}

// Paused reports whether the sandbox is paused.
func (s *Sandbox) Paused() bool { return s.k.Frozen() }

// SetMaxTasks changes Config.MaxTasks of the running sandbox (1024 when
// n is zero or less): fork and clone fail with EAGAIN past it, and
// threads running already beyond a lower bound keep running.
func (s *Sandbox) SetMaxTasks(n int) { s.k.SetMaxTasks(n) }

// Close kills every process in the sandbox and releases its host resources.
func (s *Sandbox) Close() error {
	var err error
	s.closed.Do(func() { err = s.k.Close() })
	return err
}

// Stats counts what a sandbox's guest cost the host.
type Stats struct {
	// VMExits is the number of times a vCPU left the guest (kicks included).
	VMExits uint64
	// Syscalls is the number of system calls served.
	Syscalls uint64
	// GuestResidentBytes is the guest memory backed by host pages now.
	GuestResidentBytes uint64
	// FileBytesCopied counts the bytes of files that exec and mmap copied
	// into guest memory. Files are read through a page cache, so a second
	// exec of an unchanged program copies nothing.
	FileBytesCopied uint64
	// PageCacheHits counts the file pages that exec and mmap found in the
	// page cache instead.
	PageCacheHits uint64
	// PageCacheBytes is the guest memory the page cache holds now. It
	// counts against Config.Memory and is given back when memory runs
	// short.
	PageCacheBytes uint64
	// Tasks is the number of threads of all processes now, counted as
	// MaxTasks counts them.
	Tasks int
}

// Stats returns the sandbox's counters since it booted.
func (s *Sandbox) Stats() Stats {
	k := s.k.Stats()
	return Stats{VMExits: k.VMExits, Syscalls: k.Syscalls, GuestResidentBytes: k.GuestResident,
		FileBytesCopied: k.PageCache.CopiedBytes, PageCacheHits: k.PageCache.HitPages, PageCacheBytes: k.PageCache.CachedBytes,
		Tasks: s.k.TaskCount()}
}

// Cmd is a program to run in a sandbox, like os/exec.Cmd.
type Cmd struct {
	// Path is the host path of a static x86-64 ELF executable.
	Path string
	// Args are the program's arguments, Args[0] included.
	Args []string
	// Env is the program's environment; empty when nil.
	Env []string
	// Dir is the working directory inside the sandbox; "/" when empty.
	Dir string
	// Root, when set, is the program's root directory: a directory in the
	// sandbox, as after chroot(2) to it. Dir, and Path with InSandbox,
	// are paths under it.
	Root string
	// Stdin, Stdout and Stderr are the program's standard streams; nil
	// reads as empty and discards output.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// InSandbox says that Path is an absolute path in the sandbox's own
	// file system (its root and mounts) rather than on the host: Start
	// then never makes a host file visible for the program, and fails as
	// execve would when the sandbox has no such executable.
	InSandbox bool
	// UID, GID and Groups are the user, group and supplementary groups
	// the program runs as inside the sandbox. Root (0), the default, has
	// every capability inside the sandbox; another UID starts with none.
	UID, GID uint32
	Groups   []uint32
	// NoNewPrivs starts the program with PR_SET_NO_NEW_PRIVS set.
	NoNewPrivs bool
	// Capabilities, when set, are the program's capability sets in place
	// of those its UID gives. Its execve as root regains no more than its
	// inheritable and bounding sets.
	Capabilities *Capabilities
	// Limits are resource limits (syscall.RLIMIT_*) the program starts
	// with in place of the defaults.
	Limits map[int]syscall.Rlimit

	ctx     context.Context
	sandbox *Sandbox
	process *Process
}

// Command returns a Cmd that runs path with args in s. Cancelling ctx
// kills the program.
func (s *Sandbox) Command(ctx context.Context, path string, args ...string) *Cmd {
	return &Cmd{Path: path, Args: append([]string{path}, args...), ctx: ctx, sandbox: s}
}

// Start starts the program. A host executable that the sandbox's file
// system does not already hold at the same path is made visible there,
// read-only, for the program (and nothing else of its host directory).
func (c *Cmd) Start() (*Process, error) {
	if c.process != nil {
		return nil, errors.New("kvmbox: Cmd already started")
	}
	path := c.Path
	if c.Root != "" && !c.InSandbox {
		return nil, errors.New("kvmbox: Cmd.Root needs InSandbox: a host executable is not under the root directory")
	}
	if c.InSandbox {
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("kvmbox: %q is not an absolute path in the sandbox", path)
		}
	} else {
		var err error
		if path, err = filepath.Abs(path); err != nil {
			return nil, err
		}
		if err := c.sandbox.k.ExposeHostFile(path); err != nil {
			return nil, fmt.Errorf("kvmbox: %s: %w", c.Path, err)
		}
	}
	var limits map[int]unix.Rlimit
	if len(c.Limits) > 0 {
		limits = make(map[int]unix.Rlimit, len(c.Limits))
		for r, l := range c.Limits {
			limits[r] = unix.Rlimit{Cur: l.Cur, Max: l.Max}
		}
	}
	var user *kernel.User
	if c.UID != 0 || c.GID != 0 || len(c.Groups) > 0 || c.NoNewPrivs || c.Capabilities != nil {
		user = &kernel.User{UID: c.UID, GID: c.GID, Groups: c.Groups, NoNewPrivs: c.NoNewPrivs}
		if cs := c.Capabilities; cs != nil {
			user.Caps = &kernel.CapSets{Effective: cs.Effective, Permitted: cs.Permitted, Inheritable: cs.Inheritable, Bounding: cs.Bounding}
		}
	}
	tg, err := c.sandbox.k.Start(c.ctx, kernel.Program{
		Path: path, Argv: c.Args, Envv: c.Env, Dir: c.Dir, Root: c.Root,
		Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr,
		User: user, Limits: limits,
	})
	var interp *loader.InterpreterError
	if errors.As(err, &interp) && errors.Is(interp.Err, fs.ErrNotExist) {
		return nil, fmt.Errorf("kvmbox: %s is dynamically linked and its interpreter %s is not visible inside the sandbox: "+
			"show the host's programs and libraries read-only (Config.HostUserland; sandbox-exec --userland), "+
			"mount a directory that has it (Config.Mounts; sandbox-exec --mount) or show a root file system "+
			"that has it (Config.Root; sandbox-exec --root): %w", c.Path, interp.Path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("kvmbox: %w", err)
	}
	c.process = &Process{tg: tg}
	return c.process, nil
}

// Run starts the program and waits for it. It returns nil on exit status 0,
// an *ExitError otherwise.
func (c *Cmd) Run() error {
	p, err := c.Start()
	if err != nil {
		return err
	}
	state := p.Wait()
	if state.Success() {
		return nil
	}
	return &ExitError{ProcessState: state}
}

// Capabilities are a program's capability sets, bit n for capability n
// (unix.CAP_*), as capget(2) and /proc/PID/status show them.
type Capabilities struct {
	Effective, Permitted, Inheritable, Bounding uint64
}

// Process is a started program.
type Process struct {
	tg *kernel.ThreadGroup
}

// Pid is the process id inside the sandbox.
func (p *Process) Pid() int { return int(p.tg.PID()) }

// Kill ends the process with SIGKILL.
func (p *Process) Kill() { p.tg.Kill(kernel.Killed) }

// Signal sends sig to the process, as kill(2) from outside the sandbox
// would: its handler runs, or its default action (ending, stopping,
// continuing the process) applies. It fails for an invalid signal.
func (p *Process) Signal(sig syscall.Signal) error {
	info := kernel.NewSigInfo(int(sig), kernel.SiUser)
	return p.tg.SendSignal(info)
}

// Wait waits for the process to exit and returns how it ended.
func (p *Process) Wait() *ProcessState {
	<-p.tg.Done()
	s := p.tg.Status()
	return &ProcessState{code: s.Code, signal: syscall.Signal(s.Signal), crash: s.Err}
}

// ProcessState is how a process ended.
type ProcessState struct {
	code   int
	signal syscall.Signal
	crash  error
}

// ExitCode is the exit status, or -1 if a signal ended the process.
func (s *ProcessState) ExitCode() int {
	if s.signal != 0 {
		return -1
	}
	return s.code
}

// Signal is the signal that ended the process, or 0.
func (s *ProcessState) Signal() syscall.Signal { return s.signal }

// Success reports exit status 0.
func (s *ProcessState) Success() bool { return s.signal == 0 && s.code == 0 }

// Crash explains a signal the sandbox sent for a guest fault or a fatal VM
// exit (faulting address, decoded instruction, registers), or is nil.
func (s *ProcessState) Crash() error { return s.crash }

func (s *ProcessState) String() string {
	if s.signal != 0 {
		return "signal: " + s.signal.String()
	}
	return fmt.Sprintf("exit status %d", s.code)
}

// ExitError reports an unsuccessful exit.
type ExitError struct {
	*ProcessState
}

func (e *ExitError) Error() string { return e.ProcessState.String() }
