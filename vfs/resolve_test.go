package vfs_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func TestResolveBasics(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/a", "/a/b")
	writeFile(t, v, ctx, "/a/b/f", "hello")
	for _, p := range []string{"/a/b/f", "a/b/f", "/a/./b/../b/f", "//a//b//f", "/../../a/b/f", "/a/b/../../a/b/f"} {
		require.Equal(t, "hello", readFile(t, v, ctx, p), p)
	}
	require.ErrorIs(t, openErr(v, ctx, "", unix.O_RDONLY), unix.ENOENT)
	require.ErrorIs(t, openErr(v, ctx, "/a/nope", unix.O_RDONLY), unix.ENOENT)
	require.ErrorIs(t, openErr(v, ctx, "/a/nope/f", unix.O_RDONLY), unix.ENOENT)
	require.ErrorIs(t, openErr(v, ctx, "/a/b/f/", unix.O_RDONLY), unix.ENOTDIR)
	require.ErrorIs(t, openErr(v, ctx, "/a/b/f/x", unix.O_RDONLY), unix.ENOTDIR)
	require.ErrorIs(t, openErr(v, ctx, "/a/b/f/.", unix.O_RDONLY), unix.ENOTDIR)
	require.ErrorIs(t, openErr(v, ctx, "/a/b/f", unix.O_RDONLY|unix.O_DIRECTORY), unix.ENOTDIR)
	require.NoError(t, openErr(v, ctx, "/a/b/", unix.O_RDONLY|unix.O_DIRECTORY))
	require.ErrorIs(t, openErr(v, ctx, "/a", unix.O_WRONLY), unix.EISDIR)
	require.ErrorIs(t, openErr(v, ctx, "/a", unix.O_RDONLY|unix.O_TRUNC), unix.EISDIR)
	require.ErrorIs(t, openErr(v, ctx, "/a/x", unix.O_CREAT|unix.O_DIRECTORY), unix.EINVAL)
	require.ErrorIs(t, openErr(v, ctx, "/a/x/", unix.O_CREAT|unix.O_WRONLY), unix.EISDIR)
	require.ErrorIs(t, openErr(v, ctx, "/a", unix.O_CREAT|unix.O_RDONLY), unix.EISDIR)
	require.ErrorIs(t, openErr(v, ctx, ".", unix.O_CREAT|unix.O_RDONLY), unix.EISDIR)
	require.ErrorIs(t, openErr(v, ctx, "/a/b/f", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY), unix.EEXIST)
	require.ErrorIs(t, openErr(v, ctx, "/a/b/f", unix.O_TMPFILE|unix.O_RDWR), unix.EOPNOTSUPP)

	// Relative to a directory file and to the working directory.
	dir, err := v.OpenAt(ctx, nil, "/a", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer dir.DecRef()
	f, err := v.OpenAt(ctx, dir, "b/f", unix.O_RDONLY, 0)
	require.NoError(t, err)
	f.DecRef()
	_, err = v.OpenAt(ctx, f, "x", unix.O_RDONLY, 0)
	require.ErrorIs(t, err, unix.ENOTDIR)
	cwd, err := v.Chdir(ctx, nil, "/a/b")
	require.NoError(t, err)
	c := *ctx
	c.Cwd = cwd
	require.Equal(t, "hello", readFile(t, v, &c, "f"))
	require.Equal(t, "hello", readFile(t, v, &c, "../b/./f"))
	p, err := v.Getcwd(&c)
	require.NoError(t, err)
	require.Equal(t, "/a/b", p)
}

func TestNameLimits(t *testing.T) {
	v, ctx := newVFS(t)
	long := strings.Repeat("x", 256)
	require.ErrorIs(t, v.MkdirAt(ctx, nil, "/"+long, 0o755), unix.ENAMETOOLONG)
	require.ErrorIs(t, openErr(v, ctx, "/"+long, unix.O_RDONLY), unix.ENAMETOOLONG)
	require.ErrorIs(t, openErr(v, ctx, "/"+long+"/x", unix.O_RDONLY), unix.ENAMETOOLONG)
	require.NoError(t, v.MkdirAt(ctx, nil, "/"+long[:255], 0o755))
	path := strings.Repeat("./", 2047) + "x"
	require.Len(t, path, 4095)
	require.ErrorIs(t, openErr(v, ctx, path, unix.O_RDONLY), unix.ENOENT)
	require.ErrorIs(t, openErr(v, ctx, path+"x", unix.O_RDONLY), unix.ENAMETOOLONG)
	require.ErrorIs(t, openErr(v, ctx, "a\x00b", unix.O_RDONLY), unix.EINVAL)
}

func TestSymlinks(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/d")
	writeFile(t, v, ctx, "/d/f", "data")
	require.NoError(t, v.SymlinkAt(ctx, "/d/f", nil, "/abs"))
	require.NoError(t, v.SymlinkAt(ctx, "d/f", nil, "/rel"))
	require.NoError(t, v.SymlinkAt(ctx, "../d", nil, "/d/up"))
	require.NoError(t, v.SymlinkAt(ctx, "loop", nil, "/loop"))
	require.NoError(t, v.SymlinkAt(ctx, "/nowhere", nil, "/dangling"))
	require.ErrorIs(t, v.SymlinkAt(ctx, "", nil, "/empty"), unix.ENOENT)
	require.ErrorIs(t, v.SymlinkAt(ctx, "x", nil, "/abs"), unix.EEXIST)
	require.ErrorIs(t, v.SymlinkAt(ctx, "x", nil, "/new/"), unix.ENOENT)

	require.Equal(t, "data", readFile(t, v, ctx, "/abs"))
	require.Equal(t, "data", readFile(t, v, ctx, "/rel"))
	require.Equal(t, "data", readFile(t, v, ctx, "/d/up/up/up/f"))
	require.ErrorIs(t, openErr(v, ctx, "/loop", unix.O_RDONLY), unix.ELOOP)
	require.ErrorIs(t, openErr(v, ctx, "/abs", unix.O_RDONLY|unix.O_NOFOLLOW), unix.ELOOP)
	require.ErrorIs(t, openErr(v, ctx, "/abs/", unix.O_RDONLY), unix.ENOTDIR)
	require.ErrorIs(t, openErr(v, ctx, "/dangling", unix.O_RDONLY), unix.ENOENT)
	require.ErrorIs(t, openErr(v, ctx, "/abs", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY), unix.EEXIST)
	require.ErrorIs(t, openErr(v, ctx, "/abs", unix.O_CREAT|unix.O_NOFOLLOW|unix.O_WRONLY), unix.ELOOP)
	require.NoError(t, openErr(v, ctx, "/d/up/", unix.O_RDONLY))

	// O_PATH|O_NOFOLLOW opens the link itself; readlinkat reads it.
	f, err := v.OpenAt(ctx, nil, "/abs", unix.O_PATH|unix.O_NOFOLLOW, 0)
	require.NoError(t, err)
	target, err := v.ReadlinkAt(ctx, f, "")
	require.NoError(t, err)
	require.Equal(t, "/d/f", target)
	_, err = f.Read(ctx, make([]byte, 1))
	require.ErrorIs(t, err, unix.EBADF)
	st, err := f.Stat(ctx)
	require.NoError(t, err)
	require.Equal(t, uint16(unix.S_IFLNK), st.Mode&unix.S_IFMT)
	f.DecRef()
	_, err = v.ReadlinkAt(ctx, nil, "/d/f")
	require.ErrorIs(t, err, unix.EINVAL)

	// O_CREAT through a dangling link creates its target.
	writeFile(t, v, ctx, "/dangling", "new")
	require.Equal(t, "new", readFile(t, v, ctx, "/nowhere"))

	// 40 links are followed, 41 are not.
	writeFile(t, v, ctx, "/l0", "end")
	for i := 1; i <= 41; i++ {
		require.NoError(t, v.SymlinkAt(ctx, "l"+strconv.Itoa(i-1), nil, "/l"+strconv.Itoa(i)))
	}
	require.Equal(t, "end", readFile(t, v, ctx, "/l40"))
	require.ErrorIs(t, openErr(v, ctx, "/l41", unix.O_RDONLY), unix.ELOOP)

	// Stat with and without following.
	var s unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, "/abs", 0, &s))
	require.Equal(t, uint32(unix.S_IFREG), s.Mode&unix.S_IFMT)
	require.NoError(t, v.StatAt(ctx, nil, "/abs", unix.AT_SYMLINK_NOFOLLOW, &s))
	require.Equal(t, uint32(unix.S_IFLNK), s.Mode&unix.S_IFMT)
	require.Equal(t, int64(4), s.Size)
	require.ErrorIs(t, v.StatAt(ctx, nil, "/abs", 0x1, &s), unix.EINVAL)
}

func TestRootConfinement(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/jail", "/jail/etc")
	writeFile(t, v, ctx, "/secret", "outside")
	writeFile(t, v, ctx, "/jail/secret", "inside")
	require.NoError(t, v.SymlinkAt(ctx, "/secret", nil, "/jail/etc/abs"))
	require.NoError(t, v.SymlinkAt(ctx, "../../../../secret", nil, "/jail/etc/rel"))
	jail, err := v.Chdir(ctx, nil, "/jail")
	require.NoError(t, err)
	c := *ctx
	c.Root, c.Cwd = jail, jail
	for _, p := range []string{"/secret", "/../secret", "../../secret", "etc/abs", "etc/rel", "/etc/../../secret"} {
		require.Equal(t, "inside", readFile(t, v, &c, p), p)
	}
	p, err := v.Getcwd(&c)
	require.NoError(t, err)
	require.Equal(t, "/", p)
	c.Cwd = v.Root()
	p, err = v.Getcwd(&c)
	require.NoError(t, err)
	require.Equal(t, "(unreachable)/", p)
}

func TestOpenat2Resolve(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/base", "/base/sub")
	writeFile(t, v, ctx, "/base/f", "in")
	writeFile(t, v, ctx, "/f", "out")
	require.NoError(t, v.SymlinkAt(ctx, "/f", nil, "/base/abs"))
	require.NoError(t, v.SymlinkAt(ctx, "f", nil, "/base/rel"))
	base, err := v.OpenAt(ctx, nil, "/base", unix.O_PATH|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer base.DecRef()
	open := func(path string, resolve uint64) (string, error) {
		f, err := v.OpenAt2(ctx, base, path, &unix.OpenHow{Flags: unix.O_RDONLY, Resolve: resolve})
		if err != nil {
			return "", err
		}
		defer f.DecRef()
		buf := make([]byte, 10)
		n, err := f.Read(ctx, buf)
		return string(buf[:n]), err
	}
	_, err = open("../f", unix.RESOLVE_BENEATH)
	require.ErrorIs(t, err, unix.EXDEV)
	_, err = open("/f", unix.RESOLVE_BENEATH)
	require.ErrorIs(t, err, unix.EXDEV)
	_, err = open("abs", unix.RESOLVE_BENEATH)
	require.ErrorIs(t, err, unix.EXDEV)
	got, err := open("sub/../f", unix.RESOLVE_BENEATH)
	require.NoError(t, err)
	require.Equal(t, "in", got)
	got, err = open("abs", unix.RESOLVE_IN_ROOT)
	require.NoError(t, err)
	require.Equal(t, "in", got)
	got, err = open("../../f", unix.RESOLVE_IN_ROOT)
	require.NoError(t, err)
	require.Equal(t, "in", got)
	_, err = open("rel", unix.RESOLVE_NO_SYMLINKS)
	require.ErrorIs(t, err, unix.ELOOP)
	_, err = open("f", unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT)
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = v.OpenAt2(ctx, base, "f", &unix.OpenHow{Flags: unix.O_RDONLY, Mode: 0o644})
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = v.OpenAt2(ctx, base, "f", &unix.OpenHow{Flags: 1 << 40})
	require.ErrorIs(t, err, unix.EINVAL)
}

func TestMounts(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/mnt", "/mnt/hidden")
	writeFile(t, v, ctx, "/f", "root")
	require.NoError(t, v.Mount(ctx, nil, "/mnt", tmpfs.New(tmpfs.Options{}), 0))
	require.ErrorIs(t, openErr(v, ctx, "/mnt/hidden", unix.O_RDONLY), unix.ENOENT)
	writeFile(t, v, ctx, "/mnt/g", "mounted")
	require.Equal(t, "root", readFile(t, v, ctx, "/mnt/../f"))
	require.Equal(t, "mounted", readFile(t, v, ctx, "/mnt/./g"))
	require.NotEqual(t, stat(t, v, ctx, "/f").Dev, stat(t, v, ctx, "/mnt/g").Dev)

	cwd, err := v.Chdir(ctx, nil, "/mnt")
	require.NoError(t, err)
	c := *ctx
	c.Cwd = cwd
	require.Equal(t, "root", readFile(t, v, &c, "../f"))
	p, err := v.Getcwd(&c)
	require.NoError(t, err)
	require.Equal(t, "/mnt", p)

	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f", nil, "/mnt/f", 0), unix.EXDEV)
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/f", nil, "/mnt/f", 0), unix.EXDEV)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/mnt", unix.AT_REMOVEDIR), unix.EBUSY)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/mnt", nil, "/mnt2", 0), unix.EBUSY)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/mnt/", unix.AT_REMOVEDIR), unix.EBUSY)

	// Read-only mount.
	mkdir(t, v, ctx, "/ro")
	require.NoError(t, v.Mount(ctx, nil, "/ro", tmpfs.New(tmpfs.Options{}), 0))
	writeFile(t, v, ctx, "/ro/f", "x")
	require.NoError(t, v.Mount(ctx, nil, "/ro", tmpfs.New(tmpfs.Options{}), 0))
	require.ErrorIs(t, openErr(v, ctx, "/ro/f", unix.O_RDONLY), unix.ENOENT)

	mkdir(t, v, ctx, "/ro2")
	fs := tmpfs.New(tmpfs.Options{})
	require.NoError(t, v.Mount(ctx, nil, "/mnt", fs, 0))
	writeFile(t, v, ctx, "/mnt/keep", "k")
	require.NoError(t, v.Mount(ctx, nil, "/ro2", fs, 0x1))
	require.Equal(t, "k", readFile(t, v, ctx, "/ro2/keep"))
	require.ErrorIs(t, openErr(v, ctx, "/ro2/keep", unix.O_WRONLY), unix.EROFS)
	require.ErrorIs(t, openErr(v, ctx, "/ro2/new", unix.O_WRONLY|unix.O_CREAT), unix.EROFS)
	require.ErrorIs(t, v.MkdirAt(ctx, nil, "/ro2/d", 0o755), unix.EROFS)
	require.ErrorIs(t, v.MkdirAt(ctx, nil, "/ro2/keep", 0o755), unix.EEXIST)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/ro2/keep", 0), unix.EROFS)
	require.ErrorIs(t, v.ChmodAt(ctx, nil, "/ro2/keep", 0o600, 0), unix.EROFS)
	require.ErrorIs(t, v.TruncateAt(ctx, nil, "/ro2/keep", 0), unix.EROFS)
	require.ErrorIs(t, v.AccessAt(ctx, nil, "/ro2/keep", unix.W_OK, 0), unix.EROFS)
	st, err := v.StatfsAt(ctx, nil, "/ro2")
	require.NoError(t, err)
	require.NotZero(t, st.Flags&unix.ST_RDONLY)

	require.ErrorIs(t, v.Mount(user(ctx), nil, "/ro2", fs, 0), unix.EPERM)
	require.ErrorIs(t, v.Mount(ctx, nil, "/f", fs, 0), unix.ENOTDIR)
}
