package tmpfs_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func setup(t *testing.T, opts tmpfs.Options) (*vfs.VFS, *vfs.Context) {
	t.Helper()
	v, err := vfs.New(context.Background(), tmpfs.New(opts))
	require.NoError(t, err)
	root := v.Root()
	return v, &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: root, Cwd: root}
}

func TestSparseFile(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/sparse", unix.O_RDWR|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	defer f.DecRef()
	_, err = f.PWrite(ctx, []byte("end"), 1<<40)
	require.NoError(t, err)
	st, err := f.Stat(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1<<40+3), st.Size)
	require.Equal(t, uint64(8), st.Blocks)
	buf := make([]byte, 10)
	n, err := f.PRead(ctx, buf, 1<<40-7)
	require.NoError(t, err)
	require.Equal(t, "\x00\x00\x00\x00\x00\x00\x00end", string(buf[:n]))
	off, err := f.Seek(ctx, 0, unix.SEEK_DATA)
	require.NoError(t, err)
	require.Equal(t, int64(1<<40), off)
	off, err = f.Seek(ctx, 0, unix.SEEK_HOLE)
	require.NoError(t, err)
	require.Equal(t, int64(0), off)
	off, err = f.Seek(ctx, 1<<40, unix.SEEK_HOLE)
	require.NoError(t, err)
	require.Equal(t, int64(1<<40+3), off)
	_, err = f.PWrite(ctx, []byte("x"), 1<<63-1)
	require.ErrorIs(t, err, unix.EFBIG)
}

func TestLargeSequentialWrite(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/big", unix.O_RDWR|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	defer f.DecRef()
	block := bytes.Repeat([]byte("0123456789abcdef"), 4096/16*3)
	for range 2000 {
		n, err := f.Write(ctx, block)
		require.NoError(t, err)
		require.Equal(t, len(block), n)
	}
	_, err = f.Seek(ctx, 0, unix.SEEK_SET)
	require.NoError(t, err)
	got := make([]byte, len(block))
	for range 2000 {
		n, err := f.Read(ctx, got)
		require.NoError(t, err)
		require.Equal(t, block, got[:n])
	}
	n, err := f.Read(ctx, got)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestSizeLimit(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{MaxBytes: 1 << 20})
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	defer f.DecRef()
	n, err := f.Write(ctx, make([]byte, 2<<20))
	require.NoError(t, err)
	require.Equal(t, 1<<20, n)
	_, err = f.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, unix.ENOSPC)
	require.ErrorIs(t, f.Allocate(ctx, 0, 2<<20, 4096), unix.ENOSPC)
	st, err := v.StatfsAt(ctx, nil, "/")
	require.NoError(t, err)
	require.Equal(t, int64(unix.TMPFS_MAGIC), st.Type)
	require.Zero(t, st.Bfree)
	require.NoError(t, f.Truncate(ctx, 0))
	n, err = f.Write(ctx, []byte("x"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestAttributes(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{Mode: 0o755, UID: 5, GID: 6})
	var st unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, "/", 0, &st))
	require.Equal(t, uint32(unix.S_IFDIR|0o755), st.Mode)
	require.Equal(t, [2]uint32{5, 6}, [2]uint32{st.Uid, st.Gid})
	require.NoError(t, v.MkdirAt(ctx, nil, "/d", 0o700))
	require.NoError(t, v.MkdirAt(ctx, nil, "/d/e", 0o700))
	require.NoError(t, v.StatAt(ctx, nil, "/d", 0, &st))
	require.Equal(t, uint64(3), st.Nlink)
	dirIno := st.Ino
	before := st.Mtim
	time.Sleep(2 * time.Millisecond)
	f, err := v.OpenAt(ctx, nil, "/d/f", unix.O_WRONLY|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	f.DecRef()
	require.NoError(t, v.StatAt(ctx, nil, "/d", 0, &st))
	require.NotEqual(t, before, st.Mtim)
	require.NoError(t, v.StatAt(ctx, nil, "/d/f", 0, &st))
	require.NotEqual(t, dirIno, st.Ino)
	require.Equal(t, int64(4096), st.Blksize)
	require.NoError(t, v.UnlinkAt(ctx, nil, "/d/e", unix.AT_REMOVEDIR))
	require.NoError(t, v.StatAt(ctx, nil, "/d", 0, &st))
	require.Equal(t, uint64(2), st.Nlink)
}

func TestFIFO(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	require.NoError(t, v.MknodAt(ctx, nil, "/fifo", unix.S_IFIFO|0o666, 0))
	_, err := v.OpenAt(ctx, nil, "/fifo", unix.O_WRONLY|unix.O_NONBLOCK, 0)
	require.ErrorIs(t, err, unix.ENXIO)
	r, err := v.OpenAt(ctx, nil, "/fifo", unix.O_RDONLY|unix.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer r.DecRef()
	w, err := v.OpenAt(ctx, nil, "/fifo", unix.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.Write(ctx, []byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 10)
	n, err := r.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf[:n]))
	_, err = r.Read(ctx, buf)
	require.ErrorIs(t, err, unix.EAGAIN)
	w.DecRef()
	n, err = r.Read(ctx, buf)
	require.NoError(t, err)
	require.Zero(t, n)
	var st unix.Stat_t
	require.NoError(t, v.StatAt(ctx, r, "", unix.AT_EMPTY_PATH, &st))
	require.Equal(t, uint32(unix.S_IFIFO|0o666), st.Mode)

	// A blocking open waits for a partner and can be cancelled.
	c, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	cc := *ctx
	cc.Context = c
	w, err = v.OpenAt(&cc, nil, "/fifo", unix.O_WRONLY, 0)
	require.NoError(t, err)
	w.DecRef()
	r.DecRef()
	_, err = v.OpenAt(&cc, nil, "/fifo", unix.O_WRONLY, 0)
	require.ErrorIs(t, err, unix.EINTR)
	done := make(chan error)
	go func() {
		f, err := v.OpenAt(ctx, nil, "/fifo", unix.O_RDONLY, 0)
		if err == nil {
			f.DecRef()
		}
		done <- err
	}()
	rw, err := v.OpenAt(ctx, nil, "/fifo", unix.O_RDWR, 0)
	require.NoError(t, err)
	defer rw.DecRef()
	require.NoError(t, <-done)
}
