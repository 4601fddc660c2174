package overlay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/internal/vfstest"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/overlay"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func hostStat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(p, &st))
	return st
}

func TestMerge(t *testing.T) {
	ctx := context.Background()
	upper := tmpfs.New(tmpfs.Options{})
	root := upper.Root()
	etc, err := root.Create(ctx, "etc", &vfs.CreateOptions{Mode: unix.S_IFDIR | 0o755})
	require.NoError(t, err)
	_, err = etc.Create(ctx, "motd", &vfs.CreateOptions{Mode: unix.S_IFREG | 0o644})
	require.NoError(t, err)
	_, err = root.Create(ctx, "empty", &vfs.CreateOptions{Mode: unix.S_IFREG | 0o600})
	require.NoError(t, err)
	h1, err := root.Create(ctx, "h1", &vfs.CreateOptions{Mode: unix.S_IFREG | 0o644})
	require.NoError(t, err)
	require.NoError(t, root.Link(ctx, "h2", h1))
	e := mount(t, hostTree(t), upper, false)

	require.Equal(t, []string{"bin", "empty", "etc", "h1", "h2", "link", "usr", "var"}, e.names(t, "/"))
	require.Equal(t, []string{"hosts", "motd", "passwd", "ssl"}, e.names(t, "/etc"))
	require.Equal(t, []string{"a.txt", "b.txt", "sub"}, e.names(t, "/usr/share/doc"))
	// An upper non-directory hides a lower directory.
	require.Equal(t, uint32(unix.S_IFREG|0o600), e.stat(t, "/empty").Mode)
	require.ErrorIs(t, e.statErr("/empty/x"), unix.ENOTDIR)
	require.Equal(t, "root:x:0:0\n", e.read(t, "/link"))
	require.Equal(t, "", e.read(t, "/etc/motd"))
	require.ErrorIs(t, e.statErr("/etc/nope"), unix.ENOENT)
	require.ErrorIs(t, e.statErr("/nope/x"), unix.ENOENT)

	// The merged /etc has the host's inode number and one link; the root
	// has the host root's attributes.
	st := e.stat(t, "/etc")
	require.Equal(t, hostStat(t, filepath.Join(e.host, "etc")).Ino, st.Ino)
	require.Equal(t, uint64(1), st.Nlink)
	rst, host := e.stat(t, "/"), hostStat(t, e.host)
	require.Equal(t, host.Mode, rst.Mode)
	require.Equal(t, host.Mtim, rst.Mtim)
	require.Equal(t, host.Uid, rst.Uid)
	for _, p := range []string{"/etc", "/etc/passwd", "/etc/motd", "/bin/sh", "/link"} {
		require.Equal(t, rst.Dev, e.stat(t, p).Dev, p)
	}
	sfs, err := e.v.StatfsAt(e.ctx, nil, "/")
	require.NoError(t, err)
	require.Equal(t, int64(unix.OVERLAYFS_SUPER_MAGIC), sfs.Type)

	// Hard links of the upper layer are one inode.
	require.Equal(t, e.stat(t, "/h1").Ino, e.stat(t, "/h2").Ino)
	require.NoError(t, e.v.RenameAt(e.ctx, nil, "/h1", nil, "/h2", 0))
	require.NoError(t, e.statErr("/h1"))
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/h1", 0))
	require.Equal(t, uint64(1), e.stat(t, "/h2").Nlink)
}

func TestNew(t *testing.T) {
	ctx := context.Background()
	file := tmpfs.New(tmpfs.Options{})
	f, err := file.Root().Create(ctx, "f", &vfs.CreateOptions{Mode: unix.S_IFREG | 0o644})
	require.NoError(t, err)
	_, err = overlay.New(ctx, fileFS{file, f}, tmpfs.New(tmpfs.Options{}))
	require.ErrorIs(t, err, unix.ENOTDIR)
	_, err = overlay.New(ctx, tmpfs.New(tmpfs.Options{}), fileFS{file, f})
	require.ErrorIs(t, err, unix.ENOTDIR)

	// Any file system can be a layer.
	lower := tmpfs.New(tmpfs.Options{Mode: 0o755})
	_, err = lower.Root().Create(ctx, "f", &vfs.CreateOptions{Mode: unix.S_IFREG | 0o644})
	require.NoError(t, err)
	ofs, err := overlay.New(ctx, lower, tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	v, err := vfs.New(ctx, ofs)
	require.NoError(t, err)
	defer v.Release()
	root := v.Root()
	vctx := &vfs.Context{Context: ctx, Creds: vfs.RootCredentials(), Root: root, Cwd: root}
	require.NoError(t, v.UnlinkAt(vctx, nil, "/f", 0))
	var st unix.Stat_t
	require.ErrorIs(t, v.StatAt(vctx, nil, "/f", 0, &st), unix.ENOENT)
	require.NoError(t, v.StatAt(vctx, nil, "/", 0, &st))
	require.Equal(t, uint32(unix.S_IFDIR|0o755), st.Mode)
	_, err = lower.Root().Lookup(ctx, "f")
	require.NoError(t, err)
}

// fileFS is a file system whose root is a file.
type fileFS struct {
	*tmpfs.FS
	root vfs.Inode
}

func (f fileFS) Root() vfs.Inode {
	return f.root
}

func TestCopyUp(t *testing.T) {
	dir := hostTree(t)
	writeHost(t, filepath.Join(dir, "bin", "su"), []byte("su"), 0o755)
	require.NoError(t, unix.Chmod(filepath.Join(dir, "bin", "su"), 0o4755))
	e := mount(t, dir, tmpfs.New(tmpfs.Options{}), false)
	files := []string{
		"/bin/sh", "/bin/su", "/etc/passwd", "/etc/hosts", "/etc/ssl/cert.pem", "/link", "/usr/share/doc/a.txt",
		"/usr/share/doc/b.txt", "/usr/share/doc/sub/c.txt", "/var/log/x.log", "/var/empty",
	}
	before := map[string]unix.Stat_t{}
	for _, p := range files {
		before[p] = e.stat(t, p)
	}

	// Reading copies nothing up.
	require.Equal(t, "root:x:0:0\n", e.read(t, "/etc/passwd"))
	require.Equal(t, "root:x:0:0\n", e.read(t, "/link"))
	require.Equal(t, []string{"a.txt", "b.txt", "sub"}, e.names(t, "/usr/share/doc"))
	require.Equal(t, []string{}, e.upperNames(t, "/"))

	// chmod keeps data, owner and times; the parents are copied up first,
	// with their attributes.
	ts := unix.NsecToTimespec(t0.UnixNano())
	require.NoError(t, e.v.ChmodAt(e.ctx, nil, "/usr/share/doc/sub/c.txt", 0o600, 0))
	st := e.stat(t, "/usr/share/doc/sub/c.txt")
	require.Equal(t, uint32(unix.S_IFREG|0o600), st.Mode)
	require.Equal(t, ts, st.Mtim)
	require.Equal(t, before["/usr/share/doc/sub/c.txt"].Uid, st.Uid)
	require.Equal(t, "doc c", e.read(t, "/usr/share/doc/sub/c.txt"))
	require.True(t, e.inUpper(t, "/usr/share/doc/sub/c.txt"))
	require.False(t, e.inUpper(t, "/usr/share/doc/a.txt"))
	for _, d := range []string{"/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/sub"} {
		st := e.stat(t, d)
		require.Equal(t, uint32(unix.S_IFDIR|0o755), st.Mode, d)
		require.Equal(t, ts, st.Mtim, d)
	}
	require.Equal(t, []string{"a.txt", "b.txt", "sub"}, e.names(t, "/usr/share/doc"))

	// Opening for writing.
	e.write(t, "/usr/share/doc/a.txt", unix.O_WRONLY, "XY")
	require.Equal(t, "XYc a", e.read(t, "/usr/share/doc/a.txt"))
	require.NotEqual(t, ts, e.stat(t, "/usr/share/doc/a.txt").Mtim)
	e.write(t, "/usr/share/doc/b.txt", unix.O_WRONLY|unix.O_APPEND, "!")
	require.Equal(t, "doc b!", e.read(t, "/usr/share/doc/b.txt"))
	e.write(t, "/etc/passwd", unix.O_WRONLY|unix.O_TRUNC, "new")
	require.Equal(t, "new", e.read(t, "/etc/passwd"))
	f, err := e.v.OpenAt(e.ctx, nil, "/etc/hosts", unix.O_RDWR, 0)
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, err := f.Read(e.ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1 localhost\n", string(buf[:n]))
	_, err = f.PWrite(e.ctx, []byte("::1"), 0)
	require.NoError(t, err)
	f.DecRef()
	require.Equal(t, "::1.0.0.1 localhost\n", e.read(t, "/etc/hosts"))

	// Truncation, chown, utimens, set-id bits, symbolic links and
	// directories.
	require.NoError(t, e.v.TruncateAt(e.ctx, nil, "/bin/sh", 3))
	require.Equal(t, "#!/", e.read(t, "/bin/sh"))
	require.NoError(t, e.v.TruncateAt(e.ctx, nil, "/var/log/x.log", 6))
	require.Equal(t, "log\x00\x00\x00", e.read(t, "/var/log/x.log"))
	require.Equal(t, uint32(unix.S_IFREG|0o640), e.stat(t, "/var/log/x.log").Mode)
	require.NoError(t, e.v.ChownAt(e.ctx, nil, "/etc/ssl/cert.pem", 5, 6, 0))
	st = e.stat(t, "/etc/ssl/cert.pem")
	require.Equal(t, [2]uint32{5, 6}, [2]uint32{st.Uid, st.Gid})
	require.Equal(t, uint32(unix.S_IFREG|0o600), st.Mode)
	require.Equal(t, ts, st.Mtim)
	require.Equal(t, "CERT", e.read(t, "/etc/ssl/cert.pem"))
	require.Equal(t, uint32(unix.S_IFDIR|0o700), e.stat(t, "/etc/ssl").Mode)
	require.NoError(t, e.v.UtimensAt(e.ctx, nil, "/bin/su", &[2]unix.Timespec{{Sec: 1}, {Sec: 2}}, 0))
	st = e.stat(t, "/bin/su")
	require.Equal(t, uint32(unix.S_IFREG|0o4755), st.Mode)
	require.Equal(t, int64(2), st.Mtim.Sec)
	require.Equal(t, "su", e.read(t, "/bin/su"))
	require.NoError(t, e.v.ChownAt(e.ctx, nil, "/link", 7, 7, unix.AT_SYMLINK_NOFOLLOW))
	st = e.stat(t, "/link")
	require.Equal(t, uint32(7), st.Uid)
	require.Equal(t, uint32(unix.S_IFLNK), st.Mode&unix.S_IFMT)
	require.Equal(t, ts, st.Mtim)
	target, err := e.v.ReadlinkAt(e.ctx, nil, "/link")
	require.NoError(t, err)
	require.Equal(t, "etc/passwd", target)
	require.NoError(t, e.v.ChmodAt(e.ctx, nil, "/var/empty", 0o700, 0))
	require.Equal(t, uint32(unix.S_IFDIR|0o700), e.stat(t, "/var/empty").Mode)
	require.Empty(t, e.names(t, "/var/empty"))

	// Every object kept its inode number.
	for p, st := range before {
		require.Equal(t, st.Ino, e.stat(t, p).Ino, p)
	}
	require.Equal(t, []string{"bin", "etc", "link", "usr", "var"}, e.upperNames(t, "/"))
}

func TestLargeSparseCopyUp(t *testing.T) {
	dir := hostTree(t)
	const size = 16 << 20
	data := make([]byte, 300<<10+17)
	_, _ = rand.Read(data)
	f, err := os.Create(filepath.Join(dir, "sparse"))
	require.NoError(t, err)
	for off, b := range map[int64][]byte{0: []byte("head"), 8<<20 + 5: data, size - 4: []byte("tail")} {
		_, err := f.WriteAt(b, off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	random := make([]byte, 1<<20+123)
	_, _ = rand.Read(random)
	writeHost(t, filepath.Join(dir, "random"), random, 0o644)
	e := mount(t, dir, tmpfs.New(tmpfs.Options{}), false)

	e.write(t, "/sparse", unix.O_WRONLY|unix.O_APPEND, "!")
	want, err := os.ReadFile(filepath.Join(dir, "sparse"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(append(want, '!'), []byte(e.read(t, "/sparse"))))
	st := e.stat(t, "/sparse")
	require.Equal(t, int64(size+1), st.Size)
	require.Less(t, st.Blocks, int64(2<<20/512))
	sf, err := e.v.OpenAt(e.ctx, nil, "/sparse", unix.O_RDONLY, 0)
	require.NoError(t, err)
	off, err := sf.Seek(e.ctx, 1<<20, unix.SEEK_DATA)
	require.NoError(t, err)
	require.Equal(t, int64(8<<20), off)
	sf.DecRef()

	f2, err := e.v.OpenAt(e.ctx, nil, "/random", unix.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f2.PWrite(e.ctx, []byte("ZZ"), 1<<19)
	require.NoError(t, err)
	f2.DecRef()
	copy(random[1<<19:], "ZZ")
	require.True(t, bytes.Equal(random, []byte(e.read(t, "/random"))))
}

func TestCopyUpFailure(t *testing.T) {
	dir := hostTree(t)
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	writeHost(t, filepath.Join(dir, "big"), big, 0o644)
	writeHost(t, filepath.Join(dir, "big2"), big, 0o644)
	e := mount(t, dir, tmpfs.New(tmpfs.Options{MaxBytes: 256 << 10}), false)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	cancelled := *e.ctx
	cancelled.Context = cctx
	_, err := e.v.OpenAt(&cancelled, nil, "/big", unix.O_RDWR, 0)
	require.ErrorIs(t, err, unix.EINTR)
	require.False(t, e.inUpper(t, "/big"))
	_, err = e.v.OpenAt(e.ctx, nil, "/big", unix.O_WRONLY, 0)
	require.ErrorIs(t, err, unix.ENOSPC)
	require.ErrorIs(t, e.v.ChmodAt(e.ctx, nil, "/big", 0o600, 0), unix.ENOSPC)
	require.False(t, e.inUpper(t, "/big"))
	require.Equal(t, uint32(unix.S_IFREG|0o644), e.stat(t, "/big").Mode)
	require.True(t, bytes.Equal(big, []byte(e.read(t, "/big"))))
	// O_TRUNC copies no data; a truncation only what it keeps.
	e.write(t, "/big", unix.O_WRONLY|unix.O_TRUNC, "small")
	require.Equal(t, "small", e.read(t, "/big"))
	require.NoError(t, e.v.TruncateAt(e.ctx, nil, "/big2", 100))
	require.Equal(t, string(big[:100]), e.read(t, "/big2"))
}

func TestWhiteouts(t *testing.T) {
	e := setup(t)
	ts := unix.NsecToTimespec(t0.UnixNano())
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/etc/passwd", 0))
	require.ErrorIs(t, e.statErr("/etc/passwd"), unix.ENOENT)
	var st unix.Stat_t
	require.ErrorIs(t, e.v.StatAt(e.ctx, nil, "/link", 0, &st), unix.ENOENT)
	require.Equal(t, []string{"hosts", "ssl"}, e.names(t, "/etc"))
	require.NotEqual(t, ts, e.stat(t, "/etc").Mtim)
	require.Equal(t, []string{}, e.upperNames(t, "/etc"))
	require.ErrorIs(t, e.v.UnlinkAt(e.ctx, nil, "/etc/passwd", 0), unix.ENOENT)

	e.write(t, "/etc/passwd", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, "new")
	require.Equal(t, "new", e.read(t, "/etc/passwd"))
	require.Equal(t, []string{"hosts", "passwd", "ssl"}, e.names(t, "/etc"))
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/etc/passwd", 0))
	require.Equal(t, []string{"hosts", "ssl"}, e.names(t, "/etc"))

	// rmdir needs the merged directory empty.
	rmdir := func(p string) error { return e.v.UnlinkAt(e.ctx, nil, p, unix.AT_REMOVEDIR) }
	require.ErrorIs(t, rmdir("/usr/share/doc"), unix.ENOTEMPTY)
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/usr/share/doc/a.txt", 0))
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/usr/share/doc/b.txt", 0))
	require.ErrorIs(t, rmdir("/usr/share/doc"), unix.ENOTEMPTY)
	require.ErrorIs(t, e.v.UnlinkAt(e.ctx, nil, "/usr/share/doc/sub", 0), unix.EISDIR)
	require.ErrorIs(t, rmdir("/usr/share/doc/sub/c.txt"), unix.ENOTDIR)
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/usr/share/doc/sub/c.txt", 0))
	require.NoError(t, rmdir("/usr/share/doc/sub"))
	require.Empty(t, e.names(t, "/usr/share/doc"))
	require.NoError(t, rmdir("/usr/share/doc"))
	require.Empty(t, e.names(t, "/usr/share"))
	require.ErrorIs(t, e.statErr("/usr/share/doc/a.txt"), unix.ENOENT)

	// A directory made over a whiteout is opaque.
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/usr/share/doc", 0o755))
	require.Empty(t, e.names(t, "/usr/share/doc"))
	require.ErrorIs(t, e.statErr("/usr/share/doc/a.txt"), unix.ENOENT)
	require.ErrorIs(t, e.statErr("/usr/share/doc/sub"), unix.ENOENT)
	e.write(t, "/usr/share/doc/a.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, "mine")
	require.Equal(t, []string{"a.txt"}, e.names(t, "/usr/share/doc"))
	require.ErrorIs(t, rmdir("/usr/share/doc"), unix.ENOTEMPTY)
	require.Equal(t, []string{"a.txt"}, e.upperNames(t, "/usr/share/doc"))
	require.Equal(t, []string{"doc"}, e.upperNames(t, "/usr/share"))

	// Lower empty directories and symbolic links.
	require.NoError(t, rmdir("/empty"))
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/link", 0))
	require.Equal(t, []string{"bin", "etc", "usr", "var"}, e.names(t, "/"))
	require.NoError(t, e.v.SymlinkAt(e.ctx, "bin/sh", nil, "/link"))
	require.Equal(t, "#!/bin/sh\n", e.read(t, "/link"))
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/empty", 0o700))
	require.Equal(t, uint32(unix.S_IFDIR|0o700), e.stat(t, "/empty").Mode)
	require.Equal(t, []string{"bin", "empty", "etc", "link", "usr", "var"}, e.names(t, "/"))

	// A file made where a lower directory was hides it.
	e.removeTree(t, "/var/log")
	e.write(t, "/var/log", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, "file")
	require.Equal(t, uint32(unix.S_IFREG|0o644), e.stat(t, "/var/log").Mode)
	require.ErrorIs(t, e.statErr("/var/log/x.log"), unix.ENOTDIR)
	require.Equal(t, []string{"empty", "log"}, e.names(t, "/var"))
}

func TestReaddirStable(t *testing.T) {
	dir := hostTree(t)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "many"), 0o755))
	for i := range 100 {
		writeHost(t, filepath.Join(dir, "many", fmt.Sprintf("f%03d", i)), nil, 0o644)
	}
	e := mount(t, dir, tmpfs.New(tmpfs.Options{}), false)
	for i := range 20 {
		e.write(t, fmt.Sprintf("/many/u%03d", i), unix.O_WRONLY|unix.O_CREAT, "")
	}
	f, err := e.v.OpenAt(e.ctx, nil, "/many", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	removed := map[string]bool{}
	seen := map[string]int{}
	buf := make([]byte, 100)
	for call := 0; ; call++ {
		n, err := f.Getdents64(e.ctx, buf)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		for _, d := range vfstest.ParseDirents(buf[:n]) {
			seen[d.Name]++
		}
		if call == 5 {
			for i := range 10 {
				names := []string{fmt.Sprintf("f%03d", 50+i)}
				if i < 5 {
					names = append(names, fmt.Sprintf("u%03d", 10+i))
				}
				for _, name := range names {
					require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/many/"+name, 0))
					removed[name] = true
				}
				e.write(t, fmt.Sprintf("/many/n%03d", i), unix.O_WRONLY|unix.O_CREAT, "")
			}
		}
	}
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprintf("f%03d", i))
	}
	for i := range 20 {
		want = append(want, fmt.Sprintf("u%03d", i))
	}
	for _, name := range want {
		if removed[name] {
			require.LessOrEqual(t, seen[name], 1, name)
		} else {
			require.Equal(t, 1, seen[name], name)
		}
		delete(seen, name)
	}
	for name, n := range seen {
		require.LessOrEqual(t, n, 1, name)
		require.True(t, name == "." || name == ".." || name[0] == 'n', name)
	}

	// Rewinding lists the directory as it is now.
	_, err = f.Seek(e.ctx, 0, unix.SEEK_SET)
	require.NoError(t, err)
	var now []string
	for {
		n, err := f.Getdents64(e.ctx, buf)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		for _, d := range vfstest.ParseDirents(buf[:n]) {
			now = append(now, d.Name)
		}
	}
	want = []string{".", ".."}
	for i := range 100 {
		if i < 50 || i >= 60 {
			want = append(want, fmt.Sprintf("f%03d", i))
		}
	}
	for i := range 10 {
		want = append(want, fmt.Sprintf("n%03d", i))
	}
	for i := range 20 {
		if i < 10 || i >= 15 {
			want = append(want, fmt.Sprintf("u%03d", i))
		}
	}
	slices.Sort(now)
	require.Equal(t, want, now)
}

func TestInodeNumbers(t *testing.T) {
	e := setup(t)
	require.NoError(t, e.v.ChmodAt(e.ctx, nil, "/etc/passwd", 0o600, 0))
	e.write(t, "/new", unix.O_WRONLY|unix.O_CREAT, "")
	e.write(t, "/etc/new", unix.O_WRONLY|unix.O_CREAT, "")
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/newdir", 0o755))
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/var/empty/sub", 0o755))
	dev := e.stat(t, "/").Dev
	inos := map[uint64]string{}
	for _, dir := range []string{"/", "/etc", "/var", "/var/empty", "/usr/share/doc"} {
		_, dents := e.dirents(t, dir, 4096)
		for name, ino := range dents {
			p := filepath.Join(dir, name)
			st := e.stat(t, p)
			require.Equal(t, st.Ino, ino, p)
			require.Equal(t, dev, st.Dev, p)
			require.NotContains(t, inos, ino, p)
			inos[ino] = p
		}
	}
	for _, p := range []string{"/bin", "/etc", "/etc/passwd", "/var/empty", "/usr/share/doc/a.txt"} {
		require.Equal(t, hostStat(t, filepath.Join(e.host, p)).Ino, e.stat(t, p).Ino, p)
	}
}

func TestRename(t *testing.T) {
	e := setup(t)
	rename := func(from, to string, flags uint32) error {
		return e.v.RenameAt(e.ctx, nil, from, nil, to, flags)
	}
	// Files move by copy-up and whiteout.
	ino := e.stat(t, "/etc/hosts").Ino
	require.NoError(t, rename("/etc/hosts", "/etc/hosts.bak", 0))
	require.ErrorIs(t, e.statErr("/etc/hosts"), unix.ENOENT)
	require.Equal(t, "127.0.0.1 localhost\n", e.read(t, "/etc/hosts.bak"))
	require.Equal(t, ino, e.stat(t, "/etc/hosts.bak").Ino)
	require.Equal(t, []string{"hosts.bak", "passwd", "ssl"}, e.names(t, "/etc"))
	require.NoError(t, rename("/bin/sh", "/etc/passwd", 0))
	require.Equal(t, "#!/bin/sh\n", e.read(t, "/etc/passwd"))
	require.Empty(t, e.names(t, "/bin"))
	require.NoError(t, rename("/usr/share/doc/a.txt", "/var/log/a.txt", 0))
	require.Equal(t, []string{"a.txt", "x.log"}, e.names(t, "/var/log"))
	require.Equal(t, []string{"b.txt", "sub"}, e.names(t, "/usr/share/doc"))

	// Directories that show lower entries do not move.
	require.ErrorIs(t, rename("/usr/share/doc", "/doc", 0), unix.EXDEV)
	require.ErrorIs(t, rename("/etc", "/etc2", 0), unix.EXDEV)
	require.NoError(t, rename("/var/empty", "/var/empty2", 0))
	require.Equal(t, []string{"empty2", "log"}, e.names(t, "/var"))
	require.Empty(t, e.names(t, "/var/empty2"))
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/var/log/x.log", 0))
	require.NoError(t, rename("/var/log", "/log", 0))
	require.Equal(t, []string{"a.txt"}, e.names(t, "/log"))
	require.Equal(t, "doc a", e.read(t, "/log/a.txt"))
	require.Equal(t, []string{"empty2"}, e.names(t, "/var"))
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/var/log", 0o755))
	require.Empty(t, e.names(t, "/var/log"))
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/new", 0o755))
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/new/sub", 0o755))
	e.write(t, "/new/f", unix.O_WRONLY|unix.O_CREAT, "f")
	require.NoError(t, rename("/new", "/usr/new", 0))
	require.Equal(t, "f", e.read(t, "/usr/new/f"))
	require.Equal(t, []string{"f", "sub"}, e.names(t, "/usr/new"))

	// renameat2 flags.
	require.ErrorIs(t, rename("/usr/share/doc/b.txt", "/etc/hosts.bak", unix.RENAME_NOREPLACE), unix.EEXIST)
	require.NoError(t, rename("/usr/share/doc/b.txt", "/usr/share/doc/sub/c.txt", unix.RENAME_EXCHANGE))
	require.Equal(t, "doc c", e.read(t, "/usr/share/doc/b.txt"))
	require.Equal(t, "doc b", e.read(t, "/usr/share/doc/sub/c.txt"))
	require.ErrorIs(t, rename("/usr/share/doc", "/usr/new", unix.RENAME_EXCHANGE), unix.EXDEV)
	require.ErrorIs(t, rename("/usr/new", "/usr/share/doc", unix.RENAME_EXCHANGE), unix.EXDEV)
	require.NoError(t, rename("/usr/new", "/log", unix.RENAME_EXCHANGE))
	require.Equal(t, []string{"f", "sub"}, e.names(t, "/log"))
	require.Equal(t, []string{"a.txt"}, e.names(t, "/usr/new"))

	// Replacing a directory: it must be empty in the merged view, and the
	// directory that replaces a lower one is opaque.
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/d", 0o755))
	e.write(t, "/d/inside", unix.O_WRONLY|unix.O_CREAT, "in")
	require.ErrorIs(t, rename("/d", "/usr/share/doc", 0), unix.ENOTEMPTY)
	require.ErrorIs(t, rename("/d", "/etc/passwd", 0), unix.ENOTDIR)
	require.ErrorIs(t, rename("/etc/passwd", "/d", 0), unix.EISDIR)
	require.NoError(t, rename("/d", "/empty", 0))
	require.Equal(t, []string{"inside"}, e.names(t, "/empty"))
	require.Equal(t, "in", e.read(t, "/empty/inside"))
	require.ErrorIs(t, e.statErr("/d"), unix.ENOENT)
}

func TestLink(t *testing.T) {
	e := setup(t)
	ino := e.stat(t, "/etc/passwd").Ino
	require.NoError(t, e.v.LinkAt(e.ctx, nil, "/etc/passwd", nil, "/passwd2", 0))
	for _, p := range []string{"/etc/passwd", "/passwd2"} {
		st := e.stat(t, p)
		require.Equal(t, ino, st.Ino)
		require.Equal(t, uint64(2), st.Nlink)
	}
	e.write(t, "/passwd2", unix.O_WRONLY|unix.O_APPEND, "x")
	require.Equal(t, "root:x:0:0\nx", e.read(t, "/etc/passwd"))
	require.NoError(t, e.v.RenameAt(e.ctx, nil, "/passwd2", nil, "/etc/passwd", 0))
	require.Equal(t, uint64(2), e.stat(t, "/passwd2").Nlink)
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, "/etc/passwd", 0))
	require.Equal(t, uint64(1), e.stat(t, "/passwd2").Nlink)
	require.Equal(t, "root:x:0:0\nx", e.read(t, "/passwd2"))
	require.NoError(t, e.v.LinkAt(e.ctx, nil, "/link", nil, "/link2", 0))
	target, err := e.v.ReadlinkAt(e.ctx, nil, "/link2")
	require.NoError(t, err)
	require.Equal(t, "etc/passwd", target)
	require.ErrorIs(t, e.v.LinkAt(e.ctx, nil, "/bin/sh", nil, "/etc/hosts", 0), unix.EEXIST)
}

// TestRealistic runs what a shell session would and checks the merged
// view against the expected one, over a writable and a read-only host
// directory.
func TestRealistic(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("readOnly=", readOnly), func(t *testing.T) {
			realistic(t, mount(t, hostTree(t), tmpfs.New(tmpfs.Options{}), readOnly))
		})
	}
}

func realistic(t *testing.T, e *env) {
	// mkdir -p /home/user/proj/src; touch README /etc/hosts.
	for _, p := range []string{"/home", "/home/user", "/home/user/proj", "/home/user/proj/src"} {
		require.NoError(t, e.v.MkdirAt(e.ctx, nil, p, 0o777))
	}
	e.write(t, "/home/user/proj/README", unix.O_WRONLY|unix.O_CREAT, "")
	require.NoError(t, e.v.UtimensAt(e.ctx, nil, "/etc/hosts", nil, 0))
	// cp -r; mv of a file; mv of a lower directory falls back to cp + rm.
	e.copyTree(t, "/usr/share/doc", "/home/user/proj/doc")
	require.NoError(t, e.v.RenameAt(e.ctx, nil, "/etc/hosts", nil, "/etc/hosts.orig", 0))
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/opt", 0o755))
	require.ErrorIs(t, e.v.RenameAt(e.ctx, nil, "/usr/share/doc", nil, "/opt/doc", 0), unix.EXDEV)
	e.copyTree(t, "/usr/share/doc", "/opt/doc")
	e.removeTree(t, "/usr/share/doc")
	// rm -r, chmod, echo >>, ln -s, and a directory re-created.
	e.removeTree(t, "/etc/ssl")
	require.NoError(t, e.v.ChmodAt(e.ctx, nil, "/bin/sh", 0o700, 0))
	require.NoError(t, e.v.ChmodAt(e.ctx, nil, "/home/user", 0o750, 0))
	e.write(t, "/etc/passwd", unix.O_WRONLY|unix.O_APPEND, "more\n")
	require.NoError(t, e.v.SymlinkAt(e.ctx, "../etc/passwd", nil, "/bin/pw"))
	e.removeTree(t, "/var/log")
	require.NoError(t, e.v.MkdirAt(e.ctx, nil, "/var/log", 0o755))
	e.write(t, "/var/log/y.log", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, "new\n")

	doc := map[string]string{
		"": "d 755", "/a.txt": "f 644 doc a", "/b.txt": "f 644 doc b", "/sub": "d 755", "/sub/c.txt": "f 644 doc c",
	}
	want := map[string]string{
		"/bin":                   "d 755",
		"/bin/pw":                "l ../etc/passwd",
		"/bin/sh":                "f 700 #!/bin/sh\n",
		"/empty":                 "d 755",
		"/etc":                   "d 755",
		"/etc/hosts.orig":        "f 644 127.0.0.1 localhost\n",
		"/etc/passwd":            "f 644 root:x:0:0\nmore\n",
		"/home":                  "d 755",
		"/home/user":             "d 750",
		"/home/user/proj":        "d 755",
		"/home/user/proj/README": "f 644 ",
		"/home/user/proj/src":    "d 755",
		"/link":                  "l etc/passwd",
		"/opt":                   "d 755",
		"/usr":                   "d 755",
		"/usr/share":             "d 755",
		"/var":                   "d 755",
		"/var/empty":             "d 755",
		"/var/log":               "d 755",
		"/var/log/y.log":         "f 644 new\n",
	}
	for p, v := range doc {
		want["/home/user/proj/doc"+p] = v
		want["/opt/doc"+p] = v
	}
	require.Equal(t, want, e.view(t, "/", map[string]string{}))
}

// TestConcurrentCopyUp copies the same files up from many goroutines:
// each is copied once, and no write is lost.
func TestConcurrentCopyUp(t *testing.T) {
	e := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			f, err := e.v.OpenAt(e.ctx, nil, "/usr/share/doc/sub/c.txt", unix.O_RDWR, 0)
			if err != nil {
				errs <- err
				return
			}
			defer f.DecRef()
			if _, err := f.PWrite(e.ctx, []byte{byte('0' + i)}, int64(10+i)); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			for _, p := range []string{"/usr/share/doc/a.txt", "/usr/share/doc/b.txt", "/etc/passwd"} {
				if err := e.v.ChmodAt(e.ctx, nil, p, uint32(0o600+i), 0); err != nil {
					errs <- err
				}
				var st unix.Stat_t
				if err := e.v.StatAt(e.ctx, nil, "/usr/share/doc/sub/c.txt", 0, &st); err != nil {
					errs <- err
				}
			}
			if err := e.v.RenameAt(e.ctx, nil, "/usr/share/doc/nope", nil, "/x", 0); err != unix.ENOENT {
				errs <- fmt.Errorf("rename: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, "doc c\x00\x00\x00\x00\x0001234567", e.read(t, "/usr/share/doc/sub/c.txt"))
	require.Equal(t, []string{"a.txt", "b.txt", "sub"}, e.names(t, "/usr/share/doc"))
}

func TestSpecialFiles(t *testing.T) {
	dir := hostTree(t)
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	e := mount(t, dir, tmpfs.New(tmpfs.Options{}), false)
	// A host FIFO cannot be opened: its copy works inside the sandbox.
	r, err := e.v.OpenAt(e.ctx, nil, "/fifo", unix.O_RDONLY|unix.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer r.DecRef()
	w, err := e.v.OpenAt(e.ctx, nil, "/fifo", unix.O_WRONLY, 0)
	require.NoError(t, err)
	defer w.DecRef()
	_, err = w.Write(e.ctx, []byte("through"))
	require.NoError(t, err)
	buf := make([]byte, 16)
	n, err := r.Read(e.ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "through", string(buf[:n]))
	require.Equal(t, uint32(unix.S_IFIFO|0o640), e.stat(t, "/fifo").Mode)
	require.True(t, e.inUpper(t, "/fifo"))

	// Directories are not read or written as files.
	d, err := e.v.OpenAt(e.ctx, nil, "/etc", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer d.DecRef()
	_, err = d.Read(e.ctx, buf)
	require.ErrorIs(t, err, unix.EISDIR)
	_, err = d.Seek(e.ctx, 0, unix.SEEK_END)
	require.ErrorIs(t, err, unix.EINVAL)
	require.NoError(t, d.Sync(e.ctx))
	_, err = e.v.OpenAt(e.ctx, nil, "/etc", unix.O_RDWR, 0)
	require.ErrorIs(t, err, unix.EISDIR)
}
