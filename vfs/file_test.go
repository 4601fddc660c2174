package vfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

func TestFileOffsetsAndFlags(t *testing.T) {
	v, ctx := newVFS(t)
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	require.NoError(t, err)
	defer f.DecRef()
	require.Equal(t, unix.O_RDWR|vfs.OLargefile, f.StatusFlags())
	// O_PATH files go without O_LARGEFILE, whatever open asked for.
	p, err := v.OpenAt(ctx, nil, "/f", unix.O_PATH|vfs.OLargefile, 0)
	require.NoError(t, err)
	require.Equal(t, unix.O_PATH, p.StatusFlags())
	p.DecRef()
	_, err = f.Write(ctx, []byte("hello world"))
	require.NoError(t, err)

	// dup shares the offset.
	f.IncRef()
	dup := f
	off, err := dup.Seek(ctx, 0, unix.SEEK_CUR)
	require.NoError(t, err)
	require.Equal(t, int64(11), off)
	dup.DecRef()

	for _, c := range []struct {
		off    int64
		whence int
		want   int64
		err    error
	}{
		{0, unix.SEEK_SET, 0, nil},
		{-1, unix.SEEK_SET, 0, unix.EINVAL},
		{-2, unix.SEEK_END, 9, nil},
		{3, unix.SEEK_CUR, 12, nil},
		{-13, unix.SEEK_CUR, 0, unix.EINVAL},
		{0, 5, 0, unix.EINVAL},
		{20, unix.SEEK_DATA, 0, unix.ENXIO},
		{2, unix.SEEK_DATA, 2, nil},
		{2, unix.SEEK_HOLE, 11, nil},
		{1 << 62, unix.SEEK_END, 1<<62 + 11, nil},
		{1 << 62, unix.SEEK_CUR, 0, unix.EINVAL},
	} {
		got, err := f.Seek(ctx, c.off, c.whence)
		if c.err != nil {
			require.ErrorIs(t, err, c.err, "%+v", c)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%+v", c)
	}

	// O_APPEND through F_SETFL; pwrite on O_APPEND appends too.
	require.NoError(t, f.SetStatusFlags(unix.O_APPEND|unix.O_NONBLOCK|unix.O_RDONLY|unix.O_TRUNC))
	require.Equal(t, unix.O_RDWR|unix.O_APPEND|unix.O_NONBLOCK|0x8000, f.StatusFlags())
	_, err = f.Seek(ctx, 0, unix.SEEK_SET)
	require.NoError(t, err)
	_, err = f.Write(ctx, []byte("!"))
	require.NoError(t, err)
	off, _ = f.Seek(ctx, 0, unix.SEEK_CUR)
	require.Equal(t, int64(12), off)
	_, err = f.PWrite(ctx, []byte("?"), 0)
	require.NoError(t, err)
	require.Equal(t, "hello world!?", readFile(t, v, ctx, "/f"))
	_, err = f.PRead(ctx, make([]byte, 1), -1)
	require.ErrorIs(t, err, unix.EINVAL)
	q, err := f.Queued(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, q)

	// Truncate and allocate.
	require.NoError(t, f.Truncate(ctx, 5))
	require.Equal(t, "hello", readFile(t, v, ctx, "/f"))
	require.ErrorIs(t, f.Truncate(ctx, -1), unix.EINVAL)
	require.NoError(t, f.Allocate(ctx, unix.FALLOC_FL_KEEP_SIZE, 0, 100000))
	require.Equal(t, int64(5), stat(t, v, ctx, "/f").Size)
	require.GreaterOrEqual(t, stat(t, v, ctx, "/f").Blocks, int64(100000/512))
	require.NoError(t, f.Allocate(ctx, 0, 10, 10))
	require.Equal(t, int64(20), stat(t, v, ctx, "/f").Size)
	require.ErrorIs(t, f.Allocate(ctx, 0x8, 0, 1), unix.EOPNOTSUPP)
	require.ErrorIs(t, f.Allocate(ctx, 0, -1, 1), unix.EINVAL)
	require.ErrorIs(t, f.Allocate(ctx, 0, 0, 0), unix.EINVAL)
	require.ErrorIs(t, f.Allocate(ctx, 0, 1<<62, 1<<62), unix.EFBIG)
	require.NoError(t, f.Sync(ctx))

	ro, err := v.OpenAt(ctx, nil, "/f", unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer ro.DecRef()
	_, err = ro.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, unix.EBADF)
	require.ErrorIs(t, ro.Truncate(ctx, 0), unix.EINVAL)
	require.ErrorIs(t, ro.Allocate(ctx, 0, 0, 1), unix.EBADF)
	wo, err := v.OpenAt(ctx, nil, "/f", unix.O_WRONLY|unix.O_TRUNC, 0)
	require.NoError(t, err)
	defer wo.DecRef()
	_, err = wo.Read(ctx, make([]byte, 1))
	require.ErrorIs(t, err, unix.EBADF)
	require.Zero(t, stat(t, v, ctx, "/f").Size)
	require.Equal(t, uint32(unix.POLLIN|unix.POLLOUT), ro.Readiness(unix.POLLIN|unix.POLLOUT))
}

func TestTruncateAt(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/d")
	writeFile(t, v, ctx, "/f", "abcdef")
	require.NoError(t, v.TruncateAt(ctx, nil, "/f", 3))
	require.Equal(t, "abc", readFile(t, v, ctx, "/f"))
	require.NoError(t, v.TruncateAt(ctx, nil, "/f", 5))
	require.Equal(t, "abc\x00\x00", readFile(t, v, ctx, "/f"))
	require.ErrorIs(t, v.TruncateAt(ctx, nil, "/d", 0), unix.EISDIR)
	require.ErrorIs(t, v.TruncateAt(ctx, nil, "/f", -1), unix.EINVAL)
	require.NoError(t, v.MknodAt(ctx, nil, "/p", unix.S_IFIFO|0o600, 0))
	require.ErrorIs(t, v.TruncateAt(ctx, nil, "/p", 0), unix.EINVAL)
}

func TestUtimens(t *testing.T) {
	v, ctx := newVFS(t)
	writeFile(t, v, ctx, "/f", "x")
	times := [2]unix.Timespec{{Sec: 100, Nsec: 5}, {Sec: 200, Nsec: 6}}
	require.NoError(t, v.UtimensAt(ctx, nil, "/f", &times, 0))
	st := stat(t, v, ctx, "/f")
	require.Equal(t, unix.Timespec{Sec: 100, Nsec: 5}, st.Atim)
	require.Equal(t, unix.Timespec{Sec: 200, Nsec: 6}, st.Mtim)
	times = [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_NOW}}
	require.NoError(t, v.UtimensAt(ctx, nil, "/f", &times, 0))
	st = stat(t, v, ctx, "/f")
	require.Equal(t, int64(100), st.Atim.Sec)
	require.Greater(t, st.Mtim.Sec, int64(200))
	times = [2]unix.Timespec{{Nsec: 1e9}, {}}
	require.ErrorIs(t, v.UtimensAt(ctx, nil, "/f", &times, 0), unix.EINVAL)
	require.ErrorIs(t, v.UtimensAt(ctx, nil, "/f", nil, 0x1), unix.EINVAL)

	// Others may set "now" with write permission, never explicit times.
	require.NoError(t, v.ChmodAt(ctx, nil, "/f", 0o666, 0))
	u := user(ctx)
	require.NoError(t, v.UtimensAt(u, nil, "/f", nil, 0))
	times = [2]unix.Timespec{{Sec: 1}, {Sec: 1}}
	require.ErrorIs(t, v.UtimensAt(u, nil, "/f", &times, 0), unix.EPERM)

	// fchmod-style calls through AT_EMPTY_PATH.
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	require.NoError(t, v.ChmodAt(ctx, f, "", 0o640, unix.AT_EMPTY_PATH))
	require.Equal(t, uint32(unix.S_IFREG|0o640), stat(t, v, ctx, "/f").Mode)
	var st2 unix.Stat_t
	require.NoError(t, v.StatAt(ctx, f, "", unix.AT_EMPTY_PATH, &st2))
	require.Equal(t, uint32(unix.S_IFREG|0o640), st2.Mode)
	require.ErrorIs(t, v.StatAt(ctx, f, "", 0, &st2), unix.ENOENT)
	stx, err := v.StatxAt(ctx, nil, "/", 0, unix.STATX_BASIC_STATS)
	require.NoError(t, err)
	require.NotZero(t, stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT)
}

func TestPipeFilesAreStreams(t *testing.T) {
	v, ctx := newVFS(t)
	r, w, err := pipe.New(unix.O_NONBLOCK | unix.O_CLOEXEC)
	require.NoError(t, err)
	defer r.DecRef()
	defer w.DecRef()
	// As on Linux, pipe ends go without O_LARGEFILE.
	require.Equal(t, unix.O_RDONLY|unix.O_NONBLOCK, r.StatusFlags())
	require.Equal(t, unix.O_WRONLY|unix.O_NONBLOCK, w.StatusFlags())
	_, err = r.Seek(ctx, 0, unix.SEEK_SET)
	require.ErrorIs(t, err, unix.ESPIPE)
	_, err = w.PWrite(ctx, []byte("x"), 0)
	require.ErrorIs(t, err, unix.ESPIPE)
	require.ErrorIs(t, w.Allocate(ctx, 0, 0, 1), unix.ESPIPE)
	require.ErrorIs(t, r.Sync(ctx), unix.EINVAL)
	_, err = r.Getdents64(ctx, make([]byte, 100))
	require.ErrorIs(t, err, unix.ENOTDIR)
	var st unix.Stat_t
	require.NoError(t, v.StatAt(ctx, r, "", unix.AT_EMPTY_PATH, &st))
	require.Equal(t, uint32(unix.S_IFIFO|0o600), st.Mode)
	_, err = v.OpenAt(ctx, r, "x", unix.O_RDONLY, 0)
	require.ErrorIs(t, err, unix.ENOTDIR)
	_, ok := r.VirtualDentry()
	require.False(t, ok)
}
