// Package kernel is the Linux-compatible kernel that serves a sandbox's
// guest: tasks and thread groups, their address spaces and file
// descriptors, the run loop that enters the guest and dispatches its
// system calls and faults.
package kernel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvmbox/kvmbox/kernel/futex"
	"github.com/kvmbox/kvmbox/kvm"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/netstack"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// Syscalls dispatches a system call. The syscalls package implements it;
// the kernel only calls it.
type Syscalls interface {
	// Handle runs system call nr for t and returns the value for RAX
	// (a result, or a negated errno).
	Handle(t *Task, nr uint64, args *SyscallArgs) uint64
	// Fast reports whether system call nr with args never blocks and never
	// needs the caller's vCPU, so that a host worker may serve it while
	// the vCPU waits.
	Fast(t *Task, nr uint64, args *SyscallArgs) bool
	// MayBeFast reports whether Fast can ever hold for system call nr,
	// whatever its arguments: the guest posts only those to the worker.
	MayBeFast(nr uint64) bool
	// Serve is Handle for the worker: t.Context() then forbids waiting,
	// and ok is false, with nothing changed, where the call would have had
	// to wait.
	Serve(t *Task, nr uint64, args *SyscallArgs) (ret uint64, ok bool)
}

// SyscallArgs are the six argument registers of a system call.
type SyscallArgs [6]uint64

// Config configures a Kernel.
type Config struct {
	// MemoryLimit bounds the guest's user memory, in bytes.
	MemoryLimit uint64
	// Hostname is the initial UTS node name (Sysctl().Hostname()).
	Hostname string
	// Network chooses what the sandbox's sockets reach beyond loopback.
	Network  netstack.Options
	Syscalls Syscalls
	// Strace, when set, receives one line per system call.
	Strace io.Writer
	// Debug, when set, receives crash reports (faulting address, decoded
	// instruction, registers).
	Debug io.Writer
	// Random is the source of randomness (ASLR, AT_RANDOM, getrandom);
	// crypto/rand when nil.
	Random io.Reader
	// Root is the root file system; an empty tmpfs when nil. /dev and /tmp
	// are always mounted over it, then Mounts in order.
	Root   vfs.FileSystem
	Mounts []Mount
	// ReadOnlyRoot makes the root mount read-only once the mounts are
	// made; the mounts on it keep their own modes.
	ReadOnlyRoot bool
	// Symlinks are created after /dev and /tmp are mounted and before
	// Mounts, with their parent directories as needed.
	Symlinks []Symlink
	// ExitPathOnly serves every system call through a VM exit, without
	// the exitless worker (for comparison and benchmarks).
	ExitPathOnly bool
	// MaxTasks bounds the threads of all processes together; clone and
	// fork fail with EAGAIN past it. 1024 when zero.
	MaxTasks int
}

// UserTop is the exclusive top of user address space, as on Linux.
const UserTop = 0x7fff_ffff_f000

const (
	defaultMemoryLimit = 1 << 30
	defaultMaxTasks    = 1024
	stackSize          = 8 << 20
	// physOverhead covers page tables on top of the user memory limit.
	physOverhead = 16 << 20
)

// Kernel is one sandbox's kernel: one VM and the processes in it.
type Kernel struct {
	cfg      Config
	phys     *mm.PhysMem
	pages    *mm.PageCache
	vm       *kvm.VM
	vfs      *vfs.VFS
	net      *netstack.Stack
	done     chan struct{}
	closed   sync.Once
	bootTime time.Time
	nextPID  atomic.Int32
	mu       sync.Mutex
	procs    map[int32]*ThreadGroup // live and zombie processes by pid
	tasks    map[int32]*Task        // threads by tid
	// taskCount counts threads against MaxTasks, from clone to the end
	// of their run loop.
	taskCount int
	// treeMu guards the process tree (parents, children, process groups,
	// what wait reports); it is taken before any ThreadGroup's mu.
	treeMu sync.Mutex
	// init is pid 1, the first process started: orphans go to it, and its
	// descendants die with it.
	init     *ThreadGroup
	reported sync.Map // syscall numbers already reported as unsupported
	exits    atomic.Uint64
	syscalls atomic.Uint64
	exitless *exitless
	freezer  *freezer
	futexes  *futex.Table
	// background counts the kernel's own goroutines (the time page, the
	// exitless worker); Close waits for them before unmapping guest memory.
	background sync.WaitGroup
	// bootID is /proc/sys/kernel/random/boot_id.
	bootID string
	sysctl *Sysctl
	vdso   vdsoState
	// sharedHost holds the host files that MAP_SHARED mappings map.
	sharedHost sharedHostFiles
	log        *SysLog
}

// Stats counts what the guest cost the host.
type Stats struct {
	// VMExits is the number of times a vCPU left the guest.
	VMExits uint64
	// Syscalls is the number of system calls served.
	Syscalls uint64
	// GuestResident is the guest memory the host backs with real pages now.
	GuestResident uint64
	// PageCache counts the file bytes copied into guest memory, the
	// pages the page cache served instead, and what it holds now.
	PageCache mm.PageCacheStats
}

// Stats returns the counters since the kernel booted.
func (k *Kernel) Stats() Stats {
	resident, _ := k.phys.ResidentBytes()
	return Stats{VMExits: k.exits.Load(), Syscalls: k.syscalls.Load(), GuestResident: resident, PageCache: k.pages.Stats()}
}

// New boots a VM for a sandbox.
func New(cfg Config) (*Kernel, error) {
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = defaultMemoryLimit
	}
	if cfg.MaxTasks <= 0 {
		cfg.MaxTasks = defaultMaxTasks
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "sandbox"
	}
	k := &Kernel{cfg: cfg, done: make(chan struct{}), bootTime: time.Now(), procs: map[int32]*ThreadGroup{}, tasks: map[int32]*Task{}, futexes: futex.NewTable(), sysctl: newSysctl(cfg.Hostname), log: newSysLog(cfg.MemoryLimit, cfg.Hostname), freezer: newFreezer()}
	var id [16]byte
	_, err := io.ReadFull(cfg.Random, id[:])
	if err == nil {
		k.net, err = netstack.New(cfg.Network)
	}
	if err != nil {
		if cfg.Root != nil {
			cfg.Root.Release()
		}
		releaseMounts(cfg.Mounts)
		return nil, err
	}
	k.bootID = fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
	// From here on the kernel owns cfg.Root and cfg.Mounts: buildVFS
	// releases them on failure, and k.vfs.Release does after it succeeded.
	if err := k.buildVFS(); err != nil {
		k.net.Close()
		return nil, err
	}
	if err := k.boot(); err != nil {
		k.vfs.Release()
		k.net.Close()
		return nil, err
	}
	k.nextPID.Store(1)
	k.exitless = newExitless(k)
	return k, nil
}

// boot creates guest memory and the VM.
func (k *Kernel) boot() error {
	if k.cfg.Syscalls == nil {
		return errors.New("kernel: no syscall table")
	}
	limit := k.cfg.MemoryLimit
	phys, err := mm.NewPhysMem(kvm.ReservedBytes + limit + limit/64 + physOverhead)
	if err != nil {
		return fmt.Errorf("kernel: guest memory: %w", err)
	}
	if err := phys.ReserveLow(kvm.ReservedBytes); err != nil {
		phys.Close()
		return err
	}
	vm, err := kvm.NewVM(phys.Bytes())
	if err != nil {
		phys.Close()
		return err
	}
	k.phys, k.vm = phys, vm
	k.pages = mm.NewPageCache(phys)
	if err := k.setUpVDSO(); err != nil {
		vm.Close()
		phys.Close()
		return err
	}
	return nil
}

// Config returns the kernel's configuration.
func (k *Kernel) Config() *Config { return &k.cfg }

// Features are the CPU features the guest sees.
func (k *Kernel) Features() kvm.Features { return k.vm.Features() }

// BootTime is when the sandbox started.
func (k *Kernel) BootTime() time.Time { return k.bootTime }

// ReportOnce returns true the first time it is called for nr.
func (k *Kernel) ReportOnce(nr uint64) bool {
	_, seen := k.reported.LoadOrStore(nr, true)
	return !seen
}

// Close kills every process, waits for them to release their resources,
// then releases the VM and guest memory.
func (k *Kernel) Close() error {
	k.mu.Lock()
	procs := make([]*ThreadGroup, 0, len(k.procs))
	for _, tg := range k.procs {
		procs = append(procs, tg)
	}
	k.mu.Unlock()
	for _, tg := range procs {
		tg.Kill(Killed)
		<-tg.Done()
	}
	k.closed.Do(func() {
		close(k.done)
		k.exitless.close()
		k.background.Wait()
		k.vfs.Release()
		k.net.Close()
		k.vm.Close()
		k.phys.Close()
	})
	return nil
}

// Program is an executable to start.
type Program struct {
	// Path is the executable's path inside the sandbox.
	Path string
	Argv []string
	Envv []string
	// Dir is the working directory; "/" when empty.
	Dir string
	// Root is the root directory, a directory path in the sandbox (as
	// after chroot to it); the sandbox's root when empty. Path and Dir
	// are resolved under it.
	Root string
	// Stdin, Stdout and Stderr become descriptors 0, 1 and 2; nil reads as
	// empty and discards writes.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// User, when set, is who the program runs as; root with every
	// capability when nil.
	User *User
	// Limits are resource limits (RLIMIT_*) set before the program starts,
	// over the defaults.
	Limits map[int]unix.Rlimit
}

// Start creates a process running p; the first one started is the
// sandbox's init (pid 1). It runs until it exits, is killed, or ctx is
// cancelled.
func (k *Kernel) Start(ctx context.Context, p Program) (*ThreadGroup, error) {
	fctx := k.rootContext()
	if p.Root != "" {
		root, err := k.LookupDir(p.Root)
		if err != nil {
			return nil, fmt.Errorf("kernel: root directory %q: %w", p.Root, err)
		}
		fctx.Root, fctx.Cwd = root, root
	}
	prog, err := k.load(fctx, nil, p.Path, p.Argv, p.Envv, 0, stackSize, false)
	if err != nil {
		return nil, err
	}
	if err := k.reserveTask(); err != nil {
		prog.as.Release()
		return nil, err
	}
	p.Path, p.Argv = prog.exe, prog.argv
	tg := newThreadGroup(k, k.nextPID.Add(1)-1, prog.as, p, prog.img)
	if err := tg.setStartLimits(p.Limits); err != nil {
		prog.as.Release()
		k.unreserveTask()
		return nil, fmt.Errorf("kernel: resource limits: %w", err)
	}
	if err := tg.initFS(fctx.Root, p.Dir, p.User.creds()); err != nil {
		prog.as.Release()
		k.unreserveTask()
		return nil, fmt.Errorf("kernel: working directory %q: %w", p.Dir, err)
	}
	tg.fds.Install(newStdin(newStdinPump(p.Stdin, k.done)), 0, false)
	// One lock for both streams: they may be the same writer.
	outMu := &sync.Mutex{}
	tg.fds.Install(newStdout(orDiscard(p.Stdout), outMu), 1, false)
	tg.fds.Install(newStdout(orDiscard(p.Stderr), outMu), 2, false)
	t := tg.newTask(tg.pid)
	k.mu.Lock()
	k.procs[tg.pid] = tg
	k.mu.Unlock()
	k.treeMu.Lock()
	if k.init == nil {
		k.init = tg
	}
	k.treeMu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			tg.Kill(Killed)
		case <-tg.exited:
		}
	}()
	go t.run(taskStart{regs: kvm.Regs{RIP: prog.img.Entry, RSP: prog.img.Stack, RFLAGS: kvm.UserRFLAGS}})
	return tg, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
