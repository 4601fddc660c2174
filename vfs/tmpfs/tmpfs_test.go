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

func TestDeletedFilesGiveTheirSpaceBack(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{MaxBytes: 1 << 20})
	data := make([]byte, 768<<10)
	write := func(path string, data []byte) error {
		f, err := v.OpenAt(ctx, nil, path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644)
		require.NoError(t, err)
		defer f.DecRef()
		n, err := f.Write(ctx, data)
		if err == nil && n < len(data) {
			return unix.ENOSPC
		}
		return err
	}
	for range 50 {
		require.NoError(t, write("/f", data))
		require.NoError(t, v.UnlinkAt(ctx, nil, "/f", 0))
	}
	// Replacing a file by a rename frees the replaced one.
	for range 10 {
		require.NoError(t, write("/f", data[:400<<10]))
		require.NoError(t, v.RenameAt(ctx, nil, "/f", nil, "/g", 0))
	}

	// An open file keeps its space until it is closed, as on Linux.
	require.NoError(t, write("/g", data))
	f, err := v.OpenAt(ctx, nil, "/g", unix.O_RDONLY, 0)
	require.NoError(t, err)
	require.NoError(t, v.UnlinkAt(ctx, nil, "/g", 0))
	require.ErrorIs(t, write("/h", data), unix.ENOSPC)
	buf := make([]byte, 4)
	n, err := f.PRead(ctx, buf, 1000)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	f.DecRef()
	require.NoError(t, write("/h", data))
	// A second link keeps it too.
	require.NoError(t, v.LinkAt(ctx, nil, "/h", nil, "/h2", 0))
	require.NoError(t, v.UnlinkAt(ctx, nil, "/h", 0))
	require.ErrorIs(t, write("/i", data), unix.ENOSPC)
	require.NoError(t, v.UnlinkAt(ctx, nil, "/h2", 0))
	require.NoError(t, write("/i", data))
}

// TestSeekHoleInPages checks SEEK_DATA and SEEK_HOLE against what Linux's
// tmpfs answers (measured on /dev/shm): data and holes come in pages, and
// fallocated pages never written are holes.
func TestSeekHoleInPages(t *testing.T) {
	v, ctx := setup(t, tmpfs.Options{})
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	defer f.DecRef()
	const enxio = -1
	check := func(step string, off, hole, data int64) {
		t.Helper()
		for _, c := range []struct {
			whence int
			want   int64
		}{{unix.SEEK_HOLE, hole}, {unix.SEEK_DATA, data}} {
			got, err := f.Seek(ctx, off, c.whence)
			if c.want == enxio {
				require.ErrorIs(t, err, unix.ENXIO, "%s: whence %d from %d", step, c.whence, off)
				continue
			}
			require.NoError(t, err, "%s: whence %d from %d", step, c.whence, off)
			require.Equal(t, c.want, got, "%s: whence %d from %d", step, c.whence, off)
		}
	}
	pwrite := func(s string, off int64) {
		_, err := f.PWrite(ctx, []byte(s), off)
		require.NoError(t, err)
	}
	pwrite("0123456789", 0)
	check("10 bytes", 0, 10, 0)
	check("10 bytes", 5, 10, 5)
	check("10 bytes", 10, enxio, enxio)
	require.NoError(t, f.Truncate(ctx, 1<<20))
	check("truncated to 1 MiB", 0, 4096, 0)
	check("truncated to 1 MiB", 5000, 5000, enxio)
	pwrite("x", 8192)
	check("byte at 8192", 0, 4096, 0)
	check("byte at 8192", 4096, 4096, 8192)
	check("byte at 8192", 8000, 8000, 8192)
	check("byte at 8192", 8193, 12288, 8193)
	check("byte at 8192", 12288, 12288, enxio)
	pwrite("y", 2*65536+5)
	check("byte at 128 KiB", 8193, 12288, 8193)
	check("byte at 128 KiB", 12288, 12288, 131072)
	check("byte at 128 KiB", 131072, 135168, 131072)
	require.NoError(t, f.Truncate(ctx, 0))
	require.NoError(t, f.Allocate(ctx, 0, 0, 16384))
	check("fallocated", 0, 0, enxio)
	pwrite("z", 4096)
	check("fallocated, one page written", 0, 0, 4096)
	check("fallocated, one page written", 4097, 8192, 4097)
	require.NoError(t, f.Truncate(ctx, 3))
	check("truncated to 3", 0, 0, enxio)
	require.NoError(t, f.Truncate(ctx, 0))
	require.NoError(t, f.Truncate(ctx, 100000))
	check("sparse", 0, 0, enxio)
	pwrite("z", 99999)
	check("sparse, last byte written", 0, 0, 98304)
	check("sparse, last byte written", 99000, 100000, 99000)
	st, err := f.Stat(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4096/512), st.Blocks, "one page charged")
}
