package vfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

func TestQueueNotifiesRegisteredWaiters(t *testing.T) {
	var q vfs.Queue
	q.Notify(unix.POLLIN) // nobody listens: nothing to do
	var a, b []uint32
	wa := vfs.NewWaiter(func(ev uint32) { a = append(a, ev) })
	wb := vfs.NewWaiter(func(ev uint32) { b = append(b, ev) })
	q.EventRegister(wa)
	q.EventRegister(wb)
	q.Notify(unix.POLLIN)
	q.EventUnregister(wa)
	q.EventUnregister(wa) // not on the queue any more: no effect
	q.Notify(unix.POLLOUT)
	q.EventUnregister(wb)
	q.Notify(unix.POLLHUP)
	require.Equal(t, []uint32{unix.POLLIN}, a)
	require.Equal(t, []uint32{unix.POLLIN, unix.POLLOUT}, b)
}

func TestChanWaiterFiltersEvents(t *testing.T) {
	var q vfs.Queue
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	q.EventRegister(w)
	defer q.EventUnregister(w)
	q.Notify(unix.POLLOUT)
	require.Empty(t, ch)
	q.Notify(unix.POLLIN)
	q.Notify(unix.POLLIN) // a second one does not block
	require.Len(t, ch, 1)
	<-ch
	q.Notify(unix.POLLHUP) // always heard
	require.Len(t, ch, 1)
}

func TestRegularFilesAreAlwaysReady(t *testing.T) {
	v, ctx := newVFS(t)
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR|unix.O_CREAT, 0o600)
	require.NoError(t, err)
	defer f.DecRef()
	require.False(t, f.CanPoll())
	require.Equal(t, uint32(unix.POLLIN|unix.POLLOUT|unix.EPOLLRDNORM), f.Readiness(unix.POLLIN|unix.POLLOUT|unix.POLLPRI|unix.EPOLLRDNORM))
	w := vfs.NewWaiter(func(uint32) { t.Fatal("a regular file never changes") })
	f.EventRegister(w)
	f.EventUnregister(w)
}

func TestReleaseHooksRunAtTheLastReference(t *testing.T) {
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer w.DecRef()
	ran := 0
	r.OnRelease(func() { ran++ })
	cancel := r.OnRelease(func() { t.Fatal("cancelled hook ran") })
	cancel()
	r.IncRef()
	r.DecRef()
	require.Zero(t, ran)
	r.DecRef()
	require.Equal(t, 1, ran)
}
