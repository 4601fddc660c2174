package epoll_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/epoll"
	"github.com/kvmbox/kvmbox/vfs/eventfd"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

func collect(t *testing.T, ep *vfs.File) []epoll.Event {
	t.Helper()
	out := make([]epoll.Event, 8)
	n, err := epoll.Collect(ep, out)
	require.NoError(t, err)
	return out[:n]
}

func newPipe(t *testing.T) (r, w *vfs.File) {
	t.Helper()
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	return r, w
}

func write(t *testing.T, f *vfs.File, s string) {
	t.Helper()
	_, err := f.Write(context.Background(), []byte(s))
	require.NoError(t, err)
}

func TestTriggers(t *testing.T) {
	ep := epoll.New()
	defer ep.DecRef()
	r, w := newPipe(t)
	defer r.DecRef()
	defer w.DecRef()
	in := []epoll.Event{{Events: unix.EPOLLIN, Data: 1}}

	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, r, 3, unix.EPOLLIN, 1))
	require.Empty(t, collect(t, ep))
	write(t, w, "ab")
	require.Equal(t, in, collect(t, ep))
	require.Equal(t, in, collect(t, ep), "level-triggered: still ready")

	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_MOD, r, 3, unix.EPOLLIN|unix.EPOLLET, 1))
	require.Equal(t, in, collect(t, ep), "MOD reports a file that is ready")
	require.Empty(t, collect(t, ep), "edge-triggered: once")
	_, err := r.Read(context.Background(), make([]byte, 1))
	require.NoError(t, err)
	require.Empty(t, collect(t, ep), "a read is no edge for EPOLLIN")
	write(t, w, "c")
	require.Equal(t, in, collect(t, ep))

	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_MOD, r, 3, unix.EPOLLIN|unix.EPOLLONESHOT, 1))
	require.Equal(t, in, collect(t, ep))
	write(t, w, "d")
	require.Empty(t, collect(t, ep), "one-shot: disarmed")
	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_MOD, r, 3, unix.EPOLLIN, 1))
	require.Equal(t, in, collect(t, ep))

	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_DEL, r, 3, 0, 0))
	require.Empty(t, collect(t, ep))
}

func TestCtlErrors(t *testing.T) {
	ep := epoll.New()
	defer ep.DecRef()
	r, w := newPipe(t)
	defer r.DecRef()
	defer w.DecRef()
	plain := vfs.NewFile(nil, unix.O_RDONLY)
	require.ErrorIs(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, plain, 5, unix.EPOLLIN, 0), unix.EPERM)
	require.ErrorIs(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, ep, 4, unix.EPOLLIN, 0), unix.EINVAL)
	require.ErrorIs(t, epoll.Ctl(r, unix.EPOLL_CTL_ADD, w, 4, unix.EPOLLIN, 0), unix.EINVAL)
	require.ErrorIs(t, epoll.Ctl(ep, unix.EPOLL_CTL_DEL, r, 3, 0, 0), unix.ENOENT)
	require.ErrorIs(t, epoll.Ctl(ep, unix.EPOLL_CTL_MOD, r, 3, unix.EPOLLIN, 0), unix.ENOENT)
	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, r, 3, unix.EPOLLIN|unix.EPOLLEXCLUSIVE, 0))
	require.ErrorIs(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, r, 3, unix.EPOLLIN, 0), unix.EEXIST)
	require.ErrorIs(t, epoll.Ctl(ep, unix.EPOLL_CTL_MOD, r, 3, unix.EPOLLIN, 0), unix.EINVAL)
	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, r, 7, unix.EPOLLIN, 0), "another descriptor of the same file")
	require.ErrorIs(t, epoll.Ctl(ep, 99, r, 3, unix.EPOLLIN, 0), unix.EINVAL)
}

func TestWatchEndsWithTheFile(t *testing.T) {
	ep := epoll.New()
	defer ep.DecRef()
	e, err := eventfd.New(1, 0)
	require.NoError(t, err)
	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, e, 3, unix.EPOLLIN, 9))
	e.IncRef() // a dup
	e.DecRef()
	require.Len(t, collect(t, ep), 1)
	e.DecRef()
	require.Empty(t, collect(t, ep))
	require.Zero(t, ep.Readiness(unix.POLLIN))
}

func TestReleaseUnregistersWatches(t *testing.T) {
	r, w := newPipe(t)
	defer r.DecRef()
	defer w.DecRef()
	ep := epoll.New()
	require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, r, 3, unix.EPOLLIN, 0))
	ep.DecRef()
	// Neither the write's notification nor the pipe's release reaches
	// the released instance.
	write(t, w, "x")
}

func TestNesting(t *testing.T) {
	outer, inner := epoll.New(), epoll.New()
	defer outer.DecRef()
	defer inner.DecRef()
	r, w := newPipe(t)
	defer r.DecRef()
	defer w.DecRef()
	require.NoError(t, epoll.Ctl(outer, unix.EPOLL_CTL_ADD, inner, 4, unix.EPOLLIN, 4))
	require.ErrorIs(t, epoll.Ctl(inner, unix.EPOLL_CTL_ADD, outer, 3, unix.EPOLLIN, 3), unix.ELOOP)
	require.ErrorIs(t, epoll.Ctl(outer, unix.EPOLL_CTL_ADD, inner, 5, unix.EPOLLIN|unix.EPOLLEXCLUSIVE, 4), unix.EINVAL)
	require.NoError(t, epoll.Ctl(inner, unix.EPOLL_CTL_ADD, r, 5, unix.EPOLLIN, 5))

	ch := make(chan struct{}, 1)
	waiter := vfs.NewChanWaiter(ch, unix.POLLIN)
	outer.EventRegister(waiter)
	defer outer.EventUnregister(waiter)
	require.Empty(t, collect(t, outer))
	write(t, w, "x")
	<-ch
	require.Equal(t, uint32(unix.POLLIN), outer.Readiness(unix.POLLIN|unix.POLLOUT))
	require.Equal(t, []epoll.Event{{Events: unix.EPOLLIN, Data: 4}}, collect(t, outer))
	require.Equal(t, []epoll.Event{{Events: unix.EPOLLIN, Data: 5}}, collect(t, inner))
}

func TestNestingDepthIsBounded(t *testing.T) {
	eps := make([]*vfs.File, 7)
	for i := range eps {
		eps[i] = epoll.New()
		defer eps[i].DecRef()
	}
	// Built from the top down and from the bottom up, a chain stops at
	// five instances.
	for i := 0; i < 4; i++ {
		require.NoError(t, epoll.Ctl(eps[i], unix.EPOLL_CTL_ADD, eps[i+1], int32(i+1), unix.EPOLLIN, 0))
	}
	require.ErrorIs(t, epoll.Ctl(eps[4], unix.EPOLL_CTL_ADD, eps[5], 5, unix.EPOLLIN, 0), unix.ELOOP)
	require.NoError(t, epoll.Ctl(eps[5], unix.EPOLL_CTL_ADD, eps[6], 6, unix.EPOLLIN, 0))
	require.ErrorIs(t, epoll.Ctl(eps[6], unix.EPOLL_CTL_ADD, eps[0], 0, unix.EPOLLIN, 0), unix.ELOOP)
	// Dropping a link makes room again.
	require.NoError(t, epoll.Ctl(eps[1], unix.EPOLL_CTL_DEL, eps[2], 2, 0, 0))
	require.NoError(t, epoll.Ctl(eps[4], unix.EPOLL_CTL_ADD, eps[5], 5, unix.EPOLLIN, 0))
}

func TestLevelTriggeredEntriesTakeTurns(t *testing.T) {
	ep := epoll.New()
	defer ep.DecRef()
	var files []*vfs.File
	for i := range 3 {
		e, err := eventfd.New(1, 0)
		require.NoError(t, err)
		defer e.DecRef()
		files = append(files, e)
		require.NoError(t, epoll.Ctl(ep, unix.EPOLL_CTL_ADD, e, int32(i), unix.EPOLLIN, uint64(i)))
	}
	out := make([]epoll.Event, 2)
	var seen []uint64
	for range 3 {
		n, err := epoll.Collect(ep, out)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		seen = append(seen, out[0].Data, out[1].Data)
	}
	require.Equal(t, []uint64{0, 1, 2, 0, 1, 2}, seen)
}
