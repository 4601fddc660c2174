package procfs

import (
	"context"
	"time"

	"github.com/kvmbox/kvmbox/vfs"
)

// Source is what procfs reads from the kernel. Its methods are called
// on every lookup, stat and open under /proc and must be safe for
// concurrent use. The values they return are snapshots: procfs keeps
// them only for the duration of one call (file contents are rendered
// once, at open).
type Source interface {
	// Process returns the process whose thread-group ID is pid, live
	// or zombie (not yet reaped).
	Process(pid int32) (Process, bool)
	// PIDs lists the thread-group IDs of the processes.
	PIDs() []int32
	// System describes the kernel and the machine.
	System() System
	// Sysctls holds the values of /proc/sys.
	Sysctls() Sysctls
	// Net renders the file of /proc/net named (one of NetFiles).
	Net(name string) []byte
}

// NetFiles are the files of /proc/net (and /proc/<pid>/net).
var NetFiles = []string{"dev", "if_inet6", "route", "tcp", "tcp6", "udp", "udp6", "unix"}

// Sysctls holds the values of /proc/sys, named by their path below it
// ("fs/nr_open"). procfs parses and validates a write as Linux does
// before it calls a setter, and checks the file's permissions; a setter
// may still refuse (EPERM where the value needs a capability: ctx names
// the caller, see CallerFrom).
type Sysctls interface {
	// Num returns a numeric value.
	Num(path string) uint64
	SetNum(ctx context.Context, path string, v uint64) error
	// String returns a string value (kernel/hostname, kernel/domainname).
	String(path string) string
	SetString(ctx context.Context, path string, v string) error
}

// Process is one thread group, as /proc/<pid> shows it.
type Process interface {
	// Info returns the process's identity and accounting.
	Info() ProcessInfo
	// Threads lists the threads, the thread-group leader first. A
	// process has at least one thread until it is reaped.
	Threads() []ThreadInfo
	// Cmdline returns the argument strings, each NUL-terminated, as
	// they lie in the process's memory (empty for a zombie).
	Cmdline() []byte
	// Environ returns the environment strings, each NUL-terminated.
	Environ() []byte
	// Auxv returns the auxiliary vector as the process got it: pairs of
	// little-endian uint64 ending with AT_NULL.
	Auxv() []byte
	// Maps lists the memory mappings in address order.
	Maps() []Mapping
	// FDs lists the open file descriptors.
	FDs() []FD
	// Mounts lists the mount table as seen from the process's root
	// directory, in mount order.
	Mounts() []Mount
}

// IDs are the user or group IDs of a process.
type IDs struct {
	Real, Effective, Saved, FS uint32
}

// Caps are capability sets, bit n for capability n.
type Caps struct {
	Inheritable, Permitted, Effective, Bounding, Ambient uint64
}

// ProcessInfo is the per-process state shown by /proc/<pid>/status,
// stat and statm and by the exe, cwd and root links. Signal sets have
// bit n-1 for signal n, as in Linux's sigset_t.
type ProcessInfo struct {
	PID, PPID, PGID, SID int32
	// TTY is the controlling terminal's device number (unix.Mkdev), 0
	// for none; TPGID is its foreground process group, -1 for none.
	TTY   uint64
	TPGID int32

	UID, GID   IDs
	Groups     []uint32
	Caps       Caps
	NoNewPrivs bool
	Umask      uint32
	Nice       int
	// ExitSignal is the signal the parent gets when the process exits
	// (SIGCHLD); ExitCode is a zombie's wait status.
	ExitSignal int
	ExitCode   int

	// Exe, Cwd and Root are guest paths: the targets of the exe, cwd
	// and root links. Exe is empty when the process has no executable
	// (a zombie).
	Exe, Cwd, Root string

	// UserTime and SystemTime are the CPU time of the whole thread
	// group, exited threads included; the Child times are those of
	// waited-for children.
	UserTime, SystemTime           time.Duration
	ChildUserTime, ChildSystemTime time.Duration

	Mem Memory

	// SigQueued and SigQueueLimit are the queued signals of the
	// process's real user and the RLIMIT_SIGPENDING limit.
	SigQueued, SigQueueLimit uint64
	// SharedPending holds the signals pending for the whole process;
	// Ignored and Caught those whose disposition is SIG_IGN or a
	// handler.
	SharedPending, Ignored, Caught uint64
}

// Memory describes a process's address space. Sizes are in bytes.
type Memory struct {
	// Peak and Size are the mapped size, highest and current (VmPeak,
	// VmSize); HWM is the highest resident size.
	Peak, Size, Locked, HWM uint64
	// The resident set, by kind: VmRSS is their sum.
	RSSAnon, RSSFile, RSSShmem uint64
	// Data, Stack, Text and Lib are the sizes of the private writable
	// mappings, the stack, the executable's code and other executable
	// code; PTE is the size of the page tables.
	Data, Stack, Text, Lib, PTE uint64

	// The layout reported by /proc/<pid>/stat.
	StartCode, EndCode, StartData, EndData, StartBrk, StartStack uint64
	ArgStart, ArgEnd, EnvStart, EnvEnd                           uint64
}

// ThreadInfo is the per-thread state of /proc/<pid>/task/<tid>.
type ThreadInfo struct {
	TID int32
	// Name is the thread's comm (at most 15 bytes).
	Name string
	// State is Linux's state letter: 'R' running, 'S' sleeping, 'D'
	// disk sleep, 'T' stopped, 't' tracing stop, 'Z' zombie, 'X' dead.
	State byte
	// Pending and Blocked are the thread's own pending and blocked
	// signals.
	Pending, Blocked     uint64
	UserTime, SystemTime time.Duration
	// StartTime is when the thread was created, since boot.
	StartTime time.Duration
	// CPU is the vCPU the thread last ran on.
	CPU                                    int
	VoluntarySwitches, InvoluntarySwitches uint64
}

// Mapping is one line of /proc/<pid>/maps.
type Mapping struct {
	Start, End uint64
	// Prot holds unix.PROT_READ, PROT_WRITE and PROT_EXEC; Shared is
	// true for MAP_SHARED mappings.
	Prot   uint32
	Shared bool
	// Offset, Dev (unix.Mkdev) and Inode locate a file mapping.
	Offset uint64
	Dev    uint64
	Inode  uint64
	// Path is the file's guest path, or a name such as "[heap]",
	// "[stack]", "[vdso]" or "[vvar]"; empty for anonymous memory.
	Path string
}

// FD is an open file descriptor, for /proc/<pid>/fd and fdinfo.
type FD struct {
	Num int32
	// File is the open file, which following the link reaches (procfs
	// holds no reference to it).
	File *vfs.File
	// Target is what readlink shows: a guest path ("/dev/null"), or
	// "pipe:[N]", "socket:[N]", "anon_inode:[eventfd]", ...
	Target string
	// Flags are the access mode and status flags (F_GETFL), plus
	// O_CLOEXEC when the descriptor is close-on-exec.
	Flags   int
	Pos     int64
	MountID int
	Ino     uint64
	// Extra holds the file's own fdinfo lines ("eventfd-count: ..."),
	// each ending in a newline.
	Extra string
}

// Mount is one entry of the mount table.
type Mount struct {
	// ID and ParentID identify the mount and the one it is mounted on.
	ID, ParentID int
	// Dev is the file system's device number (unix.Mkdev).
	Dev uint64
	// Root is the directory of the file system that is mounted ("/");
	// Target is the mount point, as seen from the process's root.
	Root, Target string
	// Options are the generic ones: "rw" or "ro", then flags such as
	// "nosuid", "nodev", "relatime".
	Options string
	FSType  string
	Source  string
	// SuperOptions are the file system's own options ("size=64k,mode=755"),
	// possibly empty.
	SuperOptions string
}

// FileSystemType is one line of /proc/filesystems.
type FileSystemType struct {
	Name string
	// NoDev is true for file systems that need no block device.
	NoDev bool
}

// CPUTime is the time a vCPU spent in each state.
type CPUTime struct {
	User, Nice, System, Idle, IOWait time.Duration
}

// MemInfo is the system memory of /proc/meminfo, in bytes.
type MemInfo struct {
	Total, Free, Available uint64
	// Cached is page cache (tmpfs data included), Shmem the shared
	// memory and tmpfs part of it.
	Cached, Shmem uint64
	// AnonPages is anonymous memory mapped by processes, Mapped the file
	// memory they map, Committed what they have committed (Committed_AS).
	AnonPages, Mapped, Committed uint64
}

// System describes the kernel and the machine.
type System struct {
	// Release and Version are uname's release ("6.12.0") and version
	// ("#1 SMP PREEMPT_DYNAMIC ..."); BuiltBy ("user@host") and
	// Compiler complete /proc/version.
	Release, Version, BuiltBy, Compiler string
	// BootID is the random UUID of this boot.
	BootID string
	// CPUInfo is the whole text of /proc/cpuinfo.
	CPUInfo     string
	FileSystems []FileSystemType

	// BootTime is the wall-clock time of boot; Uptime the time since.
	BootTime time.Time
	Uptime   time.Duration
	// CPUs has one entry per vCPU.
	CPUs   []CPUTime
	Memory MemInfo
	// Load holds the 1, 5 and 15 minute load averages.
	Load [3]float64
	// Running and Blocked count the runnable threads and those in
	// uninterruptible sleep; Threads counts all threads.
	Running, Blocked, Threads int
	// LastPID is the most recently allocated PID; Forks counts the
	// threads and processes created since boot.
	LastPID         int32
	Forks           uint64
	ContextSwitches uint64
}

type callerKey struct{}

type caller struct {
	pid, tid int32
}

// WithCaller returns a copy of ctx that names the calling task: the
// thread tid of process pid. The kernel puts it into the vfs.Context of
// a task's file operations; /proc/self and /proc/thread-self resolve
// to the caller named there.
func WithCaller(ctx context.Context, pid, tid int32) context.Context {
	return context.WithValue(ctx, callerKey{}, caller{pid, tid})
}

// CallerFrom returns the calling task that ctx names, if any.
func CallerFrom(ctx context.Context) (pid, tid int32, ok bool) {
	c, ok := ctx.Value(callerKey{}).(caller)
	return c.pid, c.tid, ok
}
