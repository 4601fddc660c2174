package pipe

import (
	"context"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestPeekLeavesTheDataInThePipe(t *testing.T) {
	ctx := context.Background()
	r, w, err := New(unix.O_NONBLOCK)
	require.NoError(t, err)
	defer r.DecRef()
	_, err = Peek(ctx, r, make([]byte, 4), true)
	require.ErrorIs(t, err, unix.EAGAIN)
	_, err = w.Write(ctx, []byte("hello"))
	require.NoError(t, err)
	buf := make([]byte, 3)
	n, err := Peek(ctx, r, buf, true)
	require.NoError(t, err)
	require.Equal(t, "hel", string(buf[:n]))
	all := make([]byte, 10)
	n, err = r.Read(ctx, all)
	require.NoError(t, err)
	require.Equal(t, "hello", string(all[:n]), "peeking consumed nothing")

	n, err = WriteNow(w, make([]byte, DefaultCapacity+10))
	require.NoError(t, err)
	require.Equal(t, DefaultCapacity, n, "only what fits")
	_, err = WriteNow(w, []byte("x"))
	require.ErrorIs(t, err, unix.EAGAIN)
	_, err = Peek(ctx, w, buf, true)
	require.ErrorIs(t, err, unix.EINVAL, "the write end cannot be peeked")
	w.DecRef()
	r2, w2, err := New(0)
	require.NoError(t, err)
	w2.DecRef()
	n, err = Peek(ctx, r2, buf, false)
	require.NoError(t, err)
	require.Zero(t, n, "end of file without writers")
	r2.DecRef()
}

func TestNoWaitCallersNeverWait(t *testing.T) {
	ctx := vfs.NoWait(context.Background())
	r, w, err := New(0)
	require.NoError(t, err)
	defer r.DecRef()
	defer w.DecRef()
	_, err = r.Read(ctx, make([]byte, 4))
	require.ErrorIs(t, err, vfs.ErrWouldWait, "an empty pipe with a writer would wait")
	n, err := w.Write(ctx, []byte("ok"))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	buf := make([]byte, 4)
	n, err = r.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "ok", string(buf[:n]))
	_, err = w.Write(ctx, make([]byte, DefaultCapacity+1))
	require.ErrorIs(t, err, vfs.ErrWouldWait, "a write that cannot fit whole would wait")
	n, err = w.Write(context.Background(), make([]byte, DefaultCapacity-1))
	require.NoError(t, err)
	require.Equal(t, DefaultCapacity-1, n)
	_, err = w.Write(ctx, []byte("xy"))
	require.ErrorIs(t, err, vfs.ErrWouldWait)
	n, err = w.Write(ctx, []byte("z"))
	require.NoError(t, err, "what fits is written")
	require.Equal(t, 1, n)
}

func TestNoWaitCallersLeaveWakingToTheCaller(t *testing.T) {
	noWait := vfs.NoWait(context.Background())
	r, w, err := New(0)
	require.NoError(t, err)
	defer r.DecRef()
	defer w.DecRef()
	p, ok := Of(r)
	require.True(t, ok)
	require.False(t, p.Immediate(false, false, 1), "a read of an empty pipe would wait")
	require.True(t, p.Immediate(false, true, 1), "a non-blocking one fails at once")
	require.True(t, p.Immediate(true, false, 1))

	got := make(chan string)
	go func() {
		buf := make([]byte, 4)
		n, _ := r.Read(context.Background(), buf)
		got <- string(buf[:n])
	}()
	require.Eventually(t, func() bool { return !p.Immediate(true, false, 1) }, 5*time.Second, time.Millisecond,
		"a write that would wake the sleeping reader is not immediate")
	_, err = w.Write(noWait, []byte("x"))
	require.ErrorIs(t, err, vfs.ErrWouldWait, "waking the reader is left to the caller's thread")
	n, err := w.Write(context.Background(), []byte("x"))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, "x", <-got)
	require.True(t, p.Immediate(true, false, 1), "nobody sleeps any more")

	n, err = w.Write(context.Background(), make([]byte, DefaultCapacity))
	require.NoError(t, err)
	require.Equal(t, DefaultCapacity, n)
	require.False(t, p.Immediate(true, false, 1), "a write to a full pipe would wait")
	require.True(t, p.Immediate(true, true, 1), "a non-blocking one fails at once")
	require.True(t, p.Immediate(false, false, 1))
}
