package procfs_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/internal/vfstest"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"github.com/kvmbox/kvmbox/vfs/procfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

// env is a VFS with procfs mounted at /proc over a tmpfs root that
// holds /bin/prog, and contexts for the task 100/100 of the fake source.
type env struct {
	v    *vfs.VFS
	src  *fakeSource
	root *vfs.Context // uid 0, task 100/100
	user *vfs.Context // uid 1000, task 100/100
}

func setup(t *testing.T) *env {
	t.Helper()
	bg := context.Background()
	v, err := vfs.New(bg, tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	t.Cleanup(v.Release)
	r := v.Root()
	e := &env{v: v, src: newFakeSource()}
	e.root = &vfs.Context{Context: procfs.WithCaller(bg, 100, 100), Creds: vfs.RootCredentials(), Root: r, Cwd: r}
	e.user = &vfs.Context{
		Context: e.root.Context,
		Creds:   &vfs.Credentials{UID: 1000, GID: 1000, RealUID: 1000, RealGID: 1000},
		Root:    r, Cwd: r,
	}
	for _, d := range []string{"/proc", "/bin", "/home", "/home/user"} {
		require.NoError(t, v.MkdirAt(e.root, nil, d, 0o755))
	}
	f, err := v.OpenAt(e.root, nil, "/bin/prog", unix.O_WRONLY|unix.O_CREAT, 0o755)
	require.NoError(t, err)
	_, err = f.Write(e.root, []byte("\x7fELF"))
	require.NoError(t, err)
	f.DecRef()
	require.NoError(t, v.Mount(e.root, nil, "/proc", procfs.New(e.src), 0))
	return e
}

// withCaller returns a copy of ctx for another task.
func withCaller(ctx *vfs.Context, pid, tid int32) *vfs.Context {
	c := *ctx
	c.Context = procfs.WithCaller(context.Background(), pid, tid)
	return &c
}

func (e *env) open(t *testing.T, ctx *vfs.Context, path string, flags int) *vfs.File {
	t.Helper()
	f, err := e.v.OpenAt(ctx, nil, path, flags, 0)
	require.NoError(t, err)
	t.Cleanup(f.DecRef)
	return f
}

// read reads the whole file through a small buffer.
func (e *env) read(t *testing.T, ctx *vfs.Context, path string) string {
	t.Helper()
	return vfstest.ReadAll(t, ctx, e.open(t, ctx, path, unix.O_RDONLY), 7)
}

func (e *env) readlink(t *testing.T, ctx *vfs.Context, path string) string {
	t.Helper()
	s, err := e.v.ReadlinkAt(ctx, nil, path)
	require.NoError(t, err)
	return s
}

func (e *env) lstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, e.v.StatAt(e.root, nil, path, unix.AT_SYMLINK_NOFOLLOW, &st))
	return st
}

func (e *env) openErr(ctx *vfs.Context, path string, flags int) error {
	f, err := e.v.OpenAt(ctx, nil, path, flags, 0o644)
	if err == nil {
		f.DecRef()
	}
	return err
}

// list reads a directory with getdents64 and a buffer of size bytes.
func list(t *testing.T, ctx *vfs.Context, f *vfs.File, size int) []string {
	t.Helper()
	return vfstest.Names(vfstest.ReadDir(t, ctx, f, size))
}

func (e *env) names(t *testing.T, path string, size int) []string {
	t.Helper()
	return list(t, e.root, e.open(t, e.root, path, unix.O_RDONLY|unix.O_DIRECTORY), size)
}

func lines(l ...string) string {
	return strings.Join(l, "\n") + "\n"
}

func TestSystemFiles(t *testing.T) {
	e := setup(t)
	ctx := e.user
	require.Equal(t, cpuinfo, e.read(t, ctx, "/proc/cpuinfo"))
	require.Equal(t, "1234.56 1500.62\n", e.read(t, ctx, "/proc/uptime"))
	require.Equal(t, "0.38 0.87 1.50 1/3 102\n", e.read(t, ctx, "/proc/loadavg"))
	require.Equal(t, "Linux version 6.12.0-kvmbox (kvmbox@kvmbox) (go1.26) #1 SMP PREEMPT_DYNAMIC\n",
		e.read(t, ctx, "/proc/version"))
	require.Equal(t, "nodev\tproc\nnodev\ttmpfs\n\text4\n", e.read(t, ctx, "/proc/filesystems"))
	require.Equal(t, lines(
		"cpu  1555 0 300 150062 1 0 0 0 0 0",
		"cpu0 1000 0 200 100012 1 0 0 0 0 0",
		"cpu1 555 0 100 50050 0 0 0 0 0 0",
		"intr 0",
		"ctxt 5000",
		"btime 1700000000",
		"processes 150",
		"procs_running 1",
		"procs_blocked 0",
		"softirq 0 0 0 0 0 0 0 0 0 0 0",
	), e.read(t, ctx, "/proc/stat"))
	require.Equal(t, lines(
		"MemTotal:        1048576 kB",
		"MemFree:          921600 kB",
		"MemAvailable:     972800 kB",
		"Buffers:               0 kB",
		"Cached:            20480 kB",
		"SwapCached:            0 kB",
		"Active:            51200 kB",
		"Inactive:              0 kB",
		"Active(anon):      30720 kB",
		"Inactive(anon):        0 kB",
		"Active(file):      20480 kB",
		"Inactive(file):        0 kB",
		"Unevictable:           0 kB",
		"Mlocked:               0 kB",
		"SwapTotal:             0 kB",
		"SwapFree:              0 kB",
		"Zswap:                 0 kB",
		"Zswapped:              0 kB",
		"Dirty:                 0 kB",
		"Writeback:             0 kB",
		"AnonPages:         30720 kB",
		"Mapped:            10240 kB",
		"Shmem:              4096 kB",
		"KReclaimable:          0 kB",
		"Slab:                  0 kB",
		"SReclaimable:          0 kB",
		"SUnreclaim:            0 kB",
		"KernelStack:           0 kB",
		"PageTables:            0 kB",
		"SecPageTables:         0 kB",
		"NFS_Unstable:          0 kB",
		"Bounce:                0 kB",
		"WritebackTmp:          0 kB",
		"CommitLimit:      524288 kB",
		"Committed_AS:      61440 kB",
		"VmallocTotal:   34359738367 kB",
		"VmallocUsed:           0 kB",
		"VmallocChunk:          0 kB",
		"Percpu:                0 kB",
		"AnonHugePages:         0 kB",
		"ShmemHugePages:        0 kB",
		"ShmemPmdMapped:        0 kB",
		"FileHugePages:         0 kB",
		"FilePmdMapped:         0 kB",
		"Balloon:               0 kB",
		"HugePages_Total:       0",
		"HugePages_Free:        0",
		"HugePages_Rsvd:        0",
		"HugePages_Surp:        0",
		"Hugepagesize:       2048 kB",
		"Hugetlb:               0 kB",
		"DirectMap4k:           0 kB",
		"DirectMap2M:     1048576 kB",
		"DirectMap1G:           0 kB",
	), e.read(t, ctx, "/proc/meminfo"))

	for path, want := range map[string]string{
		"kernel/hostname":       "sandbox\n",
		"kernel/osrelease":      "6.12.0-kvmbox\n",
		"kernel/ostype":         "Linux\n",
		"kernel/pid_max":        "4194304\n",
		"kernel/random/boot_id": "38e6126f-3d67-49f9-94e1-360f614a0664\n",
		"vm/overcommit_memory":  "0\n",
		"fs/file-max":           "9223372036854775807\n",
	} {
		require.Equal(t, want, e.read(t, ctx, "/proc/sys/"+path), path)
	}
	uuid := e.read(t, ctx, "/proc/sys/kernel/random/uuid")
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$`), uuid)
	require.NotEqual(t, uuid, e.read(t, ctx, "/proc/sys/kernel/random/uuid"))

	st, err := e.v.StatfsAt(ctx, nil, "/proc")
	require.NoError(t, err)
	require.Equal(t, int64(unix.PROC_SUPER_MAGIC), st.Type)
}

func TestProcessFiles(t *testing.T) {
	e := setup(t)
	ctx := e.user
	require.Equal(t, lines(
		"Name:\tprog",
		"Umask:\t0022",
		"State:\tS (sleeping)",
		"Tgid:\t100",
		"Ngid:\t0",
		"Pid:\t100",
		"PPid:\t1",
		"TracerPid:\t0",
		"Uid:\t1000\t1000\t1000\t1000",
		"Gid:\t1000\t1000\t1000\t1000",
		"FDSize:\t64",
		"Groups:\t1000 27 ",
		"NStgid:\t100",
		"NSpid:\t100",
		"NSpgid:\t100",
		"NSsid:\t1",
		"Kthread:\t0",
		"VmPeak:\t    8192 kB",
		"VmSize:\t    6144 kB",
		"VmLck:\t       0 kB",
		"VmPin:\t       0 kB",
		"VmHWM:\t    2048 kB",
		"VmRSS:\t    1536 kB",
		"RssAnon:\t     512 kB",
		"RssFile:\t    1024 kB",
		"RssShmem:\t       0 kB",
		"VmData:\t    1024 kB",
		"VmStk:\t     132 kB",
		"VmExe:\t      20 kB",
		"VmLib:\t       0 kB",
		"VmPTE:\t      44 kB",
		"VmSwap:\t       0 kB",
		"HugetlbPages:\t       0 kB",
		"CoreDumping:\t0",
		"THP_enabled:\t1",
		"untag_mask:\t0xffffffffffffffff",
		"Threads:\t2",
		"SigQ:\t1/96365",
		"SigPnd:\t0000000000000000",
		"ShdPnd:\t0000000000000000",
		"SigBlk:\t0000000000000200",
		"SigIgn:\t0000000000001000",
		"SigCgt:\t0000000000010002",
		"CapInh:\t0000000000000000",
		"CapPrm:\t0000000000000000",
		"CapEff:\t0000000000000000",
		"CapBnd:\t000001ffffffffff",
		"CapAmb:\t0000000000000000",
		"NoNewPrivs:\t0",
		"Seccomp:\t0",
		"Seccomp_filters:\t0",
		"Speculation_Store_Bypass:\tunknown",
		"SpeculationIndirectBranch:\tunknown",
		"Cpus_allowed:\t3",
		"Cpus_allowed_list:\t0-1",
		"Mems_allowed:\t"+strings.Repeat("00000000,", 31)+"00000001",
		"Mems_allowed_list:\t0",
		"voluntary_ctxt_switches:\t5",
		"nonvoluntary_ctxt_switches:\t2",
	), e.read(t, ctx, "/proc/100/status"))

	// The thread's own status differs in the thread's fields only.
	status := e.read(t, ctx, "/proc/100/task/102/status")
	require.Contains(t, status, "Name:\tworker\nUmask:\t0022\nState:\tR (running)\nTgid:\t100\nNgid:\t0\nPid:\t102\n")
	require.Contains(t, status, "SigBlk:\t0000000000000000\n")
	require.Contains(t, status, "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n")

	require.Equal(t, "100 (prog) S 1 100 1 0 -1 4194304 0 0 0 0 150 25 0 1 20 0 2 0 1234 6291456 384 "+
		"18446744073709551615 4194304 4214784 140737488216064 0 0 0 512 4096 65538 0 0 0 17 1 0 0 0 0 0 "+
		"6295552 6299648 6303744 140737488220416 140737488220448 140737488220448 140737488224224 0\n",
		e.read(t, ctx, "/proc/100/stat"))
	require.Equal(t, "102 (worker) R 1 100 1 0 -1 4194304 0 0 0 0 50 5 0 1 20 0 2 0 1300 6291456 384 "+
		"18446744073709551615 4194304 4214784 140737488216064 0 0 0 0 4096 65538 0 0 0 -1 0 0 0 0 0 0 "+
		"6295552 6299648 6303744 140737488220416 140737488220448 140737488220448 140737488224224 0\n",
		e.read(t, ctx, "/proc/100/task/102/stat"))
	// Another user's process hides its layout; uid 0 sees it, and
	// wchan for the sleeping single-threaded init.
	require.Equal(t, "1 (init) S 0 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0 18446744073709551615 1 1 0"+
		strings.Repeat(" 0", 9)+" 17"+strings.Repeat(" 0", 14)+"\n", e.read(t, ctx, "/proc/1/stat"))
	require.Equal(t, "1 (init) S 0 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0 18446744073709551615 "+
		"4194304 4198400 140737488216064 0 0 0 0 0 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		e.read(t, e.root, "/proc/1/stat"))

	require.Equal(t, "1536 384 256 5 0 289 0\n", e.read(t, ctx, "/proc/100/statm"))
	require.Equal(t, "prog\n", e.read(t, ctx, "/proc/100/comm"))
	require.Equal(t, "worker\n", e.read(t, ctx, "/proc/100/task/102/comm"))
	require.Equal(t, "prog\x00-v\x00a b\x00", e.read(t, ctx, "/proc/100/cmdline"))
	require.Equal(t, "HOME=/home/user\x00PATH=/bin\x00", e.read(t, ctx, "/proc/100/environ"))
	require.Equal(t, "\x06\x00\x00\x00\x00\x00\x00\x00\x10"+strings.Repeat("\x00", 23), e.read(t, ctx, "/proc/100/auxv"))

	// Lines copied from Linux's /proc/self/maps.
	require.Equal(t, lines(
		"55ddc832d000-55ddc832f000 r--p 00000000 fe:00 247026                     /usr/bin/cat",
		"55dddc280000-55dddc2a1000 rw-p 00000000 00:00 0                          [heap]",
		"7f070f60e000-7f070f630000 rw-p 00000000 00:00 0 ",
		"7f070f876000-7f070f87d000 r--s 0017c000 fe:00 325737                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
	), e.read(t, ctx, "/proc/100/maps"))

	require.Equal(t, lines(
		"proc /proc proc rw,relatime 0 0",
		"devtmpfs /dev devtmpfs rw,relatime,size=12334492k,nr_inodes=3083623,mode=755 0 0",
		`none /mnt/my\040disk tmpfs ro,nosuid 0 0`,
	), e.read(t, ctx, "/proc/100/mounts"))
	require.Equal(t, e.read(t, ctx, "/proc/100/mounts"), e.read(t, ctx, "/proc/mounts"))
	require.Equal(t, lines(
		"22 27 0:21 / /proc rw,relatime - proc proc rw",
		"24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334492k,nr_inodes=3083623,mode=755",
		`30 27 0:40 /sub\040dir /mnt/my\040disk ro,nosuid - tmpfs none ro`,
	), e.read(t, ctx, "/proc/self/mountinfo"))

	require.Equal(t, "pos:\t0\nflags:\t00\nmnt_id:\t3\nino:\t4\n", e.read(t, ctx, "/proc/100/fdinfo/0"))
	require.Equal(t, "pos:\t0\nflags:\t02000002\nmnt_id:\t10\nino:\t11\neventfd-count:                0\neventfd-id: 1\n",
		e.read(t, ctx, "/proc/100/fdinfo/5"))
}

func TestZombie(t *testing.T) {
	e := setup(t)
	e.src.update(1, func(p *fakeProcess) { p.threads[0].State = 'Z' })
	status := e.read(t, e.root, "/proc/1/status")
	require.Contains(t, status, "State:\tZ (zombie)\n")
	require.Contains(t, status, "Kthread:\t0\nThreads:\t1\n")
	require.Equal(t, "0 0 0 0 0 0 0\n", e.read(t, e.root, "/proc/1/statm"))
	require.Contains(t, e.read(t, e.root, "/proc/1/stat"), " 18446744073709551615 0 0 0 ")
	e.src.update(1, func(p *fakeProcess) { p.info.Exe = "" })
	_, err := e.v.ReadlinkAt(e.root, nil, "/proc/1/exe")
	require.ErrorIs(t, err, unix.ENOENT)
}

func TestLinks(t *testing.T) {
	e := setup(t)
	ctx := e.user
	require.Equal(t, "100", e.readlink(t, ctx, "/proc/self"))
	require.Equal(t, "100/task/100", e.readlink(t, ctx, "/proc/thread-self"))
	require.Equal(t, "100/task/102", e.readlink(t, withCaller(ctx, 100, 102), "/proc/thread-self"))
	require.Equal(t, "1", e.readlink(t, withCaller(e.root, 1, 1), "/proc/self"))
	require.Equal(t, "self/mounts", e.readlink(t, ctx, "/proc/mounts"))
	require.Equal(t, "/bin/prog", e.readlink(t, ctx, "/proc/self/exe"))
	require.Equal(t, "/home/user", e.readlink(t, ctx, "/proc/self/cwd"))
	require.Equal(t, "/", e.readlink(t, ctx, "/proc/self/root"))
	require.Equal(t, "/dev/null", e.readlink(t, ctx, "/proc/self/fd/0"))
	require.Equal(t, "pipe:[7]", e.readlink(t, ctx, "/proc/self/fd/1"))
	require.Equal(t, "anon_inode:[eventfd]", e.readlink(t, ctx, "/proc/self/task/102/fd/5"))

	// The links resolve through the VFS: the executable opens (and
	// would execute) through /proc/self/exe.
	require.Equal(t, "\x7fELF", e.read(t, ctx, "/proc/self/exe"))
	var st unix.Stat_t
	require.NoError(t, e.v.StatAt(ctx, nil, "/proc/self/exe", 0, &st))
	require.Equal(t, uint32(unix.S_IFREG|0o755), st.Mode)
	require.NoError(t, e.v.StatAt(ctx, nil, "/proc/thread-self/cwd", 0, &st))
	require.Equal(t, uint32(unix.S_IFDIR), st.Mode&unix.S_IFMT)
	require.Equal(t, "worker\n", e.read(t, withCaller(ctx, 100, 102), "/proc/thread-self/comm"))

	// Without a calling task, self does not exist.
	noCaller := &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: ctx.Root, Cwd: ctx.Cwd}
	_, err := e.v.ReadlinkAt(noCaller, nil, "/proc/self")
	require.ErrorIs(t, err, unix.ENOENT)
	_, err = e.v.ReadlinkAt(noCaller, nil, "/proc/thread-self")
	require.ErrorIs(t, err, unix.ENOENT)
	_, err = e.v.ReadlinkAt(ctx, nil, "/proc/self/status")
	require.ErrorIs(t, err, unix.EINVAL)
}

func TestReadDir(t *testing.T) {
	e := setup(t)
	root := []string{".", "..", "net", "sys", "stat", "mounts", "uptime", "cpuinfo", "loadavg", "meminfo", "version",
		"filesystems", "self", "thread-self", "1", "100"}
	for _, size := range []int{32, 64, 4096} {
		require.Equal(t, root, e.names(t, "/proc", size))
	}
	process := []string{"environ", "auxv", "status", "comm", "cmdline", "stat", "statm", "maps", "cwd", "root",
		"exe", "mounts", "mountinfo"}
	require.Equal(t, append([]string{".", "..", "task", "fd", "fdinfo", "net"}, process...), e.names(t, "/proc/100", 4096))
	require.Equal(t, append([]string{".", "..", "fd", "fdinfo", "net"}, process...), e.names(t, "/proc/100/task/102", 4096))
	require.Equal(t, append([]string{".", ".."}, procfs.NetFiles...), e.names(t, "/proc/self/net", 4096))
	require.Equal(t, "tcp6\n", e.read(t, e.root, "/proc/net/tcp6"))
	require.Equal(t, []string{".", "..", "100", "102"}, e.names(t, "/proc/100/task", 4096))
	require.Equal(t, []string{".", "..", "0", "1", "2", "5"}, e.names(t, "/proc/self/fd", 32))
	require.Equal(t, []string{".", "..", "0", "1", "2", "5"}, e.names(t, "/proc/self/fdinfo", 4096))
	require.Equal(t, []string{".", "..", "fs", "kernel", "net", "vm"}, e.names(t, "/proc/sys", 4096))
	require.Equal(t, []string{".", "..", "domainname", "hostname", "ngroups_max", "osrelease", "ostype", "pid_max", "random"},
		e.names(t, "/proc/sys/kernel", 4096))

	// Offsets are stable while processes come and go: a listing resumed
	// after a change sees every process that stayed exactly once.
	f := e.open(t, e.root, "/proc", unix.O_RDONLY|unix.O_DIRECTORY)
	buf := make([]byte, 200)
	n, err := f.Getdents64(e.root, buf)
	require.NoError(t, err)
	first := vfstest.Names(vfstest.ParseDirents(buf[:n]))
	require.Less(t, len(first), len(root)-2)
	e.src.kill(1)
	e.src.update(100, func(p *fakeProcess) {
		e.src.procs[50] = &fakeProcess{src: e.src, info: p.info, threads: p.threads}
	})
	rest := list(t, e.root, f, 200)
	require.Equal(t, root[:len(root)-2], append(first, rest[:len(rest)-2]...))
	require.Equal(t, []string{"50", "100"}, rest[len(rest)-2:])

	_, err = f.Seek(e.root, 0, unix.SEEK_SET)
	require.NoError(t, err)
	require.Equal(t, append(root[:len(root)-2:len(root)-2], "50", "100"), list(t, e.root, f, 4096))
}

func TestStat(t *testing.T) {
	e := setup(t)
	type attrs struct {
		mode     uint32
		nlink    uint64
		uid, gid uint32
		size     int64
		blksize  int64
	}
	got := func(path string) attrs {
		st := e.lstat(t, path)
		return attrs{mode: st.Mode, nlink: st.Nlink, uid: st.Uid, gid: st.Gid, size: st.Size, blksize: st.Blksize}
	}
	for path, want := range map[string]attrs{
		"/proc":                          {mode: unix.S_IFDIR | 0o555, nlink: 5, blksize: 1024},
		"/proc/meminfo":                  {mode: unix.S_IFREG | 0o444, nlink: 1, blksize: 1024},
		"/proc/self":                     {mode: unix.S_IFLNK | 0o777, nlink: 1, blksize: 1024},
		"/proc/mounts":                   {mode: unix.S_IFLNK | 0o777, nlink: 1, size: 11, blksize: 1024},
		"/proc/sys":                      {mode: unix.S_IFDIR | 0o555, nlink: 1, blksize: 1024},
		"/proc/sys/kernel/ostype":        {mode: unix.S_IFREG | 0o444, nlink: 1, blksize: 1024},
		"/proc/sys/vm/overcommit_memory": {mode: unix.S_IFREG | 0o644, nlink: 1, blksize: 1024},
		"/proc/100":                      {mode: unix.S_IFDIR | 0o555, nlink: 6, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/task":                 {mode: unix.S_IFDIR | 0o555, nlink: 4, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/task/102":             {mode: unix.S_IFDIR | 0o555, nlink: 5, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/net":                      {mode: unix.S_IFLNK | 0o777, nlink: 1, size: 8, blksize: 1024},
		"/proc/100/net":                  {mode: unix.S_IFDIR | 0o555, nlink: 2, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/net/tcp":              {mode: unix.S_IFREG | 0o444, nlink: 1, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/fd":                   {mode: unix.S_IFDIR | 0o500, nlink: 2, uid: 1000, gid: 1000, size: 4, blksize: 1024},
		"/proc/100/fdinfo":               {mode: unix.S_IFDIR | 0o555, nlink: 2, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/fd/0":                 {mode: unix.S_IFLNK | 0o500, nlink: 1, uid: 1000, gid: 1000, size: 64, blksize: 1024},
		"/proc/100/fd/1":                 {mode: unix.S_IFLNK | 0o300, nlink: 1, uid: 1000, gid: 1000, size: 64, blksize: 1024},
		"/proc/100/fd/2":                 {mode: unix.S_IFLNK | 0o700, nlink: 1, uid: 1000, gid: 1000, size: 64, blksize: 1024},
		"/proc/100/fdinfo/2":             {mode: unix.S_IFREG | 0o444, nlink: 1, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/status":               {mode: unix.S_IFREG | 0o444, nlink: 1, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/environ":              {mode: unix.S_IFREG | 0o400, nlink: 1, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/comm":                 {mode: unix.S_IFREG | 0o644, nlink: 1, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/100/exe":                  {mode: unix.S_IFLNK | 0o777, nlink: 1, uid: 1000, gid: 1000, blksize: 1024},
		"/proc/1/status":                 {mode: unix.S_IFREG | 0o444, nlink: 1, blksize: 1024},
	} {
		require.Equal(t, want, got(path), path)
	}
	require.Equal(t, uint64(1), e.lstat(t, "/proc").Ino)
	require.NotEqual(t, e.lstat(t, "/proc/100/stat").Ino, e.lstat(t, "/proc/1/stat").Ino)
	require.Equal(t, e.lstat(t, "/proc/100/stat").Ino, e.lstat(t, "/proc/100/stat").Ino)
}

func TestDeadProcess(t *testing.T) {
	e := setup(t)
	ctx := e.root
	for _, path := range []string{"/proc/12345", "/proc/0100", "/proc/+100", "/proc/100/task/101", "/proc/100/fd/3",
		"/proc/100/fd/05", "/proc/100/fdinfo/3", "/proc/nothing", "/proc/100/nothing"} {
		var st unix.Stat_t
		require.ErrorIs(t, e.v.StatAt(ctx, nil, path, unix.AT_SYMLINK_NOFOLLOW, &st), unix.ENOENT, path)
	}

	// A file descriptor closes: its links go.
	require.Equal(t, "anon_inode:[eventfd]", e.readlink(t, ctx, "/proc/100/fd/5"))
	e.src.update(100, func(p *fakeProcess) { p.fds = p.fds[:3] })
	_, err := e.v.ReadlinkAt(ctx, nil, "/proc/100/fd/5")
	require.ErrorIs(t, err, unix.ENOENT)
	require.ErrorIs(t, e.openErr(ctx, "/proc/100/fdinfo/5", unix.O_RDONLY), unix.ENOENT)

	// A thread exits.
	require.Equal(t, "worker\n", e.read(t, ctx, "/proc/100/task/102/comm"))
	e.src.update(100, func(p *fakeProcess) { p.threads = p.threads[:1] })
	require.ErrorIs(t, e.openErr(ctx, "/proc/100/task/102/comm", unix.O_RDONLY), unix.ENOENT)
	require.Equal(t, []string{".", "..", "100"}, e.names(t, "/proc/100/task", 4096))

	// The process is reaped: open files keep their snapshot, everything
	// else is gone.
	status := e.open(t, ctx, "/proc/100/status", unix.O_RDONLY)
	dir := e.open(t, ctx, "/proc/100", unix.O_RDONLY|unix.O_DIRECTORY)
	e.src.kill(100)
	buf := make([]byte, 10)
	n, err := status.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "Name:\tprog", string(buf[:n]))
	_, err = dir.Getdents64(ctx, make([]byte, 4096))
	require.ErrorIs(t, err, unix.ENOENT)
	for _, path := range []string{"/proc/100", "/proc/100/status", "/proc/self/status", "/proc/self/fd/0"} {
		var st unix.Stat_t
		require.ErrorIs(t, e.v.StatAt(ctx, nil, path, unix.AT_SYMLINK_NOFOLLOW, &st), unix.ENOENT, path)
	}
	require.ErrorIs(t, e.openErr(ctx, "/proc/self/exe", unix.O_RDONLY), unix.ENOENT)
	require.Equal(t, "100", e.readlink(t, ctx, "/proc/self"))
	require.NotContains(t, e.names(t, "/proc", 4096), "100")
}

func TestWrites(t *testing.T) {
	e := setup(t)
	root, user := e.root, e.user
	write := func(ctx *vfs.Context, path string, flags int) error {
		f := e.open(t, ctx, path, flags)
		_, err := f.Write(ctx, []byte("1"))
		return err
	}
	// uid 0 opens read-only files for writing, as on Linux; writes fail
	// as there.
	require.ErrorIs(t, write(root, "/proc/meminfo", unix.O_WRONLY), unix.EIO)
	require.ErrorIs(t, write(root, "/proc/version", unix.O_RDWR), unix.EIO)
	require.ErrorIs(t, write(root, "/proc/100/status", unix.O_WRONLY), unix.EINVAL)
	require.ErrorIs(t, write(root, "/proc/100/cmdline", unix.O_WRONLY), unix.EINVAL)
	require.ErrorIs(t, write(root, "/proc/100/fdinfo/0", unix.O_WRONLY), unix.EINVAL)
	require.ErrorIs(t, write(user, "/proc/100/comm", unix.O_WRONLY), unix.EINVAL)
	for _, path := range []string{"/proc/sys/kernel/osrelease", "/proc/sys/kernel/ostype", "/proc/sys/kernel/ngroups_max"} {
		require.ErrorIs(t, e.openErr(root, path, unix.O_WRONLY), unix.EACCES, path)
		require.ErrorIs(t, e.openErr(root, path, unix.O_RDWR), unix.EACCES, path)
	}
	require.ErrorIs(t, e.openErr(user, "/proc/sys/kernel/hostname", unix.O_WRONLY), unix.EACCES)
	require.ErrorIs(t, e.openErr(user, "/proc/meminfo", unix.O_WRONLY), unix.EACCES)
	require.ErrorIs(t, e.openErr(user, "/proc/100/status", unix.O_RDWR), unix.EACCES)
	require.ErrorIs(t, e.openErr(root, "/proc", unix.O_WRONLY), unix.EISDIR)

	// O_TRUNC and truncate are accepted and change nothing.
	require.Equal(t, "prog\n", e.read(t, root, "/proc/100/comm"))
	require.NoError(t, e.openErr(root, "/proc/100/comm", unix.O_RDONLY|unix.O_TRUNC))
	require.NoError(t, e.v.TruncateAt(root, nil, "/proc/meminfo", 0))
	require.Equal(t, "prog\n", e.read(t, root, "/proc/100/comm"))

	// Nothing can be created: the lookup that precedes creation fails.
	for _, path := range []string{"/proc/new", "/proc/100/new", "/proc/sys/kernel/new", "/proc/100/fd/9"} {
		require.ErrorIs(t, e.openErr(root, path, unix.O_WRONLY|unix.O_CREAT), unix.ENOENT, path)
		require.ErrorIs(t, e.v.MkdirAt(root, nil, path, 0o755), unix.ENOENT, path)
		require.ErrorIs(t, e.v.SymlinkAt(root, "x", nil, path), unix.ENOENT, path)
		require.ErrorIs(t, e.v.MknodAt(root, nil, path, unix.S_IFIFO|0o644, 0), unix.ENOENT, path)
		require.ErrorIs(t, e.v.LinkAt(root, nil, "/proc/meminfo", nil, path, 0), unix.ENOENT, path)
	}
	require.ErrorIs(t, e.v.LinkAt(root, nil, "/proc/meminfo", nil, "/proc/version", 0), unix.EEXIST)

	// Nothing can be removed or renamed.
	require.ErrorIs(t, e.v.UnlinkAt(root, nil, "/proc/meminfo", 0), unix.EPERM)
	require.ErrorIs(t, e.v.UnlinkAt(root, nil, "/proc/self", 0), unix.EPERM)
	require.ErrorIs(t, e.v.UnlinkAt(root, nil, "/proc/100/fd/0", 0), unix.EPERM)
	require.ErrorIs(t, e.v.UnlinkAt(root, nil, "/proc/100", unix.AT_REMOVEDIR), unix.EPERM)
	require.ErrorIs(t, e.v.UnlinkAt(root, nil, "/proc/meminfo", unix.AT_REMOVEDIR), unix.ENOTDIR)
	require.ErrorIs(t, e.v.UnlinkAt(root, nil, "/proc/sys/kernel/ostype", 0), unix.EACCES)
	require.ErrorIs(t, e.v.UnlinkAt(root, nil, "/proc/nothing", 0), unix.ENOENT)
	require.ErrorIs(t, e.v.UnlinkAt(user, nil, "/proc/meminfo", 0), unix.EACCES)
	require.ErrorIs(t, e.v.RenameAt(root, nil, "/proc/meminfo", nil, "/proc/version", 0), unix.EPERM)
	require.ErrorIs(t, e.v.RenameAt(root, nil, "/proc/100/stat", nil, "/proc/100/status", 0), unix.EPERM)
	require.ErrorIs(t, e.v.RenameAt(root, nil, "/proc/meminfo", nil, "/proc/new", 0), unix.ENOENT)

	// Attributes.
	require.ErrorIs(t, e.v.ChmodAt(root, nil, "/proc/100/status", 0o600, 0), unix.EPERM)
	require.NoError(t, e.v.ChownAt(root, nil, "/proc/100/status", 0, 0, 0))
	require.Equal(t, uint32(1000), e.lstat(t, "/proc/100/status").Uid)
	require.ErrorIs(t, e.v.ChmodAt(root, nil, "/proc/sys/kernel/ostype", 0o600, 0), unix.EPERM)
	require.ErrorIs(t, e.v.ChownAt(root, nil, "/proc/sys/kernel/ostype", 0, 0, 0), unix.EPERM)
	require.NoError(t, e.v.UtimensAt(root, nil, "/proc/100/status", nil, 0))
}

func TestSeek(t *testing.T) {
	e := setup(t)
	ctx := e.root
	meminfo := e.open(t, ctx, "/proc/meminfo", unix.O_RDONLY)
	for _, whence := range []int{unix.SEEK_END, unix.SEEK_DATA, unix.SEEK_HOLE} {
		_, err := meminfo.Seek(ctx, 0, whence)
		require.ErrorIs(t, err, unix.EINVAL)
	}
	_, err := meminfo.Seek(ctx, -1, unix.SEEK_SET)
	require.ErrorIs(t, err, unix.EINVAL)
	off, err := meminfo.Seek(ctx, 3, unix.SEEK_SET)
	require.NoError(t, err)
	require.Equal(t, int64(3), off)
	buf := make([]byte, 6)
	n, err := meminfo.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "Total:", string(buf[:n]))
	off, err = meminfo.Seek(ctx, 1<<20, unix.SEEK_CUR)
	require.NoError(t, err)
	require.Equal(t, int64(1<<20+9), off)
	n, err = meminfo.Read(ctx, buf)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = meminfo.PRead(ctx, buf, 3)
	require.NoError(t, err)
	require.Equal(t, "Total:", string(buf[:n]))

	// cmdline, environ, auxv, /proc/sys and directories seek like files
	// of size 0.
	for _, path := range []string{"/proc/100/cmdline", "/proc/sys/kernel/ostype", "/proc", "/proc/100/fd"} {
		f := e.open(t, ctx, path, unix.O_RDONLY)
		off, err := f.Seek(ctx, 0, unix.SEEK_END)
		require.NoError(t, err, path)
		require.Zero(t, off, path)
		_, err = f.Seek(ctx, 0, unix.SEEK_DATA)
		require.ErrorIs(t, err, unix.ENXIO, path)
	}
	_, err = e.open(t, ctx, "/proc", unix.O_RDONLY).Read(ctx, buf)
	require.ErrorIs(t, err, unix.EISDIR)
}

func TestPermissions(t *testing.T) {
	e := setup(t)
	user := e.user
	require.ErrorIs(t, e.openErr(user, "/proc/1/environ", unix.O_RDONLY), unix.EACCES)
	require.ErrorIs(t, e.openErr(user, "/proc/1/auxv", unix.O_RDONLY), unix.EACCES)
	require.ErrorIs(t, e.openErr(user, "/proc/1/fd", unix.O_RDONLY|unix.O_DIRECTORY), unix.EACCES)
	var st unix.Stat_t
	require.ErrorIs(t, e.v.StatAt(user, nil, "/proc/1/fd/0", unix.AT_SYMLINK_NOFOLLOW, &st), unix.EACCES)
	for _, link := range []string{"exe", "cwd", "root"} {
		_, err := e.v.ReadlinkAt(user, nil, "/proc/1/"+link)
		require.ErrorIs(t, err, unix.EACCES, link)
		require.NotEmpty(t, e.readlink(t, e.root, "/proc/1/"+link))
	}
	require.Equal(t, "HOME=/\x00", e.read(t, e.root, "/proc/1/environ"))
	require.Equal(t, "init\n", e.read(t, user, "/proc/1/comm"))
}

func TestConcurrent(t *testing.T) {
	e := setup(t)
	// browse reads the files and lists /proc while processes go away.
	browse := func() error {
		for range 50 {
			for _, path := range []string{"/proc/1/status", "/proc/100/stat", "/proc/self/maps", "/proc/1/fd/0"} {
				f, err := e.v.OpenAt(e.root, nil, path, unix.O_RDONLY, 0)
				if err == unix.ENOENT {
					continue
				}
				if err != nil {
					return err
				}
				_, err = f.Read(e.root, make([]byte, 64))
				f.DecRef()
				if err != nil {
					return err
				}
			}
			f, err := e.v.OpenAt(e.root, nil, "/proc", unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return err
			}
			_, err = f.Getdents64(e.root, make([]byte, 4096))
			f.DecRef()
			if err != nil {
				return err
			}
		}
		return nil
	}
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- browse() }()
	}
	e.src.kill(1)
	for range cap(errs) {
		require.NoError(t, <-errs)
	}
}

func TestStatusDetails(t *testing.T) {
	e := setup(t)
	e.src.update(100, func(p *fakeProcess) {
		p.threads[0].Name = "a b\\c\n"
		p.fds = append(p.fds, procfs.FD{Num: 251, Target: "/dev/null"})
	})
	status := e.read(t, e.root, "/proc/100/status")
	require.Contains(t, status, "Name:\ta b\\\\c\\n\n")
	require.Contains(t, status, "FDSize:\t256\n")
	require.True(t, strings.HasPrefix(e.read(t, e.root, "/proc/100/stat"), "100 (a b\\c\n) S "))
	require.Equal(t, "a b\\c\n\n", e.read(t, e.root, "/proc/100/comm"))
}

func TestSysctlWrites(t *testing.T) {
	e := setup(t)
	root := e.root
	write := func(path, data string) (int, error) {
		f := e.open(t, root, "/proc/sys/"+path, unix.O_WRONLY)
		defer f.DecRef()
		return f.Write(root, []byte(data))
	}
	for _, c := range []struct {
		path, data string
		n          int
		err        error
		want       string
	}{
		{"fs/nr_open", "63", 0, unix.EINVAL, "1048576"},
		{"fs/nr_open", "2147483585", 0, unix.EINVAL, "1048576"},
		{"fs/nr_open", "-1", 0, unix.EINVAL, "1048576"},
		{"fs/nr_open", "12x", 0, unix.EINVAL, "1048576"},
		{"fs/nr_open", "", 0, nil, "1048576"},
		{"fs/nr_open", " \n", 0, unix.EINVAL, "1048576"},
		{"fs/nr_open", "99999999999999999999999", 0, unix.EINVAL, "1048576"},
		{"fs/nr_open", "64", 2, nil, "64"},
		{"fs/nr_open", " 0x100\n", 7, nil, "256"},
		{"fs/nr_open", "0100 junk", 5, nil, "64"},
		{"fs/nr_open", "2147483584", 10, nil, "2147483584"},
		{"fs/file-max", "-5", 0, unix.EINVAL, "9223372036854775807"},
		{"fs/file-max", "9223372036854775808", 0, unix.EINVAL, "9223372036854775807"},
		{"fs/file-max", "1000\n", 5, nil, "1000"},
		{"fs/pipe-max-size", "5000", 4, nil, "8192"},
		{"fs/pipe-max-size", "0", 1, nil, "4096"},
		{"fs/pipe-max-size", "2147483649", 0, unix.EINVAL, "4096"},
		{"fs/pipe-max-size", "2147483648", 10, nil, "2147483648"},
		{"kernel/pid_max", "300", 0, unix.EINVAL, "4194304"},
		{"kernel/pid_max", "4194305", 0, unix.EINVAL, "4194304"},
		{"kernel/pid_max", "301", 3, nil, "301"},
		{"vm/overcommit_memory", "3", 0, unix.EINVAL, "0"},
		{"vm/overcommit_memory", "-0", 2, nil, "0"},
		{"vm/overcommit_memory", "2", 1, nil, "2"},
		{"vm/mmap_min_addr", "4096", 0, unix.EPERM, "65536"},
		{"kernel/hostname", "box\nignored", 11, nil, "box"},
		{"kernel/domainname", strings.Repeat("d", 70), 70, nil, strings.Repeat("d", 64)},
	} {
		n, err := write(c.path, c.data)
		if c.err != nil {
			require.ErrorIs(t, err, c.err, c.path+" "+c.data)
		} else {
			require.NoError(t, err, c.path+" "+c.data)
			require.Equal(t, c.n, n, c.path+" "+c.data)
		}
		require.Equal(t, c.want+"\n", e.read(t, root, "/proc/sys/"+c.path), c.path+" "+c.data)
	}

	// A string write continues at its offset; a numeric one at a non-zero
	// offset changes nothing.
	f := e.open(t, root, "/proc/sys/kernel/hostname", unix.O_WRONLY)
	defer f.DecRef()
	_, err := f.Write(root, []byte("ab"))
	require.NoError(t, err)
	_, err = f.Write(root, []byte("cd\n"))
	require.NoError(t, err)
	require.Equal(t, "abcd\n", e.read(t, root, "/proc/sys/kernel/hostname"))
	n, err := f.PWrite(root, []byte("zz"), 10)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, "abcd\n", e.read(t, root, "/proc/sys/kernel/hostname"))
	g := e.open(t, root, "/proc/sys/kernel/pid_max", unix.O_WRONLY)
	defer g.DecRef()
	n, err = g.PWrite(root, []byte("1000"), 1)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, "301\n", e.read(t, root, "/proc/sys/kernel/pid_max"))
}

func TestFDLinksReachTheOpenFile(t *testing.T) {
	e := setup(t)
	ctx := e.root
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer r.DecRef()
	defer w.DecRef()
	prog := e.open(t, ctx, "/bin/prog", unix.O_RDONLY)
	defer prog.DecRef()
	require.NoError(t, e.v.UnlinkAt(ctx, nil, "/bin/prog", 0))
	e.src.update(100, func(p *fakeProcess) {
		p.fds = append(p.fds,
			procfs.FD{Num: 7, File: r, Target: "pipe:[3]", Flags: unix.O_RDONLY},
			procfs.FD{Num: 8, File: w, Target: "pipe:[3]", Flags: unix.O_WRONLY},
			procfs.FD{Num: 9, File: prog, Target: "/bin/prog (deleted)", Flags: unix.O_RDONLY})
	})

	// Opening a pipe's link adds an end to that pipe, without waiting.
	reader := e.open(t, ctx, "/proc/100/fd/7", unix.O_RDONLY)
	defer reader.DecRef()
	writer := e.open(t, ctx, "/proc/self/fd/8", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	_, err = writer.Write(ctx, []byte("through the link"))
	require.NoError(t, err)
	writer.DecRef()
	buf := make([]byte, 64)
	n, err := reader.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "through the link", string(buf[:n]))
	var st unix.Stat_t
	require.NoError(t, e.v.StatAt(ctx, nil, "/proc/100/fd/8", 0, &st))
	require.Equal(t, uint32(unix.S_IFIFO), st.Mode&unix.S_IFMT)
	require.Equal(t, "pipe:[3]", e.readlink(t, ctx, "/proc/100/fd/7"), "readlink still shows the name")

	// A deleted file is still reached.
	require.Equal(t, "\x7fELF", e.read(t, ctx, "/proc/100/fd/9"))

	// Where magic links are refused, or the link itself is asked for.
	_, err = e.v.OpenAt2(ctx, nil, "/proc/100/fd/9", &unix.OpenHow{Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_NO_MAGICLINKS})
	require.ErrorIs(t, err, unix.ELOOP)
	require.ErrorIs(t, e.openErr(ctx, "/proc/100/fd/9", unix.O_RDONLY|unix.O_NOFOLLOW), unix.ELOOP)
	require.ErrorIs(t, e.openErr(ctx, "/proc/100/fd/7", unix.O_PATH), unix.ENXIO, "an O_PATH file needs a location")
	require.ErrorIs(t, e.openErr(ctx, "/proc/100/fd/7/x", unix.O_RDONLY), unix.ENOTDIR)
	require.ErrorIs(t, e.openErr(ctx, "/proc/100/fd/7/", unix.O_RDONLY), unix.ENOTDIR)
	require.ErrorIs(t, e.openErr(ctx, "/proc/100/fd/1", unix.O_RDONLY), unix.ENOENT, "a link without a file is followed as text")
}
