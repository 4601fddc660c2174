package procfs

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

const pageSize = 4096

// pfRandomize is Linux's PF_RANDOMIZE task flag (address-space layout
// randomization), which /proc/<pid>/stat shows for every user task.
const pfRandomize = 0x400000

// memsAllowed is Mems_allowed for one NUMA node on a kernel built for
// 1024 nodes, as distribution kernels are.
var memsAllowed = bitmap(1024, 1)

// thread returns the thread a node shows: its task/<tid>, or the
// thread-group leader.
func (c *call) thread() (ThreadInfo, error) {
	threads := c.proc.Threads()
	if c.n.tid == 0 && len(threads) > 0 {
		return threads[0], nil
	}
	i := slices.IndexFunc(threads, func(t ThreadInfo) bool { return t.TID == c.n.tid })
	if i < 0 {
		return ThreadInfo{}, unix.ENOENT
	}
	return threads[i], nil
}

// permitted reports whether the caller may see the process's links and
// memory layout, as ptrace_may_access(PTRACE_MODE_READ_FSCREDS) decides:
// its own process, CAP_SYS_PTRACE, or a caller whose file-system IDs match all
// of the process's user and group IDs. Calls without a vfs.Context
// come from the kernel itself and may.
func (c *call) permitted(info ProcessInfo) bool {
	if pid, _, ok := CallerFrom(c); ok && pid == info.PID {
		return true
	}
	vc, ok := c.Context.(*vfs.Context)
	if !ok || vc.Creds == nil || vc.Creds.Capable(unix.CAP_SYS_PTRACE) {
		return true
	}
	uid, gid, u, g := vc.Creds.UID, vc.Creds.GID, info.UID, info.GID
	return uid == u.Real && uid == u.Effective && uid == u.Saved &&
		gid == g.Real && gid == g.Effective && gid == g.Saved
}

// processLink returns the target of exe, cwd or root.
func (c *call) processLink(target string) (string, error) {
	if !c.permitted(c.proc.Info()) {
		return "", unix.EACCES
	}
	if target == "" {
		return "", unix.ENOENT
	}
	return target, nil
}

// hasMM reports whether a thread in that state still has its address
// space: zombies have released it.
func hasMM(state byte) bool {
	return state != 'Z' && state != 'X'
}

func fdNumbers(c *call) []int32 {
	fds := c.proc.FDs()
	ids := make([]int32, len(fds))
	for i, f := range fds {
		ids[i] = f.Num
	}
	return ids
}

func threadIDs(c *call) []int32 {
	threads := c.proc.Threads()
	ids := make([]int32, len(threads))
	for i, t := range threads {
		ids[i] = t.TID
	}
	return ids
}

func fdTarget(c *call) (string, error) {
	return c.fd.Target, nil
}

// fdPerm is the mode of an fd link: r-x for reading, -wx for writing.
func fdPerm(c *call) uint32 {
	if c.fd.Flags&unix.O_PATH != 0 {
		return 0
	}
	switch c.fd.Flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		return 0o500
	case unix.O_WRONLY:
		return 0o300
	}
	return 0o700
}

func renderFDInfo(c *call) ([]byte, error) {
	f := c.fd
	return fmt.Appendf(nil, "pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t%d\n%s", f.Pos, f.Flags, f.MountID, f.Ino, f.Extra), nil
}

func renderComm(c *call) ([]byte, error) {
	t, err := c.thread()
	if err != nil {
		return nil, err
	}
	return line(t.Name), nil
}

var stateNames = map[byte]string{
	'R': "R (running)",
	'S': "S (sleeping)",
	'D': "D (disk sleep)",
	'T': "T (stopped)",
	't': "t (tracing stop)",
	'X': "X (dead)",
	'Z': "Z (zombie)",
}

// fdSize is the size of the file descriptor table Linux would have
// grown to for these descriptors.
func fdSize(fds []FD) int {
	top := int32(-1)
	for _, f := range fds {
		top = max(top, f.Num)
	}
	if top < 64 {
		return 64
	}
	return 1 << bits.Len32(uint32(top))
}

// bitmap renders a bitmap of size bits whose first set bits are set,
// as Linux's "%*pb": 32-bit groups in hex, most significant first.
func bitmap(size, set int) string {
	var groups []string
	for lo := 0; lo < size; lo += 32 {
		width := min(32, size-lo)
		n := max(0, min(width, set-lo))
		v := uint64(1)<<n - 1
		groups = append(groups, fmt.Sprintf("%0*x", (width+3)/4, v))
	}
	slices.Reverse(groups)
	return strings.Join(groups, ",")
}

func escapeComm(name string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(name)
}

func renderStatus(c *call) ([]byte, error) {
	t, err := c.thread()
	if err != nil {
		return nil, err
	}
	info := c.proc.Info()
	cpus := max(1, len(c.fs.src.System().CPUs))
	var b bytes.Buffer
	fmt.Fprintf(&b, "Name:\t%s\nUmask:\t%04o\nState:\t%s\n", escapeComm(t.Name), info.Umask, stateNames[t.State])
	fmt.Fprintf(&b, "Tgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t0\n", info.PID, t.TID, info.PPID)
	u, g := info.UID, info.GID
	fmt.Fprintf(&b, "Uid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\n",
		u.Real, u.Effective, u.Saved, u.FS, g.Real, g.Effective, g.Saved, g.FS)
	fmt.Fprintf(&b, "FDSize:\t%d\nGroups:\t", fdSize(c.proc.FDs()))
	for i, gid := range info.Groups {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(uint64(gid), 10))
	}
	fmt.Fprintf(&b, " \nNStgid:\t%d\nNSpid:\t%d\nNSpgid:\t%d\nNSsid:\t%d\nKthread:\t0\n", info.PID, t.TID, info.PGID, info.SID)
	if hasMM(t.State) {
		m := info.Mem
		for _, v := range []struct {
			label string
			bytes uint64
		}{
			{"VmPeak", m.Peak}, {"VmSize", m.Size}, {"VmLck", m.Locked}, {"VmPin", 0}, {"VmHWM", m.HWM},
			{"VmRSS", m.RSSAnon + m.RSSFile + m.RSSShmem}, {"RssAnon", m.RSSAnon}, {"RssFile", m.RSSFile},
			{"RssShmem", m.RSSShmem}, {"VmData", m.Data}, {"VmStk", m.Stack}, {"VmExe", m.Text}, {"VmLib", m.Lib},
			{"VmPTE", m.PTE}, {"VmSwap", 0}, {"HugetlbPages", 0},
		} {
			fmt.Fprintf(&b, "%s:\t%8d kB\n", v.label, v.bytes>>10)
		}
		b.WriteString("CoreDumping:\t0\nTHP_enabled:\t1\nuntag_mask:\t0xffffffffffffffff\n")
	}
	fmt.Fprintf(&b, "Threads:\t%d\nSigQ:\t%d/%d\n", len(c.proc.Threads()), info.SigQueued, info.SigQueueLimit)
	fmt.Fprintf(&b, "SigPnd:\t%016x\nShdPnd:\t%016x\nSigBlk:\t%016x\nSigIgn:\t%016x\nSigCgt:\t%016x\n",
		t.Pending, info.SharedPending, t.Blocked, info.Ignored, info.Caught)
	cp := info.Caps
	fmt.Fprintf(&b, "CapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\n",
		cp.Inheritable, cp.Permitted, cp.Effective, cp.Bounding, cp.Ambient)
	noNewPrivs := 0
	if info.NoNewPrivs {
		noNewPrivs = 1
	}
	fmt.Fprintf(&b, "NoNewPrivs:\t%d\nSeccomp:\t0\nSeccomp_filters:\t0\n", noNewPrivs)
	b.WriteString("Speculation_Store_Bypass:\tunknown\nSpeculationIndirectBranch:\tunknown\n")
	cpuList := "0"
	if cpus > 1 {
		cpuList = fmt.Sprintf("0-%d", cpus-1)
	}
	fmt.Fprintf(&b, "Cpus_allowed:\t%s\nCpus_allowed_list:\t%s\nMems_allowed:\t%s\nMems_allowed_list:\t0\n",
		bitmap(cpus, cpus), cpuList, memsAllowed)
	fmt.Fprintf(&b, "voluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t%d\n",
		t.VoluntarySwitches, t.InvoluntarySwitches)
	return b.Bytes(), nil
}

// ttyNr encodes a device number as /proc/<pid>/stat's tty_nr
// (new_encode_dev).
func ttyNr(dev uint64) uint32 {
	major, minor := unix.Major(dev), unix.Minor(dev)
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// renderPIDStat renders /proc/<pid>/stat, or task/<tid>/stat for one
// thread, field by field as do_task_stat does.
func renderPIDStat(c *call) ([]byte, error) {
	t, err := c.thread()
	if err != nil {
		return nil, err
	}
	info := c.proc.Info()
	nthreads := len(c.proc.Threads())
	whole := c.n.tid == 0
	permitted := c.permitted(info)
	mm := hasMM(t.State)
	m := info.Mem

	utime, stime := t.UserTime, t.SystemTime
	if whole {
		utime, stime = info.UserTime, info.SystemTime
	}
	var vsize, rss, startCode, endCode, startStack uint64
	if mm {
		vsize, rss = m.Size, (m.RSSAnon+m.RSSFile+m.RSSShmem)/pageSize
		startCode, endCode = 1, 1
		if permitted {
			startCode, endCode, startStack = m.StartCode, m.EndCode, m.StartStack
		}
	}
	wchan := 0
	if permitted && (!whole || nthreads < 2) && t.State != 'R' {
		wchan = 1
	}
	exitSignal := -1
	if t.TID == info.PID {
		exitSignal = info.ExitSignal
	}
	const sigMask = 0x7fffffff
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d (%s) %c %d %d %d %d %d %d 0 0 0 0 %d %d %d %d %d %d %d 0 %d %d %d %d %d %d %d 0 0 %d %d %d %d %d 0 0 %d %d 0 0 0 0 0",
		t.TID, t.Name, t.State, info.PPID, info.PGID, info.SID, ttyNr(info.TTY), info.TPGID, pfRandomize,
		ticks(utime), ticks(stime), ticks(info.ChildUserTime), ticks(info.ChildSystemTime),
		20+info.Nice, info.Nice, nthreads, ticks(t.StartTime), vsize, rss, uint64(math.MaxUint64),
		startCode, endCode, startStack,
		t.Pending&sigMask, t.Blocked&sigMask, info.Ignored&sigMask, info.Caught&sigMask, wchan,
		exitSignal, t.CPU)
	if mm && permitted {
		fmt.Fprintf(&b, " %d %d %d %d %d %d %d", m.StartData, m.EndData, m.StartBrk, m.ArgStart, m.ArgEnd, m.EnvStart, m.EnvEnd)
	} else {
		b.WriteString(" 0 0 0 0 0 0 0")
	}
	exitCode := 0
	if permitted {
		exitCode = info.ExitCode
	}
	fmt.Fprintf(&b, " %d\n", exitCode)
	return b.Bytes(), nil
}

func renderStatm(c *call) ([]byte, error) {
	t, err := c.thread()
	if err != nil {
		return nil, err
	}
	if !hasMM(t.State) {
		return []byte("0 0 0 0 0 0 0\n"), nil
	}
	m := c.proc.Info().Mem
	return fmt.Appendf(nil, "%d %d %d %d 0 %d 0\n", m.Size/pageSize, (m.RSSAnon+m.RSSFile+m.RSSShmem)/pageSize,
		(m.RSSFile+m.RSSShmem)/pageSize, m.Text/pageSize, (m.Data+m.Stack)/pageSize), nil
}

// mapsNameColumn is where /proc/<pid>/maps pads a line to before the
// mapping's name (25 + 6 * sizeof(void *) - 1).
const mapsNameColumn = 72

func renderMaps(c *call) ([]byte, error) {
	var b bytes.Buffer
	for _, m := range c.proc.Maps() {
		start := b.Len()
		flag := func(set bool, c byte) byte {
			if set {
				return c
			}
			return '-'
		}
		share := byte('p')
		if m.Shared {
			share = 's'
		}
		fmt.Fprintf(&b, "%08x-%08x %c%c%c%c %08x %02x:%02x %d ", m.Start, m.End,
			flag(m.Prot&unix.PROT_READ != 0, 'r'), flag(m.Prot&unix.PROT_WRITE != 0, 'w'),
			flag(m.Prot&unix.PROT_EXEC != 0, 'x'), share,
			m.Offset, unix.Major(m.Dev), unix.Minor(m.Dev), m.Inode)
		if m.Path != "" {
			if pad := start + mapsNameColumn - b.Len(); pad > 0 {
				b.WriteString(strings.Repeat(" ", pad))
			}
			b.WriteByte(' ')
			b.WriteString(strings.ReplaceAll(m.Path, "\n", `\012`))
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// mangle escapes the characters that separate fields of the mount
// tables, as Linux's mangle() does.
func mangle(s string) string {
	var b strings.Builder
	for _, ch := range []byte(s) {
		if strings.IndexByte(" \t\n\\", ch) >= 0 {
			fmt.Fprintf(&b, "\\%03o", ch)
		} else {
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func mountSource(m Mount) string {
	if m.Source == "" {
		return "none"
	}
	return mangle(m.Source)
}

func renderMounts(c *call) ([]byte, error) {
	var b bytes.Buffer
	for _, m := range c.proc.Mounts() {
		opts := m.Options
		if m.SuperOptions != "" {
			opts += "," + m.SuperOptions
		}
		fmt.Fprintf(&b, "%s %s %s %s 0 0\n", mountSource(m), mangle(m.Target), mangle(m.FSType), opts)
	}
	return b.Bytes(), nil
}

func renderMountInfo(c *call) ([]byte, error) {
	var b bytes.Buffer
	for _, m := range c.proc.Mounts() {
		super, _, _ := strings.Cut(m.Options, ",")
		if m.SuperOptions != "" {
			super += "," + m.SuperOptions
		}
		fmt.Fprintf(&b, "%d %d %d:%d %s %s %s - %s %s %s\n", m.ID, m.ParentID, unix.Major(m.Dev), unix.Minor(m.Dev),
			mangle(m.Root), mangle(m.Target), m.Options, mangle(m.FSType), mountSource(m), super)
	}
	return b.Bytes(), nil
}
