package procfs_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs/procfs"
)

// fakeSource is a kernel with two processes: init (pid 1, uid 0) and
// prog (pid 100, uid 1000, threads 100 and 102).
type fakeSource struct {
	mu      sync.Mutex
	procs   map[int32]*fakeProcess
	sys     procfs.System
	nums    map[string]uint64
	strings map[string]string
}

func (s *fakeSource) Process(pid int32) (procfs.Process, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[pid]
	return p, ok
}

func (s *fakeSource) PIDs() []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.procs))
}

func (s *fakeSource) System() procfs.System {
	return s.sys
}

func (s *fakeSource) Sysctls() procfs.Sysctls { return s }

func (s *fakeSource) Net(name string) []byte { return []byte(name + "\n") }

func (s *fakeSource) Num(path string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nums[path]
}

func (s *fakeSource) SetNum(_ context.Context, path string, v uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "vm/mmap_min_addr" {
		return unix.EPERM
	}
	s.nums[path] = v
	return nil
}

func (s *fakeSource) String(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.strings[path]
}

func (s *fakeSource) SetString(_ context.Context, path string, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.strings[path] = v
	return nil
}

func (s *fakeSource) kill(pid int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.procs, pid)
}

// update changes process pid under the source's lock.
func (s *fakeSource) update(pid int32, f func(p *fakeProcess)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.procs[pid])
}

// fakeProcess serves the fields that tests change under the source's
// lock, and the others as they are.
type fakeProcess struct {
	src     *fakeSource
	info    procfs.ProcessInfo
	threads []procfs.ThreadInfo
	fds     []procfs.FD
	cmdline []byte
	environ []byte
	auxv    []byte
	maps    []procfs.Mapping
	mounts  []procfs.Mount
}

func (p *fakeProcess) Info() procfs.ProcessInfo {
	p.src.mu.Lock()
	defer p.src.mu.Unlock()
	return p.info
}

func (p *fakeProcess) Threads() []procfs.ThreadInfo {
	p.src.mu.Lock()
	defer p.src.mu.Unlock()
	return slices.Clone(p.threads)
}

func (p *fakeProcess) FDs() []procfs.FD {
	p.src.mu.Lock()
	defer p.src.mu.Unlock()
	return slices.Clone(p.fds)
}

func (p *fakeProcess) Cmdline() []byte        { return p.cmdline }
func (p *fakeProcess) Environ() []byte        { return p.environ }
func (p *fakeProcess) Auxv() []byte           { return p.auxv }
func (p *fakeProcess) Maps() []procfs.Mapping { return p.maps }
func (p *fakeProcess) Mounts() []procfs.Mount { return p.mounts }

func sameIDs(v uint32) procfs.IDs {
	return procfs.IDs{Real: v, Effective: v, Saved: v, FS: v}
}

// nulTerminated joins strings as cmdline and environ hold them.
func nulTerminated(s ...string) []byte {
	return []byte(strings.Join(s, "\x00") + "\x00")
}

const cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n\n"

func newFakeSource() *fakeSource {
	s := &fakeSource{sys: procfs.System{
		Release:  "6.12.0-kvmbox",
		Version:  "#1 SMP PREEMPT_DYNAMIC",
		BuiltBy:  "kvmbox@kvmbox",
		Compiler: "go1.26",
		BootID:   "38e6126f-3d67-49f9-94e1-360f614a0664",
		CPUInfo:  cpuinfo,
		FileSystems: []procfs.FileSystemType{
			{Name: "proc", NoDev: true}, {Name: "tmpfs", NoDev: true}, {Name: "ext4"},
		},
		BootTime: time.Unix(1700000000, 0),
		Uptime:   1234567 * time.Millisecond,
		CPUs: []procfs.CPUTime{
			{User: 10 * time.Second, System: 2 * time.Second, Idle: 1000129 * time.Millisecond, IOWait: 10 * time.Millisecond},
			{User: 5550 * time.Millisecond, System: time.Second, Idle: 500500 * time.Millisecond},
		},
		Memory: procfs.MemInfo{
			Total: 1 << 30, Free: 900 << 20, Available: 950 << 20, Cached: 20 << 20, Shmem: 4 << 20,
			AnonPages: 30 << 20, Mapped: 10 << 20, Committed: 60 << 20,
		},
		Load:            [3]float64{0.38, 0.87, 1.5},
		Running:         1,
		Threads:         3,
		LastPID:         102,
		Forks:           150,
		ContextSwitches: 5000,
	},
		nums: map[string]uint64{"fs/file-max": 9223372036854775807, "fs/nr_open": 1048576, "fs/pipe-max-size": 1048576,
			"kernel/pid_max": 4194304, "kernel/ngroups_max": 65536, "vm/mmap_min_addr": 65536},
		strings: map[string]string{"kernel/hostname": "sandbox", "kernel/domainname": "(none)"},
	}
	initProc := &fakeProcess{
		src: s,
		info: procfs.ProcessInfo{
			PID: 1, PPID: 0, PGID: 1, SID: 1, TPGID: -1, UID: sameIDs(0), GID: sameIDs(0),
			Umask: 0o022, ExitSignal: 17, Exe: "/sbin/init", Cwd: "/", Root: "/",
			Mem: procfs.Memory{StartCode: 0x400000, EndCode: 0x401000, StartStack: 0x7ffffffde000},
		},
		threads: []procfs.ThreadInfo{{TID: 1, Name: "init", State: 'S'}},
		fds:     []procfs.FD{{Num: 0, Target: "/dev/null"}},
		cmdline: nulTerminated("/sbin/init"),
		environ: nulTerminated("HOME=/"),
	}
	auxv := make([]byte, 32)
	auxv[0] = 6 // AT_PAGESZ
	auxv[8] = 0x10
	prog := &fakeProcess{
		src: s,
		info: procfs.ProcessInfo{
			PID: 100, PPID: 1, PGID: 100, SID: 1, TPGID: -1,
			UID: sameIDs(1000), GID: sameIDs(1000), Groups: []uint32{1000, 27},
			Caps:  procfs.Caps{Bounding: 0x1ffffffffff},
			Umask: 0o022, ExitSignal: 17,
			Exe: "/bin/prog", Cwd: "/home/user", Root: "/",
			UserTime: 1500 * time.Millisecond, SystemTime: 250 * time.Millisecond,
			ChildSystemTime: 10 * time.Millisecond,
			Mem: procfs.Memory{
				Peak: 8 << 20, Size: 6 << 20, HWM: 2 << 20, RSSAnon: 512 << 10, RSSFile: 1 << 20,
				Data: 1 << 20, Stack: 132 << 10, Text: 20 << 10, PTE: 44 << 10,
				StartCode: 0x400000, EndCode: 0x405000, StartData: 0x601000, EndData: 0x602000,
				StartBrk: 0x603000, StartStack: 0x7ffffffde000,
				ArgStart: 0x7ffffffdf100, ArgEnd: 0x7ffffffdf120, EnvStart: 0x7ffffffdf120, EnvEnd: 0x7ffffffdffe0,
			},
			SigQueued: 1, SigQueueLimit: 96365,
			Ignored: 1 << (unix.SIGPIPE - 1), Caught: 1<<(unix.SIGINT-1) | 1<<(unix.SIGCHLD-1),
		},
		threads: []procfs.ThreadInfo{
			{TID: 100, Name: "prog", State: 'S', Blocked: 1 << (unix.SIGUSR1 - 1),
				UserTime: time.Second, SystemTime: 200 * time.Millisecond, StartTime: 12340 * time.Millisecond,
				CPU: 1, VoluntarySwitches: 5, InvoluntarySwitches: 2},
			{TID: 102, Name: "worker", State: 'R', UserTime: 500 * time.Millisecond, SystemTime: 50 * time.Millisecond,
				StartTime: 13 * time.Second},
		},
		fds: []procfs.FD{
			{Num: 0, Target: "/dev/null", Flags: unix.O_RDONLY, MountID: 3, Ino: 4},
			{Num: 1, Target: "pipe:[7]", Flags: unix.O_WRONLY, MountID: 9, Ino: 7},
			{Num: 2, Target: "/dev/tty", Flags: unix.O_RDWR | 0o100000, MountID: 3, Ino: 6},
			{Num: 5, Target: "anon_inode:[eventfd]", Flags: unix.O_RDWR | unix.O_CLOEXEC, Pos: 0, MountID: 10, Ino: 11,
				Extra: "eventfd-count:                0\neventfd-id: 1\n"},
		},
		cmdline: nulTerminated("prog", "-v", "a b"),
		environ: nulTerminated("HOME=/home/user", "PATH=/bin"),
		auxv:    auxv,
		maps: []procfs.Mapping{
			{Start: 0x55ddc832d000, End: 0x55ddc832f000, Prot: unix.PROT_READ, Dev: unix.Mkdev(0xfe, 0),
				Inode: 247026, Path: "/usr/bin/cat"},
			{Start: 0x55dddc280000, End: 0x55dddc2a1000, Prot: unix.PROT_READ | unix.PROT_WRITE, Path: "[heap]"},
			{Start: 0x7f070f60e000, End: 0x7f070f630000, Prot: unix.PROT_READ | unix.PROT_WRITE},
			{Start: 0x7f070f876000, End: 0x7f070f87d000, Prot: unix.PROT_READ, Shared: true, Offset: 0x17c000,
				Dev: unix.Mkdev(0xfe, 0), Inode: 325737, Path: "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache"},
			{Start: 0xffffffffff600000, End: 0xffffffffff601000, Prot: unix.PROT_EXEC, Path: "[vsyscall]"},
		},
		mounts: []procfs.Mount{
			{ID: 22, ParentID: 27, Dev: unix.Mkdev(0, 21), Root: "/", Target: "/proc", Options: "rw,relatime",
				FSType: "proc", Source: "proc"},
			{ID: 24, ParentID: 27, Dev: unix.Mkdev(0, 6), Root: "/", Target: "/dev", Options: "rw,relatime",
				FSType: "devtmpfs", Source: "devtmpfs", SuperOptions: "size=12334492k,nr_inodes=3083623,mode=755"},
			{ID: 30, ParentID: 27, Dev: unix.Mkdev(0, 40), Root: "/sub dir", Target: "/mnt/my disk", Options: "ro,nosuid",
				FSType: "tmpfs"},
		},
	}
	s.procs = map[int32]*fakeProcess{1: initProc, 100: prog}
	return s
}
