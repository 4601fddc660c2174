package eventfd_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/eventfd"
)

func u64(v uint64) []byte {
	return binary.LittleEndian.AppendUint64(nil, v)
}

func read(t *testing.T, ctx context.Context, f *vfs.File) (uint64, error) {
	t.Helper()
	buf := make([]byte, 16)
	n, err := f.Read(ctx, buf)
	if err != nil {
		return 0, err
	}
	require.Equal(t, 8, n)
	return binary.LittleEndian.Uint64(buf), nil
}

func TestCounter(t *testing.T) {
	ctx := context.Background()
	_, err := eventfd.New(0, 0x10)
	require.ErrorIs(t, err, unix.EINVAL)
	f, err := eventfd.New(3, unix.EFD_NONBLOCK)
	require.NoError(t, err)
	defer f.DecRef()
	require.Equal(t, unix.O_RDWR|unix.O_NONBLOCK, f.StatusFlags())
	require.Equal(t, uint32(unix.POLLIN|unix.POLLOUT), f.Readiness(unix.POLLIN|unix.POLLOUT))
	v, err := read(t, ctx, f)
	require.NoError(t, err)
	require.Equal(t, uint64(3), v)
	_, err = read(t, ctx, f)
	require.ErrorIs(t, err, unix.EAGAIN)
	_, err = f.Read(ctx, make([]byte, 7))
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = f.Write(ctx, make([]byte, 16))
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = f.Write(ctx, u64(1<<64-1))
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = f.Write(ctx, u64(1<<64-2))
	require.NoError(t, err)
	require.Equal(t, uint32(unix.POLLIN), f.Readiness(unix.POLLIN|unix.POLLOUT))
	_, err = f.Write(ctx, u64(1))
	require.ErrorIs(t, err, unix.EAGAIN)
	_, err = f.Write(ctx, u64(0))
	require.NoError(t, err)
}

func TestSemaphore(t *testing.T) {
	ctx := context.Background()
	f, err := eventfd.New(2, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK)
	require.NoError(t, err)
	defer f.DecRef()
	for range 2 {
		v, err := read(t, ctx, f)
		require.NoError(t, err)
		require.Equal(t, uint64(1), v)
	}
	_, err = read(t, ctx, f)
	require.ErrorIs(t, err, unix.EAGAIN)
}

func TestBlockingReadAndWrite(t *testing.T) {
	f, err := eventfd.New(0, 0)
	require.NoError(t, err)
	defer f.DecRef()
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	f.EventRegister(w)
	defer f.EventUnregister(w)

	// A read waits for a write.
	done := make(chan uint64)
	go func() {
		buf := make([]byte, 8)
		f.Read(context.Background(), buf)
		done <- binary.LittleEndian.Uint64(buf)
	}()
	time.Sleep(time.Millisecond)
	_, err = f.Write(context.Background(), u64(5))
	require.NoError(t, err)
	require.Equal(t, uint64(5), <-done)
	<-ch

	// A caller that must not wait is told so; a cancelled one gets EINTR.
	_, err = read(t, vfs.NoWait(context.Background()), f)
	require.ErrorIs(t, err, vfs.ErrWouldWait)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Millisecond, cancel)
	_, err = read(t, ctx, f)
	require.ErrorIs(t, err, unix.EINTR)

	// A write that would overflow waits for a read.
	_, err = f.Write(context.Background(), u64(1<<64-2))
	require.NoError(t, err)
	wrote := make(chan error)
	go func() {
		_, err := f.Write(context.Background(), u64(1))
		wrote <- err
	}()
	time.Sleep(time.Millisecond)
	v, err := read(t, context.Background(), f)
	require.NoError(t, err)
	require.Equal(t, uint64(1<<64-2), v)
	require.NoError(t, <-wrote)
	v, err = read(t, context.Background(), f)
	require.NoError(t, err)
	require.Equal(t, uint64(1), v)
}
