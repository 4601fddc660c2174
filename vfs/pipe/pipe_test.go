package pipe_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

func TestPipeBasics(t *testing.T) {
	ctx := context.Background()
	_, _, err := pipe.New(unix.O_DIRECT)
	require.ErrorIs(t, err, unix.EINVAL)
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	require.Equal(t, uint32(unix.POLLOUT), w.Readiness(unix.POLLIN|unix.POLLOUT))
	require.Zero(t, r.Readiness(unix.POLLIN))
	n, err := w.Write(ctx, []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, 5, n)
	q, err := r.Queued(ctx)
	require.NoError(t, err)
	require.Equal(t, 5, q)
	require.Equal(t, uint32(unix.POLLIN), r.Readiness(unix.POLLIN))
	_, err = r.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, unix.EBADF)
	buf := make([]byte, 3)
	n, err = r.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "hel", string(buf[:n]))
	w.DecRef()
	require.Equal(t, uint32(unix.POLLIN|unix.POLLHUP), r.Readiness(unix.POLLIN))
	n, err = r.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "lo", string(buf[:n]))
	n, err = r.Read(ctx, buf)
	require.NoError(t, err)
	require.Zero(t, n)
	r.DecRef()
}

func TestPipeEPIPEAndNonblock(t *testing.T) {
	ctx := context.Background()
	r, w, err := pipe.New(unix.O_NONBLOCK)
	require.NoError(t, err)
	defer w.DecRef()
	_, err = r.Read(ctx, make([]byte, 1))
	require.ErrorIs(t, err, unix.EAGAIN)
	n, err := w.Write(ctx, make([]byte, pipe.DefaultCapacity+100))
	require.NoError(t, err)
	require.Equal(t, pipe.DefaultCapacity, n)
	_, err = w.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, unix.EAGAIN)
	require.Zero(t, w.Readiness(unix.POLLOUT))

	// An atomic write waits for room for all of it.
	_, err = r.Read(ctx, make([]byte, 100))
	require.NoError(t, err)
	_, err = w.Write(ctx, make([]byte, 200))
	require.ErrorIs(t, err, unix.EAGAIN)
	n, err = w.Write(ctx, make([]byte, 100))
	require.NoError(t, err)
	require.Equal(t, 100, n)

	r.DecRef()
	_, err = w.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, unix.EPIPE)
	require.Equal(t, uint32(unix.POLLERR), w.Readiness(unix.POLLOUT))
	n, err = w.Write(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestPipeBlockingAndCancel(t *testing.T) {
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer r.DecRef()
	defer w.DecRef()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := r.Read(ctx, make([]byte, 1))
		done <- err
	}()
	time.Sleep(5 * time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, unix.EINTR)

	// A large write blocks until a reader drains it, then completes.
	bg := context.Background()
	data := bytes.Repeat([]byte("abcdefgh"), pipe.DefaultCapacity/2)
	var wg sync.WaitGroup
	wg.Go(func() {
		n, err := w.Write(bg, data)
		require.NoError(t, err)
		require.Equal(t, len(data), n)
	})
	var got []byte
	buf := make([]byte, 10000)
	for len(got) < len(data) {
		n, err := r.Read(bg, buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	wg.Wait()
	require.Equal(t, data, got)

	// A blocked writer gets the bytes it wrote so far, or EINTR.
	n, err := w.Write(bg, make([]byte, pipe.DefaultCapacity))
	require.NoError(t, err)
	require.Equal(t, pipe.DefaultCapacity, n)
	ctx, cancel = context.WithTimeout(bg, 10*time.Millisecond)
	defer cancel()
	_, err = w.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, unix.EINTR)
}

func TestAtomicWritesDoNotInterleave(t *testing.T) {
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer r.DecRef()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			rec := bytes.Repeat([]byte{byte('a' + i)}, pipe.AtomicMax)
			for range 50 {
				_, err := w.Write(ctx, rec)
				require.NoError(t, err)
			}
		})
	}
	go func() {
		wg.Wait()
		w.DecRef()
	}()
	var all []byte
	buf := make([]byte, 3000)
	for {
		n, err := r.Read(ctx, buf)
		require.NoError(t, err)
		if n == 0 {
			break
		}
		all = append(all, buf[:n]...)
	}
	require.Len(t, all, 4*50*pipe.AtomicMax)
	for i := 0; i < len(all); i += pipe.AtomicMax {
		rec := all[i : i+pipe.AtomicMax]
		require.Equal(t, bytes.Repeat(rec[:1], pipe.AtomicMax), rec)
	}
}

func TestPipeNotifiesReadinessChanges(t *testing.T) {
	ctx := context.Background()
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	require.True(t, r.CanPoll())
	var got []uint32
	waiter := vfs.NewWaiter(func(ev uint32) { got = append(got, ev) })
	r.EventRegister(waiter)
	_, err = w.Write(ctx, []byte("ab"))
	require.NoError(t, err)
	require.Equal(t, []uint32{unix.POLLIN | unix.EPOLLRDNORM}, got)
	_, err = r.Read(ctx, make([]byte, 1))
	require.NoError(t, err)
	require.Equal(t, uint32(unix.POLLOUT|unix.EPOLLWRNORM), got[1])
	w.DecRef()
	require.Equal(t, vfs.AllEvents, got[2])
	require.Equal(t, uint32(unix.POLLIN|unix.POLLHUP), r.Readiness(unix.POLLIN))
	r.EventUnregister(waiter)
	r.DecRef()
	require.Len(t, got, 3)
}

func TestPipeReadWakesOnNotification(t *testing.T) {
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer r.DecRef()
	ch := make(chan struct{}, 1)
	waiter := vfs.NewChanWaiter(ch, unix.POLLIN)
	r.EventRegister(waiter)
	defer r.EventUnregister(waiter)
	go func() {
		time.Sleep(time.Millisecond)
		w.Write(context.Background(), []byte("x"))
		w.DecRef()
	}()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	require.NotZero(t, r.Readiness(unix.POLLIN)&unix.POLLIN)
}

func TestRoundSize(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want int
	}{{0, 4096}, {1, 4096}, {4096, 4096}, {4097, 8192}, {5000, 8192}, {1 << 20, 1 << 20}, {1 << 31, 1 << 31}, {1<<31 + 1, 0}, {1 << 40, 0}} {
		require.Equal(t, c.want, pipe.RoundSize(c.in), "%d", c.in)
	}
}

// TestCapacityChanges checks that F_SETPIPE_SZ's capacity bounds what a
// write queues and what poll reports, keeps the queued bytes in order
// across a change, and refuses to drop queued bytes.
func TestCapacityChanges(t *testing.T) {
	ctx := context.Background()
	r, w, err := pipe.New(unix.O_NONBLOCK)
	require.NoError(t, err)
	defer r.DecRef()
	defer w.DecRef()
	p, ok := pipe.Of(w)
	require.True(t, ok)
	require.Equal(t, pipe.DefaultCapacity, p.Capacity())
	require.NoError(t, p.SetCapacity(4096))
	data := bytes.Repeat([]byte("0123456789abcdef"), 512) // 8 KiB
	n, err := w.Write(ctx, data)
	require.NoError(t, err)
	require.Equal(t, 4096, n)
	_, err = w.Write(ctx, data[:1])
	require.ErrorIs(t, err, unix.EAGAIN)
	require.Zero(t, w.Readiness(unix.POLLOUT))
	require.Zero(t, p.Free())

	// The ring wraps before it grows: read some, write more, then grow.
	got := make([]byte, 1000)
	_, err = r.Read(ctx, got)
	require.NoError(t, err)
	n, err = w.Write(ctx, data[4096:5096])
	require.NoError(t, err)
	require.Equal(t, 1000, n)
	require.NoError(t, p.SetCapacity(4096*2))
	n, err = w.Write(ctx, data[5096:])
	require.NoError(t, err)
	require.Equal(t, len(data)-5096, n)
	require.Equal(t, 1000, p.Free())
	require.ErrorIs(t, p.SetCapacity(4096), unix.EBUSY)
	rest := make([]byte, len(data))
	n, err = r.Read(ctx, rest)
	require.NoError(t, err)
	require.Equal(t, data[1000:], rest[:n])

	// Shrinking an empty pipe keeps it usable.
	require.NoError(t, p.SetCapacity(4096))
	require.Equal(t, uint32(unix.POLLOUT), w.Readiness(unix.POLLOUT))
	n, err = w.Write(ctx, data[:10])
	require.NoError(t, err)
	require.Equal(t, 10, n)
	n, err = r.Read(ctx, rest)
	require.NoError(t, err)
	require.Equal(t, data[:10], rest[:n])
}
