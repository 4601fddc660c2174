package kernel

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/kvmbox/kvmbox/kvm"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/procfs"
	"golang.org/x/sys/unix"
)

// Release and Version are the Linux release and version the sandbox
// reports (uname, /proc).
const (
	Release = "6.1.0-kvmbox"
	Version = "#1 SMP PREEMPT_DYNAMIC kvmbox"
	// builtBy and compiler complete /proc/version and the boot log.
	builtBy  = "kvmbox@kvmbox"
	compiler = "go"
)

// procSource is the kernel as /proc sees it.
type procSource struct{ k *Kernel }

// ProcSource is what a procfs instance of this sandbox shows (mount(2)
// of "proc").
func (k *Kernel) ProcSource() procfs.Source { return procSource{k} }

func (s procSource) Process(pid int32) (procfs.Process, bool) {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	tg, ok := s.k.procs[pid]
	if !ok {
		return nil, false
	}
	return procProcess{tg}, true
}

func (s procSource) PIDs() []int32 {
	s.k.mu.Lock()
	pids := make([]int32, 0, len(s.k.procs))
	for pid := range s.k.procs {
		pids = append(pids, pid)
	}
	s.k.mu.Unlock()
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	return pids
}

func (s procSource) Sysctls() procfs.Sysctls { return procSysctls(s) }

func (s procSource) Net(name string) []byte { return s.k.net.ProcNet(name) }

func (s procSource) System() procfs.System {
	k := s.k
	pids := s.PIDs()
	free := k.cfg.MemoryLimit - min(k.cfg.MemoryLimit, k.phys.FramesInUse()*uint64(unix.Getpagesize()))
	// The page cache gives its pages back when memory runs short.
	cached := k.pages.Stats().CachedBytes
	cpus := make([]procfs.CPUTime, runtime.NumCPU())
	last := int32(0)
	if len(pids) > 0 {
		last = pids[len(pids)-1]
	}
	return procfs.System{
		Release: Release, Version: Version,
		BuiltBy: builtBy, Compiler: compiler,
		BootID:      k.bootID,
		CPUInfo:     cpuInfo(k.Features(), len(cpus)),
		FileSystems: []procfs.FileSystemType{{Name: "tmpfs", NoDev: true}, {Name: "proc", NoDev: true}, {Name: "devtmpfs", NoDev: true}, {Name: "hostfs"}, {Name: "overlay", NoDev: true}},
		BootTime:    k.bootTime, Uptime: time.Since(k.bootTime),
		CPUs:    cpus,
		Memory:  procfs.MemInfo{Total: k.cfg.MemoryLimit, Free: free, Available: min(k.cfg.MemoryLimit, free+cached), Cached: cached},
		Running: len(pids), Threads: len(pids), LastPID: last, Forks: uint64(last),
	}
}

// procProcess is one thread group as /proc sees it.
type procProcess struct{ tg *ThreadGroup }

func (p procProcess) Info() procfs.ProcessInfo {
	tg := p.tg
	tg.fs.mu.Lock()
	root, cwd, umask := tg.fs.root, tg.fs.cwd, tg.fs.umask
	tg.fs.mu.Unlock()
	cwdPath, _ := tg.k.vfs.PathOf(root, cwd)
	var size, stack, heap uint64
	for _, m := range tg.MM().Mappings() {
		size += m.End - m.Start
		switch m.Name {
		case "[stack]":
			stack += m.End - m.Start
		case "[heap]":
			heap += m.End - m.Start
		}
	}
	rss := tg.MM().Resident()
	c := tg.Creds()
	ignored, caught, shared := tg.signalSets()
	var tty uint64
	tpgid := int32(-1)
	if t := tg.ControllingTerminal(); t != nil {
		tty = t.Rdev()
		_, tpgid = t.Session()
	}
	return procfs.ProcessInfo{
		PID: tg.pid, PPID: tg.PPID(), PGID: tg.ProcessGroup(), SID: tg.Session(), TTY: tty, TPGID: tpgid,
		UID:    procfs.IDs{Real: c.UID, Effective: c.EUID, Saved: c.SUID, FS: c.FSUID},
		GID:    procfs.IDs{Real: c.GID, Effective: c.EGID, Saved: c.SGID, FS: c.FSGID},
		Groups: c.Groups, NoNewPrivs: c.NoNewPrivs,
		Caps:  procfs.Caps{Inheritable: c.CapInheritable, Permitted: c.CapPermitted, Effective: c.CapEffective, Bounding: c.CapBounding},
		Umask: umask, Nice: tg.leaderNice(), ExitSignal: int(unix.SIGCHLD),
		SharedPending: shared, Ignored: ignored, Caught: caught,
		Exe: tg.path, Cwd: cwdPath, Root: "/",
		Mem: procfs.Memory{Peak: size, Size: size, HWM: rss, RSSAnon: rss, Data: heap, Stack: stack,
			StartBrk: tg.image.BrkStart, StartStack: tg.image.Stack,
			ArgStart: tg.image.ArgStart, ArgEnd: tg.image.ArgEnd, EnvStart: tg.image.EnvStart, EnvEnd: tg.image.EnvEnd},
	}
}

// signalSets returns the signals tg ignores and catches (SigIgn, SigCgt)
// and those pending for the whole process (ShdPnd).
func (tg *ThreadGroup) signalSets() (ignored, caught, shared uint64) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	for sig := 1; sig <= NumSignals; sig++ {
		switch tg.sigactions[sig].Handler {
		case SigDfl:
		case SigIgn:
			ignored |= uint64(SigBit(sig))
		default:
			caught |= uint64(SigBit(sig))
		}
	}
	return ignored, caught, uint64(tg.pending.set)
}

func (p procProcess) Threads() []procfs.ThreadInfo {
	tg := p.tg
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := make([]procfs.ThreadInfo, 0, len(tg.tasks))
	for _, t := range tg.tasks {
		out = append(out, procfs.ThreadInfo{TID: t.tid, Name: t.Name(), State: 'R', Blocked: uint64(t.sigmask), Pending: uint64(t.pending.set)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out
}

func nulJoin(ss []string) []byte {
	var b []byte
	for _, s := range ss {
		b = append(append(b, s...), 0)
	}
	return b
}

func (p procProcess) Cmdline() []byte { return nulJoin(p.tg.argv) }
func (p procProcess) Environ() []byte { return nulJoin(p.tg.envv) }

func (p procProcess) Auxv() []byte {
	b := make([]byte, 0, 8*len(p.tg.image.Auxv))
	for _, v := range p.tg.image.Auxv {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func (p procProcess) Maps() []procfs.Mapping {
	ms := p.tg.MM().Mappings()
	out := make([]procfs.Mapping, len(ms))
	for i, m := range ms {
		out[i] = procfs.Mapping{Start: m.Start, End: m.End, Prot: uint32(m.Prot), Shared: m.Flags&unix.MAP_SHARED != 0, Path: m.Name}
	}
	return out
}

func (p procProcess) FDs() []procfs.FD {
	tg := p.tg
	tg.fs.mu.Lock()
	root := tg.fs.root
	tg.fs.mu.Unlock()
	var out []procfs.FD
	tg.fds.each(func(fd int32, f *vfs.File, cloexec bool) {
		flags := f.StatusFlags()
		if cloexec {
			flags |= unix.O_CLOEXEC
		}
		var extra string
		if i, ok := f.Impl().(vfs.FDInfoer); ok {
			extra = i.FDInfo()
		}
		out = append(out, procfs.FD{Num: fd, File: f, Target: fileTarget(tg.k.vfs, root, f), Flags: flags, Extra: extra})
	})
	return out
}

// fileTarget is what /proc/<pid>/fd/N shows for f.
func fileTarget(v *vfs.VFS, root vfs.VirtualDentry, f *vfs.File) string {
	if n, ok := f.Impl().(vfs.Namer); ok {
		if name, ok := n.ProcName(); ok {
			return name
		}
	}
	if vd, ok := f.VirtualDentry(); ok {
		if p, ok := v.PathOf(root, vd); ok {
			return p
		}
	}
	if a, ok := f.Impl().(vfs.AnonInode); ok {
		return "anon_inode:" + a.AnonName()
	}
	if st, err := f.Stat(context.Background()); err == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			return fmt.Sprintf("pipe:[%d]", st.Ino)
		case unix.S_IFSOCK:
			return fmt.Sprintf("socket:[%d]", st.Ino)
		case unix.S_IFCHR:
			return "/dev/console"
		}
	}
	return "anon_inode:[unknown]"
}

func (p procProcess) Mounts() []procfs.Mount {
	tg := p.tg
	tg.fs.mu.Lock()
	root := tg.fs.root
	tg.fs.mu.Unlock()
	ms := tg.k.vfs.Mounts(root)
	out := make([]procfs.Mount, len(ms))
	for i, m := range ms {
		out[i] = procfs.Mount{ID: m.ID, ParentID: m.ParentID, Dev: m.Dev, Root: m.Root, Target: m.Target,
			FSType: fsType(m.FS), Source: m.Source, Options: mountOptions(m)}
		switch {
		case m.ParentID == 0:
			out[i].Source = "root"
		case m.Source == "":
			out[i].Source = fsType(m.FS)
		}
	}
	return out
}

// mountOptions renders a mount's generic options as Linux's
// show_mnt_opts does. The embedder's mounts below the root are nosuid.
func mountOptions(m vfs.MountInfo) string {
	opts := "rw"
	if m.ReadOnly {
		opts = "ro"
	}
	flags := m.Flags
	if m.Source == "" && m.ParentID != 0 {
		flags |= unix.MS_NOSUID
	}
	for _, f := range []struct {
		flag uint32
		name string
	}{{unix.MS_NOSUID, "nosuid"}, {unix.MS_NODEV, "nodev"}, {unix.MS_NOEXEC, "noexec"}, {unix.MS_NOATIME, "noatime"}, {unix.MS_NODIRATIME, "nodiratime"}} {
		if flags&f.flag != 0 {
			opts += "," + f.name
		}
	}
	if flags&(unix.MS_NOATIME|unix.MS_STRICTATIME) == 0 {
		opts += ",relatime"
	}
	return opts
}

// cpuInfo renders /proc/cpuinfo from the features measured in the guest.
func cpuInfo(f kvm.Features, cpus int) string {
	flags := cpuFlags(f)
	var b strings.Builder
	for i := 0; i < cpus; i++ {
		fmt.Fprintf(&b, "processor\t: %d\nvendor_id\t: %s\ncpu family\t: %d\nmodel\t\t: %d\nmodel name\t: kvmbox virtual CPU\n",
			i, "GenuineIntel", 6, 0)
		fmt.Fprintf(&b, "physical id\t: 0\nsiblings\t: %d\ncore id\t\t: %d\ncpu cores\t: %d\napicid\t\t: %d\n", cpus, i, cpus, i)
		fmt.Fprintf(&b, "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\nflags\t\t: %s\n", flags)
		fmt.Fprintf(&b, "clflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 46 bits physical, 48 bits virtual\npower management:\n\n")
	}
	return b.String()
}

// cpuFlagNames names CPUID feature bits as Linux's /proc/cpuinfo does:
// leaf 1 EDX, leaf 1 ECX, leaf 7 EBX, leaf 7 ECX.
var cpuFlagNames = [4][32]string{
	{"fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr", "pge", "mca", "cmov",
		"pat", "pse36", "pn", "clflush", "", "dts", "acpi", "mmx", "fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe"},
	{"pni", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est", "tm2", "ssse3", "cid", "sdbg", "fma", "cx16", "xtpr", "pdcm",
		"", "pcid", "dca", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt", "tsc_deadline_timer", "aes", "xsave", "", "avx", "f16c", "rdrand", "hypervisor"},
	{"fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", "", "smep", "bmi2", "erms", "invpcid", "rtm", "", "", "mpx", "",
		"avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma", "", "clflushopt", "clwb", "", "avx512pf", "avx512er", "avx512cd", "sha_ni", "avx512bw", "avx512vl"},
	{"", "avx512vbmi", "umip", "pku", "ospke", "waitpkg", "avx512_vbmi2", "", "gfni", "vaes", "vpclmulqdq", "avx512_vnni", "avx512_bitalg", "", "avx512_vpopcntdq", "",
		"", "", "", "", "", "", "rdpid", "", "", "cldemote", "", "movdiri", "movdir64b", "", "", ""},
}

func cpuFlags(f kvm.Features) string {
	var names []string
	for i, word := range [4]uint32{f.CPUID1EDX, f.CPUID1ECX, f.CPUID7EBX, f.CPUID7ECX} {
		for bit := 0; bit < 32; bit++ {
			if word&(1<<bit) != 0 && cpuFlagNames[i][bit] != "" {
				names = append(names, cpuFlagNames[i][bit])
			}
		}
	}
	return strings.Join(names, " ")
}
