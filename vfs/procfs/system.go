package procfs

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is USER_HZ, the unit of the clock ticks in /proc files.
const userHZ = 100

// ticks converts a duration to clock ticks.
func ticks(d time.Duration) int64 {
	return int64(d / (time.Second / userHZ))
}

// line renders a sysctl value.
func line(v any) []byte {
	return fmt.Appendf(nil, "%v\n", v)
}

func selfTarget(c *call) (string, error) {
	pid, _, ok := CallerFrom(c)
	if !ok {
		return "", unix.ENOENT
	}
	return strconv.Itoa(int(pid)), nil
}

func threadSelfTarget(c *call) (string, error) {
	pid, tid, ok := CallerFrom(c)
	if !ok {
		return "", unix.ENOENT
	}
	return fmt.Sprintf("%d/task/%d", pid, tid), nil
}

// renderUUID renders /proc/sys/kernel/random/uuid: a new random
// (version 4) UUID on every open.
func renderUUID(*call) ([]byte, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return nil, err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Appendf(nil, "%x-%x-%x-%x-%x\n", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// centis renders a duration as seconds with two decimals, truncated.
func centis(d time.Duration) string {
	return fmt.Sprintf("%d.%02d", d/time.Second, d%time.Second/(10*time.Millisecond))
}

func renderUptime(c *call) ([]byte, error) {
	sys := c.fs.src.System()
	var idle time.Duration
	for _, cpu := range sys.CPUs {
		idle += cpu.Idle
	}
	return fmt.Appendf(nil, "%s %s\n", centis(sys.Uptime), centis(idle)), nil
}

func renderLoadavg(c *call) ([]byte, error) {
	sys := c.fs.src.System()
	var b bytes.Buffer
	for _, l := range sys.Load {
		h := int64(l*100 + 0.5)
		fmt.Fprintf(&b, "%d.%02d ", h/100, h%100)
	}
	fmt.Fprintf(&b, "%d/%d %d\n", sys.Running, sys.Threads, sys.LastPID)
	return b.Bytes(), nil
}

// renderStat renders /proc/stat. The machine has no interrupts or
// softirqs to count; their lines are kept for parsers.
func renderStat(c *call) ([]byte, error) {
	sys := c.fs.src.System()
	var b bytes.Buffer
	cpuLine := func(label string, t CPUTime) {
		fmt.Fprintf(&b, "%s %d %d %d %d %d 0 0 0 0 0\n", label,
			ticks(t.User), ticks(t.Nice), ticks(t.System), ticks(t.Idle), ticks(t.IOWait))
	}
	var sum CPUTime
	for _, t := range sys.CPUs {
		sum.User += t.User
		sum.Nice += t.Nice
		sum.System += t.System
		sum.Idle += t.Idle
		sum.IOWait += t.IOWait
	}
	cpuLine("cpu ", sum)
	for i, t := range sys.CPUs {
		cpuLine("cpu"+strconv.Itoa(i), t)
	}
	fmt.Fprintf(&b, "intr 0\nctxt %d\nbtime %d\nprocesses %d\nprocs_running %d\nprocs_blocked %d\n",
		sys.ContextSwitches, sys.BootTime.Unix(), sys.Forks, sys.Running, sys.Blocked)
	b.WriteString("softirq 0 0 0 0 0 0 0 0 0 0 0\n")
	return b.Bytes(), nil
}

// renderMeminfo renders /proc/meminfo with the lines of Linux 6.x on
// x86-64. Memory the sandbox does not have (swap, huge pages, slab)
// shows as 0; the active lists hold everything in use.
func renderMeminfo(c *call) ([]byte, error) {
	m := c.fs.src.System().Memory
	var b bytes.Buffer
	kb := func(label string, v uint64) {
		fmt.Fprintf(&b, "%-16s%8d kB\n", label+":", v>>10)
	}
	kb("MemTotal", m.Total)
	kb("MemFree", m.Free)
	kb("MemAvailable", m.Available)
	kb("Buffers", 0)
	kb("Cached", m.Cached)
	kb("SwapCached", 0)
	kb("Active", m.AnonPages+m.Cached)
	kb("Inactive", 0)
	kb("Active(anon)", m.AnonPages)
	kb("Inactive(anon)", 0)
	kb("Active(file)", m.Cached)
	for _, l := range []string{"Inactive(file)", "Unevictable", "Mlocked", "SwapTotal", "SwapFree", "Zswap",
		"Zswapped", "Dirty", "Writeback"} {
		kb(l, 0)
	}
	kb("AnonPages", m.AnonPages)
	kb("Mapped", m.Mapped)
	kb("Shmem", m.Shmem)
	for _, l := range []string{"KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables",
		"SecPageTables", "NFS_Unstable", "Bounce", "WritebackTmp"} {
		kb(l, 0)
	}
	kb("CommitLimit", m.Total/2)
	kb("Committed_AS", m.Committed)
	kb("VmallocTotal", 34359738367<<10)
	for _, l := range []string{"VmallocUsed", "VmallocChunk", "Percpu", "AnonHugePages", "ShmemHugePages",
		"ShmemPmdMapped", "FileHugePages", "FilePmdMapped", "Balloon"} {
		kb(l, 0)
	}
	b.WriteString("HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\nHugePages_Surp:        0\n")
	kb("Hugepagesize", 2<<20)
	kb("Hugetlb", 0)
	kb("DirectMap4k", 0)
	kb("DirectMap2M", m.Total)
	kb("DirectMap1G", 0)
	return b.Bytes(), nil
}

func renderVersion(c *call) ([]byte, error) {
	sys := c.fs.src.System()
	return fmt.Appendf(nil, "Linux version %s (%s) (%s) %s\n", sys.Release, sys.BuiltBy, sys.Compiler, sys.Version), nil
}

func renderFilesystems(c *call) ([]byte, error) {
	var b bytes.Buffer
	for _, fs := range c.fs.src.System().FileSystems {
		nodev := ""
		if fs.NoDev {
			nodev = "nodev"
		}
		fmt.Fprintf(&b, "%s\t%s\n", nodev, fs.Name)
	}
	return b.Bytes(), nil
}
