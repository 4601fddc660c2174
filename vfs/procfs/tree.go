package procfs

import (
	"math"

	"golang.org/x/sys/unix"
)

// The permissions of Linux's procfs entries.
const (
	permDir     = 0o555
	permFile    = 0o444
	permPrivate = 0o400
	permLink    = 0o777
	permRW      = 0o644
)

// pde makes a file of /proc itself (a proc_dir_entry): writes fail with
// EIO.
func pde(name string, read func(c *call) ([]byte, error)) *entry {
	return &entry{name: name, mode: unix.S_IFREG | permFile, seq: true, writeErr: unix.EIO, read: read}
}

// pidFile makes a seq_file of /proc/<pid>: writes fail with EINVAL.
func pidFile(name string, perm uint32, read func(c *call) ([]byte, error)) *entry {
	return &entry{name: name, mode: unix.S_IFREG | perm, seq: true, writeErr: unix.EINVAL, read: read}
}

// pidMem makes a file of /proc/<pid> read from the process's memory
// (cmdline, environ, auxv): it seeks like a file of size 0.
func pidMem(name string, perm uint32, read func(c *call) ([]byte, error)) *entry {
	return &entry{name: name, mode: unix.S_IFREG | perm, writeErr: unix.EINVAL, read: read}
}

// sysctl makes a read-only file of /proc/sys: it seeks like a file of
// size 0 and does not open for writing, even for uid 0.
func sysctl(name string, perm uint32, read func(c *call) ([]byte, error)) *entry {
	return &entry{name: name, mode: unix.S_IFREG | perm, sysctl: true, writeErr: unix.EACCES, read: read}
}

func sysctlDir(name string, children ...*entry) *entry {
	return &entry{name: name, mode: unix.S_IFDIR | permDir, sysctl: true, fixed: children}
}

func symlink(name string, target func(c *call) (string, error)) *entry {
	return &entry{name: name, mode: unix.S_IFLNK | permLink, target: target}
}

func dir(name string, perm uint32, children ...*entry) *entry {
	return &entry{name: name, mode: unix.S_IFDIR | perm, fixed: children}
}

// numberedDir makes a directory of numbered children, instances of
// child.
func numberedDir(d *entry, num numKind, child *entry, ids func(c *call) []int32) *entry {
	d.num, d.child, d.ids = num, child, ids
	return d
}

// rootEntry builds the tree of /proc, in Linux's listing order.
func rootEntry() *entry {
	fdDir := numberedDir(dir("fd", 0o500), numFD, &entry{
		mode:   unix.S_IFLNK,
		target: fdTarget,
		size:   func(*call) int64 { return 64 },
		perm:   fdPerm,
	}, fdNumbers)
	fdDir.size = func(c *call) int64 { return int64(len(c.proc.FDs())) }
	fdinfoDir := numberedDir(dir("fdinfo", permDir), numFD, pidFile("", permFile, renderFDInfo), fdNumbers)
	var netFiles []*entry
	for _, name := range NetFiles {
		netFiles = append(netFiles, pde(name, func(c *call) ([]byte, error) { return c.fs.src.Net(name), nil }))
	}
	common := []*entry{
		fdDir,
		fdinfoDir,
		dir("net", permDir, netFiles...),
		pidMem("environ", permPrivate, func(c *call) ([]byte, error) { return c.proc.Environ(), nil }),
		pidMem("auxv", permPrivate, func(c *call) ([]byte, error) { return c.proc.Auxv(), nil }),
		pidFile("status", permFile, renderStatus),
		pidFile("comm", permRW, renderComm),
		pidMem("cmdline", permFile, func(c *call) ([]byte, error) { return c.proc.Cmdline(), nil }),
		pidFile("stat", permFile, renderPIDStat),
		pidFile("statm", permFile, renderStatm),
		pidFile("maps", permFile, renderMaps),
		symlink("cwd", func(c *call) (string, error) { return c.processLink(c.proc.Info().Cwd) }),
		symlink("root", func(c *call) (string, error) { return c.processLink(c.proc.Info().Root) }),
		symlink("exe", func(c *call) (string, error) { return c.processLink(c.proc.Info().Exe) }),
		pidFile("mounts", permFile, renderMounts),
		pidFile("mountinfo", permFile, renderMountInfo),
	}
	task := numberedDir(dir("task", permDir), numTID, dir("", permDir, common...), threadIDs)
	process := dir("", permDir, append([]*entry{task}, common...)...)

	mounts := symlink("mounts", func(*call) (string, error) { return "self/mounts", nil })
	mounts.size = func(*call) int64 { return int64(len("self/mounts")) }
	net := symlink("net", func(*call) (string, error) { return "self/net", nil })
	net.size = func(*call) int64 { return int64(len("self/net")) }
	sys := sysctlDir("sys",
		sysctlDir("fs",
			sysctlNum("file-max", "fs/file-max", permRW, doulongvecMinmax, 0, math.MaxInt64),
			sysctlDir("inotify",
				sysctlNum("max_queued_events", "fs/inotify/max_queued_events", permRW, dointvecMinmax, 0, math.MaxInt32),
				sysctlNum("max_user_instances", "fs/inotify/max_user_instances", permRW, dointvecMinmax, 0, math.MaxInt32),
				sysctlNum("max_user_watches", "fs/inotify/max_user_watches", permRW, dointvecMinmax, 0, math.MaxInt32)),
			sysctlNum("nr_open", "fs/nr_open", permRW, dointvecMinmax, nrOpenMin, nrOpenMax),
			sysctlNum("pipe-max-size", "fs/pipe-max-size", permRW, dopipeMaxSize, 0, 0)),
		sysctlDir("kernel",
			sysctlString("domainname", "kernel/domainname", permRW, maxUTSLen),
			sysctlString("hostname", "kernel/hostname", permRW, maxUTSLen),
			sysctlNum("ngroups_max", "kernel/ngroups_max", permFile, 0, 0, 0),
			sysctl("osrelease", permFile, func(c *call) ([]byte, error) { return line(c.fs.src.System().Release), nil }),
			sysctl("ostype", permFile, func(*call) ([]byte, error) { return line("Linux"), nil }),
			sysctlNum("pid_max", "kernel/pid_max", permRW, dointvecMinmax, pidMaxMin, pidMaxLimit),
			sysctlDir("random",
				sysctl("boot_id", permFile, func(c *call) ([]byte, error) { return line(c.fs.src.System().BootID), nil }),
				sysctl("uuid", permFile, renderUUID))),
		sysctlDir("net",
			sysctlDir("ipv4",
				sysctl("ping_group_range", permFile, func(c *call) ([]byte, error) {
					return line(c.fs.src.Sysctls().String("net/ipv4/ping_group_range")), nil
				}))),
		sysctlDir("vm",
			sysctlNum("mmap_min_addr", "vm/mmap_min_addr", permRW, doulongvecMinmax, 0, math.MaxUint64),
			sysctlNum("overcommit_memory", "vm/overcommit_memory", permRW, dointvecMinmax, 0, 2)))
	return numberedDir(dir("", permDir,
		net,
		sys,
		pde("stat", renderStat),
		mounts,
		pde("uptime", renderUptime),
		pde("cpuinfo", func(c *call) ([]byte, error) { return []byte(c.fs.src.System().CPUInfo), nil }),
		pde("loadavg", renderLoadavg),
		pde("meminfo", renderMeminfo),
		pde("version", renderVersion),
		pde("filesystems", renderFilesystems),
		symlink("self", selfTarget),
		symlink("thread-self", threadSelfTarget),
	), numPID, process, func(c *call) []int32 { return c.fs.src.PIDs() })
}
