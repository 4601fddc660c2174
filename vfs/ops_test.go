package vfs_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"

	"github.com/kvmbox/kvmbox/internal/vfstest"
)

func TestPermissions(t *testing.T) {
	v, ctx := newVFS(t)
	u := user(ctx)
	mkdir(t, v, ctx, "/priv", "/pub", "/tmp")
	require.NoError(t, v.ChmodAt(ctx, nil, "/priv", 0o700, 0))
	require.NoError(t, v.ChmodAt(ctx, nil, "/tmp", 0o1777, 0))
	writeFile(t, v, ctx, "/priv/f", "x")
	writeFile(t, v, ctx, "/pub/ro", "x")

	require.ErrorIs(t, openErr(v, u, "/priv/f", unix.O_RDONLY), unix.EACCES)
	require.ErrorIs(t, openErr(v, u, "/priv/nope", unix.O_RDONLY), unix.EACCES)
	require.ErrorIs(t, openErr(v, u, "/pub/ro", unix.O_WRONLY), unix.EACCES)
	require.ErrorIs(t, openErr(v, u, "/pub/ro", unix.O_RDONLY|unix.O_TRUNC), unix.EACCES)
	require.NoError(t, openErr(v, u, "/pub/ro", unix.O_RDONLY))
	require.ErrorIs(t, openErr(v, u, "/pub/new", unix.O_CREAT|unix.O_WRONLY), unix.EACCES)
	require.ErrorIs(t, v.MkdirAt(u, nil, "/pub/d", 0o755), unix.EACCES)
	require.ErrorIs(t, v.MkdirAt(u, nil, "/pub/ro", 0o755), unix.EEXIST)
	require.ErrorIs(t, v.UnlinkAt(u, nil, "/pub/ro", 0), unix.EACCES)
	require.ErrorIs(t, v.ChmodAt(u, nil, "/pub/ro", 0o777, 0), unix.EPERM)
	require.ErrorIs(t, v.ChownAt(u, nil, "/pub/ro", 1000, -1, 0), unix.EPERM)
	require.ErrorIs(t, v.UtimensAt(u, nil, "/pub/ro", nil, 0), unix.EACCES)
	require.ErrorIs(t, v.TruncateAt(u, nil, "/pub/ro", 0), unix.EACCES)
	_, err := v.Chdir(u, nil, "/priv")
	require.ErrorIs(t, err, unix.EACCES)

	// The user's own files, the umask and the sticky bit.
	writeFile(t, v, u, "/tmp/mine", "m")
	st := stat(t, v, ctx, "/tmp/mine")
	require.Equal(t, uint32(unix.S_IFREG|0o644), st.Mode)
	require.Equal(t, uint32(1000), st.Uid)
	writeFile(t, v, ctx, "/tmp/roots", "r")
	require.NoError(t, v.ChmodAt(ctx, nil, "/tmp/roots", 0o666, 0))
	require.ErrorIs(t, v.UnlinkAt(u, nil, "/tmp/roots", 0), unix.EPERM)
	require.ErrorIs(t, v.RenameAt(u, nil, "/tmp/roots", nil, "/tmp/x", 0), unix.EPERM)
	require.NoError(t, v.UnlinkAt(u, nil, "/tmp/mine", 0))
	require.ErrorIs(t, v.ChownAt(u, nil, "/tmp/roots", -1, 1000, 0), unix.EPERM)

	// chown by the owner to one of its groups; root gives files away.
	writeFile(t, v, u, "/tmp/g", "g")
	require.NoError(t, v.ChmodAt(u, nil, "/tmp/g", 0o6755, 0))
	require.Equal(t, uint32(unix.S_IFREG|0o6755), stat(t, v, ctx, "/tmp/g").Mode)
	require.ErrorIs(t, v.ChownAt(u, nil, "/tmp/g", -1, 5, 0), unix.EPERM)
	require.NoError(t, v.ChownAt(u, nil, "/tmp/g", -1, 1000, 0))
	require.Equal(t, uint32(unix.S_IFREG|0o755), stat(t, v, ctx, "/tmp/g").Mode)
	require.NoError(t, v.ChownAt(ctx, nil, "/tmp/g", 7, 8, 0))
	st = stat(t, v, ctx, "/tmp/g")
	require.Equal(t, [2]uint32{7, 8}, [2]uint32{st.Uid, st.Gid})

	// Root needs an x bit to execute.
	writeFile(t, v, ctx, "/pub/noexec", "")
	require.ErrorIs(t, v.AccessAt(ctx, nil, "/pub/noexec", unix.X_OK, 0), unix.EACCES)
	require.NoError(t, v.AccessAt(ctx, nil, "/pub/noexec", unix.R_OK|unix.W_OK, 0))
	require.NoError(t, v.AccessAt(ctx, nil, "/priv", unix.X_OK, 0))

	// access() uses the real ids, AT_EACCESS the effective ones.
	setuid := user(ctx)
	setuid.Creds.UID = 0
	require.ErrorIs(t, v.AccessAt(setuid, nil, "/priv/f", unix.R_OK, 0), unix.EACCES)
	require.NoError(t, v.AccessAt(setuid, nil, "/priv/f", unix.R_OK, unix.AT_EACCESS))
	require.NoError(t, v.AccessAt(u, nil, "/pub/ro", 0, 0))
	require.ErrorIs(t, v.AccessAt(u, nil, "/pub/ro", 8, 0), unix.EINVAL)
	require.ErrorIs(t, v.AccessAt(u, nil, "/pub/nope", 0, 0), unix.ENOENT)

	// Supplementary groups and setgid directories.
	mkdir(t, v, ctx, "/shared")
	require.NoError(t, v.ChownAt(ctx, nil, "/shared", 0, 50, 0))
	require.NoError(t, v.ChmodAt(ctx, nil, "/shared", 0o2770, 0))
	require.ErrorIs(t, v.MkdirAt(u, nil, "/shared/d", 0o777), unix.EACCES)
	u.Creds.Groups = []uint32{50}
	require.NoError(t, v.MkdirAt(u, nil, "/shared/d", 0o777))
	st = stat(t, v, ctx, "/shared/d")
	require.Equal(t, uint32(50), st.Gid)
	require.Equal(t, uint32(unix.S_IFDIR|unix.S_ISGID|0o755), st.Mode)
}

func TestUnlinkRmdir(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/d", "/d/sub", "/empty")
	writeFile(t, v, ctx, "/d/f", "x")
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d", 0), unix.EISDIR)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d/f", unix.AT_REMOVEDIR), unix.ENOTDIR)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d", unix.AT_REMOVEDIR), unix.ENOTEMPTY)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d/.", unix.AT_REMOVEDIR), unix.EINVAL)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d/sub/..", unix.AT_REMOVEDIR), unix.ENOTEMPTY)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/", unix.AT_REMOVEDIR), unix.EBUSY)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d/f/", 0), unix.ENOTDIR)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d/sub/", 0), unix.EISDIR)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d/nope", 0), unix.ENOENT)
	require.ErrorIs(t, v.UnlinkAt(ctx, nil, "/d/f", 0x1), unix.EINVAL)
	require.NoError(t, v.UnlinkAt(ctx, nil, "/empty/", unix.AT_REMOVEDIR))

	// An open file outlives its name; a removed cwd has no path.
	f, err := v.OpenAt(ctx, nil, "/d/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	defer f.DecRef()
	require.NoError(t, v.UnlinkAt(ctx, nil, "/d/f", 0))
	st, err := f.Stat(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Nlink)
	_, err = f.PWrite(ctx, []byte("yz"), 1)
	require.NoError(t, err)
	buf := make([]byte, 5)
	n, err := f.PRead(ctx, buf, 0)
	require.NoError(t, err)
	require.Equal(t, "xyz", string(buf[:n]))

	cwd, err := v.Chdir(ctx, nil, "/d/sub")
	require.NoError(t, err)
	require.NoError(t, v.UnlinkAt(ctx, nil, "/d/sub", unix.AT_REMOVEDIR))
	c := *ctx
	c.Cwd = cwd
	_, err = v.Getcwd(&c)
	require.ErrorIs(t, err, unix.ENOENT)
	require.ErrorIs(t, openErr(v, &c, "new", unix.O_CREAT|unix.O_WRONLY), unix.ENOENT)
	require.NoError(t, openErr(v, &c, "..", unix.O_RDONLY))
}

func TestRename(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/a", "/a/b", "/c", "/full", "/full/x")
	writeFile(t, v, ctx, "/f", "f")
	writeFile(t, v, ctx, "/g", "g")

	require.ErrorIs(t, v.RenameAt(ctx, nil, "/a", nil, "/a/b/a", 0), unix.EINVAL)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/a", nil, "/a/new", 0), unix.EINVAL)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/a/b", nil, "/a", 0), unix.ENOTEMPTY)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/c", nil, "/full", 0), unix.ENOTEMPTY)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/c", nil, "/f", 0), unix.ENOTDIR)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f", nil, "/c", 0), unix.EISDIR)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f", nil, "/g", unix.RENAME_NOREPLACE), unix.EEXIST)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f", nil, "/nope", unix.RENAME_EXCHANGE), unix.ENOENT)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f", nil, "/g", unix.RENAME_EXCHANGE|unix.RENAME_NOREPLACE), unix.EINVAL)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/nope", nil, "/x", 0), unix.ENOENT)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f/", nil, "/x", 0), unix.ENOTDIR)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f", nil, "/x/", 0), unix.ENOTDIR)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/a/.", nil, "/x", 0), unix.EBUSY)
	require.ErrorIs(t, v.RenameAt(ctx, nil, "/f", nil, "/a/..", 0), unix.EBUSY)

	require.NoError(t, v.RenameAt(ctx, nil, "/f", nil, "/g", unix.RENAME_EXCHANGE))
	require.Equal(t, "g", readFile(t, v, ctx, "/f"))
	require.Equal(t, "f", readFile(t, v, ctx, "/g"))
	require.NoError(t, v.RenameAt(ctx, nil, "/f", nil, "/g", 0))
	require.Equal(t, "g", readFile(t, v, ctx, "/g"))
	require.ErrorIs(t, openErr(v, ctx, "/f", unix.O_RDONLY), unix.ENOENT)
	require.NoError(t, v.RenameAt(ctx, nil, "/g", nil, "/g", 0))

	// Directories: move with contents, replace an empty one, nlink.
	writeFile(t, v, ctx, "/a/b/inner", "in")
	require.NoError(t, v.RenameAt(ctx, nil, "/a/b", nil, "/c/", 0))
	require.Equal(t, "in", readFile(t, v, ctx, "/c/inner"))
	require.Equal(t, uint64(2), stat(t, v, ctx, "/a").Nlink)
	require.NoError(t, v.RenameAt(ctx, nil, "/c", nil, "/a/moved", 0))
	require.Equal(t, uint64(3), stat(t, v, ctx, "/a").Nlink)
	require.Equal(t, "in", readFile(t, v, ctx, "/a/moved/inner"))
	require.NoError(t, v.RenameAt(ctx, nil, "/a/moved", nil, "/full/x", unix.RENAME_EXCHANGE))
	require.Equal(t, "in", readFile(t, v, ctx, "/full/x/inner"))
	require.NoError(t, openErr(v, ctx, "/a/moved", unix.O_DIRECTORY))

	// A working directory follows its directory.
	cwd, err := v.Chdir(ctx, nil, "/full/x")
	require.NoError(t, err)
	require.NoError(t, v.RenameAt(ctx, nil, "/full", nil, "/renamed", 0))
	c := *ctx
	c.Cwd = cwd
	p, err := v.Getcwd(&c)
	require.NoError(t, err)
	require.Equal(t, "/renamed/x", p)
}

func TestLink(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/d")
	writeFile(t, v, ctx, "/f", "f")
	require.NoError(t, v.LinkAt(ctx, nil, "/f", nil, "/d/h", 0))
	require.Equal(t, uint64(2), stat(t, v, ctx, "/f").Nlink)
	require.Equal(t, stat(t, v, ctx, "/f").Ino, stat(t, v, ctx, "/d/h").Ino)
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/d", nil, "/d2", 0), unix.EPERM)
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/f", nil, "/d/h", 0), unix.EEXIST)
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/nope", nil, "/x", 0), unix.ENOENT)
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/f", nil, "/x/", 0), unix.ENOENT)
	require.ErrorIs(t, v.LinkAt(ctx, nil, "/f", nil, "/x", 0x1), unix.EINVAL)
	require.NoError(t, v.SymlinkAt(ctx, "/f", nil, "/s"))
	require.NoError(t, v.LinkAt(ctx, nil, "/s", nil, "/s2", 0))
	require.Equal(t, uint32(unix.S_IFLNK), stat(t, v, ctx, "/s2").Mode&unix.S_IFMT)
	require.NoError(t, v.LinkAt(ctx, nil, "/s", nil, "/s3", unix.AT_SYMLINK_FOLLOW))
	require.Equal(t, uint64(3), stat(t, v, ctx, "/s3").Nlink)
	// protected_hardlinks: a user cannot link a root file it cannot write.
	require.ErrorIs(t, v.LinkAt(user(ctx), nil, "/f", nil, "/d/mine", 0), unix.EACCES)
	require.NoError(t, v.ChmodAt(ctx, nil, "/d", 0o777, 0))
	require.ErrorIs(t, v.LinkAt(user(ctx), nil, "/f", nil, "/d/mine", 0), unix.EPERM)
}

func TestMknod(t *testing.T) {
	v, ctx := newVFS(t)
	require.NoError(t, v.MknodAt(ctx, nil, "/fifo", unix.S_IFIFO|0o666, 0))
	require.NoError(t, v.MknodAt(ctx, nil, "/reg", 0o600, 0))
	require.NoError(t, v.MknodAt(ctx, nil, "/null", unix.S_IFCHR|0o666, unix.Mkdev(1, 3)))
	require.Equal(t, uint32(unix.S_IFIFO|0o644), stat(t, v, ctx, "/fifo").Mode)
	require.Equal(t, uint32(unix.S_IFREG|0o600), stat(t, v, ctx, "/reg").Mode)
	require.Equal(t, unix.Mkdev(1, 3), stat(t, v, ctx, "/null").Rdev)
	require.ErrorIs(t, v.MknodAt(user(ctx), nil, "/c", unix.S_IFCHR, 0), unix.EPERM)
	require.ErrorIs(t, v.MknodAt(ctx, nil, "/d", unix.S_IFDIR, 0), unix.EPERM)
	require.ErrorIs(t, v.MknodAt(ctx, nil, "/x", 0o170000, 0), unix.EINVAL)
	require.ErrorIs(t, v.MknodAt(ctx, nil, "/fifo", unix.S_IFIFO, 0), unix.EEXIST)
	// No driver registered for 1:3 here.
	require.ErrorIs(t, openErr(v, ctx, "/null", unix.O_RDONLY), unix.ENXIO)
}

func TestGetdentsStableOffsets(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/d")
	var want []string
	for i := range 100 {
		name := "file-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		writeFile(t, v, ctx, "/d/"+name, "")
		want = append(want, name)
	}
	got := names(t, v, ctx, "/d", 64)
	require.Equal(t, append([]string{".", ".."}, want...), got)

	// List in small steps while entries come and go: every entry that
	// stays is seen exactly once.
	f, err := v.OpenAt(ctx, nil, "/d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	buf := make([]byte, 100)
	var seen []string
	for i := 0; ; i++ {
		n, err := f.Getdents64(ctx, buf)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		seen = append(seen, vfstest.Names(vfstest.ParseDirents(buf[:n]))...)
		if i < 50 {
			require.NoError(t, v.UnlinkAt(ctx, nil, "/d/"+want[len(want)-1-i], 0))
			writeFile(t, v, ctx, "/d/new"+string(rune('a'+i)), "")
		}
	}
	for _, name := range want[:40] {
		require.Equal(t, 1, count(seen, name), name)
	}
	_, err = f.Seek(ctx, 0, unix.SEEK_SET)
	require.NoError(t, err)
	n, err := f.Getdents64(ctx, make([]byte, 20))
	require.ErrorIs(t, err, unix.EINVAL)
	require.Zero(t, n)
	_, err = f.Seek(ctx, 0, unix.SEEK_END)
	require.ErrorIs(t, err, unix.EINVAL)

	g, err := v.OpenAt(ctx, nil, "/d/"+want[0], unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer g.DecRef()
	_, err = g.Getdents64(ctx, buf)
	require.ErrorIs(t, err, unix.ENOTDIR)
	_, err = f.Read(ctx, buf)
	require.ErrorIs(t, err, unix.EISDIR)
}

func count(s []string, x string) int {
	n := 0
	for i := slices.Index(s, x); i >= 0; i = slices.Index(s, x) {
		n++
		s = s[i+1:]
	}
	return n
}

// Capabilities, not uid 0, bypass permission checks: root without
// CAP_DAC_OVERRIDE is refused, a user with it is not.
func TestCapabilitiesBypassChecks(t *testing.T) {
	v, ctx := newVFS(t)
	require.NoError(t, v.MkdirAt(ctx, nil, "/d", 0))
	writeFile(t, v, ctx, "/f", "x")
	require.NoError(t, v.ChmodAt(ctx, nil, "/f", 0, 0))
	require.NoError(t, v.ChownAt(ctx, nil, "/f", 2000, 2000, 0))

	with := func(uid uint32, caps ...int) *vfs.Context {
		c := *ctx
		c.Creds = &vfs.Credentials{UID: uid, GID: uid, RealUID: uid, RealGID: uid}
		for _, cp := range caps {
			c.Creds.Caps |= 1 << cp
		}
		c.Creds.Permitted = c.Creds.Caps
		return &c
	}
	noCaps := with(0)
	_, err := v.OpenAt(noCaps, nil, "/f", unix.O_RDONLY, 0)
	require.ErrorIs(t, err, unix.EACCES)
	require.ErrorIs(t, v.AccessAt(noCaps, nil, "/f", unix.R_OK, 0), unix.EACCES)
	_, err = v.Chdir(noCaps, nil, "/d")
	require.ErrorIs(t, err, unix.EACCES)
	require.ErrorIs(t, v.MkdirAt(noCaps, nil, "/d/x", 0o755), unix.EACCES)
	require.ErrorIs(t, v.ChmodAt(noCaps, nil, "/f", 0o644, 0), unix.EPERM)
	require.ErrorIs(t, v.ChownAt(noCaps, nil, "/f", 0, 0, 0), unix.EPERM)

	// CAP_DAC_READ_SEARCH reads and searches but does not write.
	reader := with(1000, unix.CAP_DAC_READ_SEARCH)
	f, err := v.OpenAt(reader, nil, "/f", unix.O_RDONLY, 0)
	require.NoError(t, err)
	f.DecRef()
	_, err = v.OpenAt(reader, nil, "/f", unix.O_RDWR, 0)
	require.ErrorIs(t, err, unix.EACCES)
	_, err = v.Chdir(reader, nil, "/d")
	require.NoError(t, err)
	require.ErrorIs(t, v.MkdirAt(reader, nil, "/d/x", 0o755), unix.EACCES)

	override := with(1000, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_CHOWN)
	f, err = v.OpenAt(override, nil, "/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	f.DecRef()
	require.NoError(t, v.MkdirAt(override, nil, "/d/x", 0o755))
	// No capability executes a file without an execute bit.
	require.ErrorIs(t, v.AccessAt(override, nil, "/f", unix.X_OK, 0), unix.EACCES)
	require.NoError(t, v.ChmodAt(override, nil, "/f", 0o2644, 0))
	st, err := v.StatxAt(ctx, nil, "/f", 0, unix.STATX_MODE)
	require.NoError(t, err)
	require.Equal(t, uint16(0o644), st.Mode&0o7777, "setgid cleared without CAP_FSETID")
	require.NoError(t, v.ChownAt(override, nil, "/f", 0, 0, 0))

	// access(2) checks a real uid 0 with the permitted set, any other
	// real uid with no capabilities.
	require.NoError(t, v.ChmodAt(ctx, nil, "/f", 0, 0))
	eff := with(0)
	eff.Creds.Permitted = 1 << unix.CAP_DAC_OVERRIDE
	require.NoError(t, v.AccessAt(eff, nil, "/f", unix.W_OK, 0))
	require.ErrorIs(t, v.AccessAt(eff, nil, "/f", unix.W_OK, unix.AT_EACCESS), unix.EACCES)
	require.ErrorIs(t, v.AccessAt(override, nil, "/f", unix.W_OK, 0), unix.EACCES)
	require.NoError(t, v.AccessAt(override, nil, "/f", unix.W_OK, unix.AT_EACCESS))

	// A write keeps set-ID bits only with CAP_FSETID.
	require.NoError(t, v.ChmodAt(ctx, nil, "/f", 0o6755, 0))
	for _, w := range []struct {
		c    *vfs.Context
		want uint16
	}{{ctx, 0o6755}, {override, 0o755}} {
		c, want := w.c, w.want
		f, err := v.OpenAt(c, nil, "/f", unix.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.Write(c, []byte("y"))
		require.NoError(t, err)
		f.DecRef()
		st, err = v.StatxAt(ctx, nil, "/f", 0, unix.STATX_MODE)
		require.NoError(t, err)
		require.Equal(t, want, st.Mode&0o7777)
	}
}
