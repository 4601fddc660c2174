package hostfs_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/internal/vfstest"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/hostfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

const secret = "SECRET-OUTSIDE-THE-TREE"

// hostTree builds base/outside/secret and base/tree, and returns the
// tree's path.
func hostTree(t *testing.T) (base, tree string) {
	t.Helper()
	base = t.TempDir()
	tree = filepath.Join(base, "tree")
	require.NoError(t, os.MkdirAll(filepath.Join(base, "outside"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "outside", "secret"), []byte(secret), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "sub", "deeper"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "etc", "passwd"), []byte("inside passwd"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "file"), []byte("file data"), 0o640))
	return base, tree
}

func mount(t *testing.T, dir string, opts hostfs.Options) (*hostfs.FS, *vfs.VFS, *vfs.Context) {
	t.Helper()
	fs, err := hostfs.New(dir, opts)
	require.NoError(t, err)
	v, err := vfs.New(context.Background(), fs)
	require.NoError(t, err)
	root := v.Root()
	return fs, v, &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: root, Cwd: root}
}

func read(v *vfs.VFS, ctx *vfs.Context, path string) (string, error) {
	f, err := v.OpenAt(ctx, nil, path, unix.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.DecRef()
	buf := make([]byte, 4096)
	n, err := f.Read(ctx, buf)
	return string(buf[:n]), err
}

func TestReadWrite(t *testing.T) {
	_, tree := hostTree(t)
	fs, v, ctx := mount(t, tree, hostfs.Options{})
	got, err := read(v, ctx, "/file")
	require.NoError(t, err)
	require.Equal(t, "file data", got)
	var st unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, "/file", 0, &st))
	var host unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(tree, "file"), &host))
	require.Equal(t, host.Ino, st.Ino)
	require.Equal(t, host.Mode, st.Mode)
	require.Equal(t, host.Uid, st.Uid)
	require.Equal(t, host.Mtim, st.Mtim)

	f, err := v.OpenAt(ctx, nil, "/sub/new", unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
	require.NoError(t, err)
	_, err = f.Write(ctx, []byte("abc"))
	require.NoError(t, err)
	require.NoError(t, f.SetStatusFlags(unix.O_APPEND))
	_, err = f.PWrite(ctx, []byte("def"), 0)
	require.NoError(t, err)
	_, err = f.Write(ctx, []byte("g"))
	require.NoError(t, err)
	off, err := f.Seek(ctx, 0, unix.SEEK_CUR)
	require.NoError(t, err)
	require.Equal(t, int64(7), off)
	require.NoError(t, f.Truncate(ctx, 6))
	f.DecRef()
	data, err := os.ReadFile(filepath.Join(tree, "sub", "new"))
	require.NoError(t, err)
	require.Equal(t, "abcdef", string(data))
	fi, err := os.Stat(filepath.Join(tree, "sub", "new"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	require.NoError(t, v.MkdirAt(ctx, nil, "/d", 0o750))
	require.NoError(t, v.SymlinkAt(ctx, "../file", nil, "/d/link"))
	got, err = read(v, ctx, "/d/link")
	require.NoError(t, err)
	require.Equal(t, "file data", got)
	target, err := os.Readlink(filepath.Join(tree, "d", "link"))
	require.NoError(t, err)
	require.Equal(t, "../file", target)
	require.NoError(t, v.RenameAt(ctx, nil, "/sub/new", nil, "/d/renamed", 0))
	got, err = read(v, ctx, "/d/renamed")
	require.NoError(t, err)
	require.Equal(t, "abcdef", got)
	require.NoError(t, v.RenameAt(ctx, nil, "/d", nil, "/sub/d2", 0))
	got, err = read(v, ctx, "/sub/d2/renamed")
	require.NoError(t, err)
	require.Equal(t, "abcdef", got)
	require.NoError(t, v.LinkAt(ctx, nil, "/sub/d2/renamed", nil, "/hard", 0))
	require.NoError(t, v.UnlinkAt(ctx, nil, "/sub/d2/renamed", 0))
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/sub/d2", unix.AT_REMOVEDIR), unix.ENOTEMPTY)
	require.NoError(t, v.ChmodAt(ctx, nil, "/hard", 0o604, 0))
	times := [2]unix.Timespec{{Sec: 10}, {Sec: 20}}
	require.NoError(t, v.UtimensAt(ctx, nil, "/hard", &times, 0))
	require.NoError(t, unix.Stat(filepath.Join(tree, "hard"), &host))
	require.Equal(t, uint32(unix.S_IFREG|0o604), host.Mode)
	require.Equal(t, int64(20), host.Mtim.Sec)
	require.ErrorIs(t, v.MknodAt(ctx, nil, "/dev", unix.S_IFCHR|0o666, unix.Mkdev(1, 3)), unix.EPERM)

	// Listing.
	dir, err := v.OpenAt(ctx, nil, "/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	n, err := dir.Getdents64(ctx, buf)
	require.NoError(t, err)
	names := vfstest.Names(vfstest.ParseDirents(buf[:n]))
	slices.Sort(names)
	require.Equal(t, []string{".", "..", "etc", "file", "hard", "sub"}, names)
	dir.DecRef()

	v.Release()
	require.Zero(t, fs.OpenFDs())
}

func TestSymlinksCannotEscape(t *testing.T) {
	base, tree := hostTree(t)
	links := map[string]string{
		"etc_passwd":        "/etc/passwd",
		"up":                "../../..",
		"rel":               "../outside/secret",
		"sub/deeper/climb":  "../../../outside/secret",
		"sub/deeper/climb2": "../../../../../../../../" + base + "/outside/secret",
		"abs_secret":        filepath.Join(base, "outside", "secret"),
		"abs_outside":       filepath.Join(base, "outside"),
		"root":              "/",
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(tree, name)))
	}
	fs, v, ctx := mount(t, tree, hostfs.Options{})
	defer v.Release()
	got, err := read(v, ctx, "/etc_passwd")
	require.NoError(t, err)
	require.Equal(t, "inside passwd", got)
	for _, p := range []string{
		"/rel", "/sub/deeper/climb", "/sub/deeper/climb2", "/abs_secret", "/abs_outside/secret",
		"/up/outside/secret", "/root/outside/secret", "/../outside/secret", "/sub/../../outside/secret",
		"/up/" + base + "/outside/secret", "/root" + base + "/outside/secret",
		"/up/etc/passwd",
	} {
		got, err := read(v, ctx, p)
		require.NotContains(t, got, secret, p)
		if err == nil {
			require.Equal(t, "inside passwd", got, p)
		} else {
			require.ErrorIs(t, err, unix.ENOENT, p)
		}
	}
	target, err := v.ReadlinkAt(ctx, nil, "/abs_secret")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(base, "outside", "secret"), target)

	// Hard links cannot cross mounts.
	require.NoError(t, v.Mount(ctx, nil, "/sub", tmpfs.New(tmpfs.Options{}), 0))
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/file", nil, "/sub/x", 0), unix.EXDEV)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/file", nil, "/sub/x", 0), unix.EXDEV)
	require.Equal(t, int64(1), fs.OpenFDs())
}

func TestReadOnly(t *testing.T) {
	_, tree := hostTree(t)
	fs, v, ctx := mount(t, tree, hostfs.Options{ReadOnly: true})
	before := snapshot(t, tree)
	flags := []int{unix.O_WRONLY, unix.O_RDWR, unix.O_RDONLY | unix.O_TRUNC, unix.O_WRONLY | unix.O_CREAT}
	for _, fl := range flags {
		_, err := v.OpenAt(ctx, nil, "/file", fl, 0o644)
		require.ErrorIs(t, err, unix.EROFS)
	}
	_, err := v.OpenAt(ctx, nil, "/new", unix.O_WRONLY|unix.O_CREAT, 0o644)
	require.ErrorIs(t, err, unix.EROFS)
	require.ErrorIs(t, v.MkdirAt(ctx, nil, "/d", 0o755), unix.EROFS)
	require.ErrorIs(t, v.SymlinkAt(ctx, "x", nil, "/s"), unix.EROFS)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/file", 0), unix.EROFS)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/sub/deeper", unix.AT_REMOVEDIR), unix.EROFS)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/file", nil, "/file2", 0), unix.EROFS)
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/file", nil, "/file2", 0), unix.EROFS)
	require.ErrorIs(t, v.ChmodAt(ctx, nil, "/file", 0o777, 0), unix.EROFS)
	require.ErrorIs(t, v.ChownAt(ctx, nil, "/file", 1, 1, 0), unix.EROFS)
	require.ErrorIs(t, v.UtimensAt(ctx, nil, "/file", nil, 0), unix.EROFS)
	require.ErrorIs(t, v.TruncateAt(ctx, nil, "/file", 0), unix.EROFS)
	got, err := read(v, ctx, "/file")
	require.NoError(t, err)
	require.Equal(t, "file data", got)
	st, err := v.StatfsAt(ctx, nil, "/")
	require.NoError(t, err)
	require.NotZero(t, st.Flags&unix.ST_RDONLY)
	require.Equal(t, before, snapshot(t, tree))
	v.Release()
	require.Zero(t, fs.OpenFDs())
}

// snapshot records every path, mode and content under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += ":" + string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			v += ":" + l
		}
		out[rel] = v
		return nil
	}))
	return out
}

func countProcFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

func TestNoHostFDLeaks(t *testing.T) {
	_, tree := hostTree(t)
	before := countProcFDs(t)
	fs, v, ctx := mount(t, tree, hostfs.Options{})
	var files []*vfs.File
	for range 20 {
		f, err := v.OpenAt(ctx, nil, "/file", unix.O_RDONLY, 0)
		require.NoError(t, err)
		files = append(files, f)
		d, err := v.OpenAt(ctx, nil, "/sub", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		require.NoError(t, err)
		files = append(files, d)
		var st unix.Stat_t
		require.NoError(t, v.StatAt(ctx, nil, "/sub/deeper", 0, &st))
	}
	require.Equal(t, int64(41), fs.OpenFDs())
	f := files[0]
	f.IncRef()
	for _, f := range files {
		f.DecRef()
	}
	require.Equal(t, int64(2), fs.OpenFDs())
	f.DecRef()
	v.Release()
	require.Zero(t, fs.OpenFDs())
	require.Equal(t, before, countProcFDs(t))
}

// TestSwapRace swaps a directory of the tree for symbolic links to
// outside the tree while paths through it are resolved: the sentinel
// outside is never read.
func TestSwapRace(t *testing.T) {
	base, tree := hostTree(t)
	dir := filepath.Join(tree, "dir")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("inside"), 0o644))
	outside := filepath.Join(base, "outside")
	require.NoError(t, os.WriteFile(filepath.Join(outside, "etc"), []byte(secret), 0o644))
	fs, v, ctx := mount(t, tree, hostfs.Options{})
	defer v.Release()
	got, err := read(v, ctx, "/dir/secret")
	require.NoError(t, err)
	require.Equal(t, "inside", got)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		targets := []string{outside, "/", "../outside", "../../../../../../" + outside}
		for i := 0; !stop.Load(); i++ {
			if os.Rename(dir, dir+".real") != nil {
				continue
			}
			_ = os.Symlink(targets[i%len(targets)], dir)
			time.Sleep(time.Microsecond)
			_ = os.Remove(dir)
			_ = os.Rename(dir+".real", dir)
		}
	})
	deadline := time.Now().Add(500 * time.Millisecond)
	reads := 0
	for time.Now().Before(deadline) {
		for _, p := range []string{"/dir/secret", "/dir/etc", "/dir/outside/secret"} {
			got, err := read(v, ctx, p)
			require.NotContains(t, got, secret)
			require.NotContains(t, got, "root:")
			if err == nil {
				require.Equal(t, "inside", got)
				reads++
			}
		}
		var st unix.Stat_t
		_ = v.StatAt(ctx, nil, "/dir/x", 0, &st)
	}
	stop.Store(true)
	wg.Wait()
	require.Positive(t, reads)
	require.Equal(t, int64(1), fs.OpenFDs())
}

// TestSingleFileMount mounts one host file over a file of a tmpfs, at
// its host path, as the sandbox does with its executable.
func TestSingleFileMount(t *testing.T) {
	base, tree := hostTree(t)
	exe := filepath.Join(tree, "sub", "prog")
	require.NoError(t, os.WriteFile(exe, []byte("\x7fELF program"), 0o751))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "sub", "neighbour"), []byte("n"), 0o644))
	require.NoError(t, unix.Mkfifo(filepath.Join(base, "fifo"), 0o644))
	before := snapshot(t, tree)
	_, err := hostfs.NewFile(filepath.Join(tree, "sub"))
	require.ErrorIs(t, err, unix.EISDIR)
	_, err = hostfs.NewFile(filepath.Join(tree, "nope"))
	require.ErrorIs(t, err, unix.ENOENT)
	_, err = hostfs.NewFile(filepath.Join(base, "fifo"))
	require.ErrorIs(t, err, unix.EINVAL)

	fs, err := hostfs.NewFile(exe)
	require.NoError(t, err)
	v, err := vfs.New(context.Background(), tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	root := v.Root()
	ctx := &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: root, Cwd: root}
	dir := filepath.Dir(exe)
	p := ""
	for _, c := range strings.Split(dir[1:], "/") {
		p += "/" + c
		require.NoError(t, v.MkdirAt(ctx, nil, p, 0o755))
	}
	f, err := v.OpenAt(ctx, nil, exe, unix.O_WRONLY|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	_, err = f.Write(ctx, []byte("placeholder"))
	require.NoError(t, err)
	f.DecRef()
	var under unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, exe, 0, &under))
	require.ErrorIs(t, v.Mount(ctx, nil, dir, fs, 0), unix.ENOTDIR)
	require.ErrorIs(t, v.Mount(ctx, nil, exe, tmpfs.New(tmpfs.Options{}), 0), unix.ENOTDIR)
	require.NoError(t, v.Mount(ctx, nil, exe, fs, 0))

	got, err := read(v, ctx, exe)
	require.NoError(t, err)
	require.Equal(t, "\x7fELF program", got)
	var st, host unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, exe, 0, &st))
	require.NoError(t, unix.Stat(exe, &host))
	require.Equal(t, uint32(unix.S_IFREG|0o751), st.Mode)
	require.Equal(t, int64(len("\x7fELF program")), st.Size)
	require.Equal(t, host.Ino, st.Ino)
	require.Equal(t, host.Mtim, st.Mtim)
	require.NotEqual(t, under.Dev, st.Dev)

	// Nothing else of the host directory shows.
	require.ErrorIs(t, v.StatAt(ctx, nil, filepath.Join(dir, "neighbour"), 0, &st), unix.ENOENT)
	require.ErrorIs(t, v.StatAt(ctx, nil, exe+"/../neighbour", 0, &st), unix.ENOTDIR)
	require.ErrorIs(t, v.StatAt(ctx, nil, exe+"/", 0, &st), unix.ENOTDIR)
	d, err := v.OpenAt(ctx, nil, dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	buf := make([]byte, 4096)
	n, err := d.Getdents64(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, []string{".", "..", "prog"}, vfstest.Names(vfstest.ParseDirents(buf[:n])))
	d.DecRef()

	// Writes fail, the mount point stays.
	for _, fl := range []int{unix.O_WRONLY, unix.O_RDWR, unix.O_RDONLY | unix.O_TRUNC, unix.O_WRONLY | unix.O_APPEND} {
		_, err := v.OpenAt(ctx, nil, exe, fl, 0)
		require.ErrorIs(t, err, unix.EROFS)
	}
	require.ErrorIs(t, v.TruncateAt(ctx, nil, exe, 0), unix.EROFS)
	require.ErrorIs(t, v.ChmodAt(ctx, nil, exe, 0o777, 0), unix.EROFS)
	require.ErrorIs(t, v.ChownAt(ctx, nil, exe, 1, 1, 0), unix.EROFS)
	require.ErrorIs(t, v.UtimensAt(ctx, nil, exe, nil, 0), unix.EROFS)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, exe, 0), unix.EBUSY)
	require.ErrorIs(t, v.RenameAt(ctx, nil, exe, nil, "/moved", 0), unix.EBUSY)
	sfs, err := v.StatfsAt(ctx, nil, exe)
	require.NoError(t, err)
	require.NotZero(t, sfs.Flags&unix.ST_RDONLY)

	// The file keeps its path, for /proc/self/exe.
	f, err = v.OpenAt(ctx, nil, exe, unix.O_RDONLY, 0)
	require.NoError(t, err)
	vd, ok := f.VirtualDentry()
	require.True(t, ok)
	p, reachable := v.PathOf(root, vd)
	require.True(t, reachable)
	require.Equal(t, exe, p)
	n, err = f.PRead(ctx, buf[:4], 1)
	require.NoError(t, err)
	require.Equal(t, "ELF ", string(buf[:n]))
	require.Equal(t, int64(2), fs.OpenFDs())
	f.DecRef()
	require.Equal(t, int64(1), fs.OpenFDs())
	v.Release()
	require.Zero(t, fs.OpenFDs())
	require.Equal(t, before, snapshot(t, tree))
}

// TestHostStatIsTheOpenFile checks that an open host file's HostStat
// describes the file it has open, with the host's device number, even
// after another file took its name on the host.
func TestHostStatIsTheOpenFile(t *testing.T) {
	_, tree := hostTree(t)
	_, v, ctx := mount(t, tree, hostfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/file", unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	var want unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(tree, "file"), &want))
	replacement := filepath.Join(tree, "replacement")
	require.NoError(t, os.WriteFile(replacement, []byte("other"), 0o644))
	require.NoError(t, os.Rename(replacement, filepath.Join(tree, "file")))

	host, ok := f.Impl().(vfs.HostFile)
	require.True(t, ok)
	st, err := host.HostStat()
	require.NoError(t, err)
	require.Equal(t, want.Ino, st.Ino)
	require.Equal(t, want.Dev, unix.Mkdev(st.Dev_major, st.Dev_minor))
	require.Equal(t, uint64(len("file data")), st.Size)
}
