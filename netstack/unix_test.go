package netstack

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

var testCred = Cred{PID: 7, UID: 1000, GID: 100}

func sock(t *testing.T, f *vfs.File) *Socket {
	t.Helper()
	s, ok := FromFile(f)
	require.True(t, ok)
	return s
}

func pair(t *testing.T, st *Stack, typ int) (*vfs.File, *vfs.File) {
	t.Helper()
	a, b, err := st.Pair(typ, true, testCred)
	require.NoError(t, err)
	return a, b
}

func send(t *testing.T, f *vfs.File, data string) (int, error) {
	t.Helper()
	return sock(t, f).Send(context.Background(), []byte(data), SendOptions{Nonblock: true, Cred: testCred})
}

func recvString(t *testing.T, f *vfs.File, n int, o RecvOptions) (string, RecvResult, error) {
	t.Helper()
	buf := make([]byte, n)
	o.Nonblock = true
	r, err := sock(t, f).Recv(context.Background(), buf, o)
	return string(buf[:r.N]), r, err
}

func TestBadType(t *testing.T) {
	st := NewStack()
	_, err := st.New(unix.SOCK_RAW, false, testCred)
	require.Equal(t, unix.ESOCKTNOSUPPORT, err)
	_, _, err = st.Pair(unix.SOCK_RDM, false, testCred)
	require.Equal(t, unix.ESOCKTNOSUPPORT, err)
}

func TestStreamPair(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_STREAM)
	defer b.DecRef()
	require.Equal(t, uint32(unix.POLLOUT), a.Readiness(unix.POLLIN|unix.POLLOUT))
	n, err := send(t, a, "hello ")
	require.NoError(t, err)
	require.Equal(t, 6, n)
	_, err = send(t, a, "world")
	require.NoError(t, err)
	require.Equal(t, uint32(unix.POLLIN), b.Readiness(unix.POLLIN))
	require.Equal(t, 11, sock(t, b).Queued())

	got, _, err := recvString(t, b, 64, RecvOptions{Peek: true})
	require.NoError(t, err)
	require.Equal(t, "hello world", got, "a stream read joins writes")
	got, _, err = recvString(t, b, 3, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, "hel", got)
	got, _, err = recvString(t, b, 64, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, "lo world", got)
	_, _, err = recvString(t, b, 64, RecvOptions{})
	require.Equal(t, unix.EAGAIN, err)

	a.DecRef()
	got, _, err = recvString(t, b, 64, RecvOptions{})
	require.NoError(t, err)
	require.Empty(t, got, "end of file once the peer is gone")
	require.Equal(t, uint32(unix.POLLIN|unix.POLLRDHUP|unix.POLLHUP), b.Readiness(unix.POLLIN|unix.POLLRDHUP)&^unix.EPOLLRDNORM)
	_, err = send(t, b, "x")
	require.Equal(t, unix.EPIPE, err)
}

func TestStreamResetWithUnreadData(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_STREAM)
	defer b.DecRef()
	_, err := send(t, b, "unread")
	require.NoError(t, err)
	a.DecRef()
	require.NotZero(t, b.Readiness(0)&unix.POLLERR)
	_, _, err = recvString(t, b, 8, RecvOptions{})
	require.Equal(t, unix.ECONNRESET, err)
	_, _, err = recvString(t, b, 8, RecvOptions{})
	require.NoError(t, err)
}

func TestShutdown(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_STREAM)
	defer a.DecRef()
	defer b.DecRef()
	require.Equal(t, unix.EINVAL, sock(t, a).Shutdown(3))
	require.NoError(t, sock(t, a).Shutdown(unix.SHUT_WR))
	_, err := send(t, a, "x")
	require.Equal(t, unix.EPIPE, err)
	require.Equal(t, uint32(unix.POLLRDHUP), b.Readiness(unix.POLLRDHUP))
	got, _, err := recvString(t, b, 4, RecvOptions{})
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = send(t, b, "back")
	require.NoError(t, err)
	got, _, err = recvString(t, a, 4, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, "back", got)
}

func TestDatagramBoundaries(t *testing.T) {
	for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_SEQPACKET} {
		st := NewStack()
		a, b := pair(t, st, typ)
		_, err := send(t, a, "first")
		require.NoError(t, err)
		_, err = send(t, a, "second")
		require.NoError(t, err)
		queued := 11
		if typ == unix.SOCK_DGRAM {
			queued = 5 // the next datagram
		}
		require.Equal(t, queued, sock(t, b).Queued())
		got, r, err := recvString(t, b, 3, RecvOptions{Trunc: true})
		require.NoError(t, err)
		require.Equal(t, "fir", got)
		require.True(t, r.Truncated)
		require.Equal(t, 5, r.Len)
		got, r, err = recvString(t, b, 64, RecvOptions{})
		require.NoError(t, err)
		require.Equal(t, "second", got, "the rest of a truncated datagram is gone")
		require.False(t, r.Truncated)
		_, err = sock(t, a).Send(context.Background(), make([]byte, DefaultBuf), SendOptions{})
		require.Equal(t, unix.EMSGSIZE, err)
		b.DecRef()
		_, err = send(t, a, "x")
		if typ == unix.SOCK_DGRAM {
			require.Equal(t, unix.ECONNREFUSED, err)
			_, err = send(t, a, "x")
			require.Equal(t, unix.ENOTCONN, err)
		} else {
			require.Equal(t, unix.EPIPE, err)
		}
		a.DecRef()
	}
}

func TestListenConnectAccept(t *testing.T) {
	st := NewStack()
	l, err := st.New(unix.SOCK_STREAM, true, testCred)
	require.NoError(t, err)
	ls := sock(t, l)
	require.Equal(t, unix.EINVAL, ls.Listen(0, testCred), "listen needs a name")
	name := Key{Abstract: "\x00test"}
	addr := append([]byte{unix.AF_UNIX, 0}, name.Abstract...)
	require.NoError(t, ls.Bind(name, addr))
	require.Equal(t, unix.EINVAL, ls.Bind(name, addr))
	require.NoError(t, ls.Listen(1, testCred))
	require.Zero(t, l.Readiness(unix.POLLIN|unix.POLLOUT))

	other, err := st.New(unix.SOCK_STREAM, true, testCred)
	require.NoError(t, err)
	defer other.DecRef()
	require.Equal(t, unix.EADDRINUSE, sock(t, other).Bind(name, addr))

	var clients []*vfs.File
	for range 2 {
		c, err := st.New(unix.SOCK_STREAM, true, Cred{PID: 9})
		require.NoError(t, err)
		require.NoError(t, sock(t, c).Connect(context.Background(), name, true, Cred{PID: 9}))
		clients = append(clients, c)
	}
	c, err := st.New(unix.SOCK_STREAM, true, testCred)
	require.NoError(t, err)
	require.Equal(t, unix.EAGAIN, sock(t, c).Connect(context.Background(), name, true, testCred), "backlog 1 holds two")
	dg, err := st.New(unix.SOCK_DGRAM, true, testCred)
	require.NoError(t, err)
	require.Equal(t, unix.EPROTOTYPE, sock(t, dg).Connect(context.Background(), name, true, testCred))
	dg.DecRef()
	require.Equal(t, unix.ECONNREFUSED, sock(t, c).Connect(context.Background(), Key{Abstract: "\x00none"}, true, testCred))

	_, err = send(t, clients[0], "early")
	require.NoError(t, err, "a connection takes data before it is accepted")
	require.Equal(t, uint32(unix.POLLIN), l.Readiness(unix.POLLIN))
	sf, err := ls.Accept(context.Background(), true, false)
	require.NoError(t, err)
	defer sf.DecRef()
	got, _, err := recvString(t, sf, 16, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, "early", got)
	require.Equal(t, addr, sock(t, sf).Name())
	peer, err := sock(t, clients[0]).PeerName()
	require.NoError(t, err)
	require.Equal(t, addr, peer)
	require.Equal(t, int32(9), sock(t, sf).PeerCred().PID)
	require.Equal(t, testCred, sock(t, clients[0]).PeerCred())

	require.NoError(t, sock(t, c).Connect(context.Background(), name, true, testCred), "room again after an accept")
	c.DecRef()

	// Closing the listener resets the connections it never accepted.
	l.DecRef()
	require.Equal(t, unix.ECONNRESET, sock(t, clients[1]).TakeError())
	require.Zero(t, sock(t, clients[0]).TakeError())
	for _, cl := range clients {
		cl.DecRef()
	}
}

func TestListenerCloseResetsPending(t *testing.T) {
	st := NewStack()
	l, err := st.New(unix.SOCK_SEQPACKET, true, testCred)
	require.NoError(t, err)
	name := Key{Abstract: "\x00pending"}
	require.NoError(t, sock(t, l).Bind(name, []byte{1, 0, 0}))
	require.NoError(t, sock(t, l).Listen(5, testCred))
	c, err := st.New(unix.SOCK_SEQPACKET, true, testCred)
	require.NoError(t, err)
	defer c.DecRef()
	require.NoError(t, sock(t, c).Connect(context.Background(), name, true, testCred))
	l.DecRef()
	require.Equal(t, unix.ECONNRESET, sock(t, c).TakeError())
	_, err = send(t, c, "x")
	require.Equal(t, unix.EPIPE, err)
	n, err := st.New(unix.SOCK_SEQPACKET, true, testCred)
	require.NoError(t, err)
	defer n.DecRef()
	require.NoError(t, sock(t, n).Bind(name, []byte{1, 0, 0}), "the name is free again")
}

func TestAutobind(t *testing.T) {
	st := NewStack()
	f, err := st.New(unix.SOCK_DGRAM, false, testCred)
	require.NoError(t, err)
	defer f.DecRef()
	s := sock(t, f)
	require.Equal(t, []byte{unix.AF_UNIX, 0}, s.Name())
	require.NoError(t, s.Autobind())
	name := s.Name()
	require.Len(t, name, 8)
	require.Zero(t, name[2])
	require.NoError(t, s.Autobind(), "a named socket keeps its name")
	require.Equal(t, name, s.Name())
}

func TestDatagramTo(t *testing.T) {
	st := NewStack()
	r, err := st.New(unix.SOCK_DGRAM, true, testCred)
	require.NoError(t, err)
	defer r.DecRef()
	name := Key{Abstract: "\x00dst"}
	require.NoError(t, sock(t, r).Bind(name, []byte{1, 0, 0, 'd'}))
	w, err := st.New(unix.SOCK_DGRAM, true, testCred)
	require.NoError(t, err)
	defer w.DecRef()
	ws := sock(t, w)
	_, err = ws.Send(context.Background(), []byte("x"), SendOptions{Nonblock: true})
	require.Equal(t, unix.ENOTCONN, err)
	sent := 0
	for {
		_, err := ws.Send(context.Background(), []byte("x"), SendOptions{Nonblock: true, To: &name})
		if err != nil {
			require.Equal(t, unix.EAGAIN, err)
			break
		}
		sent++
	}
	require.Equal(t, dgramQlen+1, sent)
	_, res, err := recvString(t, r, 4, RecvOptions{})
	require.NoError(t, err)
	require.Nil(t, res.From, "an unnamed sender has no address")
	require.NoError(t, ws.Connect(context.Background(), name, true, testCred))
	require.Equal(t, uint32(unix.POLLOUT), w.Readiness(unix.POLLOUT), "the receiver has room for one again")
}

func TestPassCred(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_STREAM)
	defer a.DecRef()
	defer b.DecRef()
	sock(t, b).SetPassCred(true)
	_, err := sock(t, a).Send(context.Background(), []byte("ab"), SendOptions{Cred: testCred})
	require.NoError(t, err)
	other := Cred{PID: 1, UID: 2, GID: 3}
	_, err = sock(t, a).Send(context.Background(), []byte("cd"), SendOptions{Cred: testCred, Control: Control{Cred: &other}})
	require.NoError(t, err)
	got, r, err := recvString(t, b, 8, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, "ab", got, "writes of other senders are not joined")
	require.Equal(t, testCred, *r.Control.Cred)
	got, r, err = recvString(t, b, 8, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, "cd", got)
	require.Equal(t, other, *r.Control.Cred)
}

func TestRightsReleasedWithReceiver(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_STREAM)
	pr, pw, err := pipe.New(0)
	require.NoError(t, err)
	defer pr.DecRef()
	pw.IncRef()
	_, err = sock(t, a).Send(context.Background(), []byte("f"), SendOptions{Control: Control{Files: []*vfs.File{pw}}})
	require.NoError(t, err)
	require.Equal(t, int64(2), pw.Refs())
	b.DecRef()
	require.Equal(t, int64(1), pw.Refs(), "a receiver closed unread drops the descriptors in flight")
	a.DecRef()
	pw.DecRef()
	require.Equal(t, uint32(unix.POLLHUP), pr.Readiness(unix.POLLIN))
}

func TestRightsReceived(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_DGRAM)
	defer a.DecRef()
	defer b.DecRef()
	pr, pw, err := pipe.New(0)
	require.NoError(t, err)
	defer pr.DecRef()
	_, err = sock(t, a).Send(context.Background(), []byte("f"), SendOptions{Control: Control{Files: []*vfs.File{pw}}})
	require.NoError(t, err)
	_, r, err := recvString(t, b, 1, RecvOptions{Peek: true})
	require.NoError(t, err)
	require.Equal(t, []*vfs.File{pw}, r.Control.Files)
	require.Equal(t, int64(2), pw.Refs(), "a peek gets a reference of its own")
	r.Control.Release()
	_, r, err = recvString(t, b, 1, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, []*vfs.File{pw}, r.Control.Files)
	require.Equal(t, int64(1), pw.Refs())
	r.Control.Release()
}

// TestSocketSentOverItself checks that the garbage collector frees
// sockets that only their own queues (or each other's) still hold.
func TestSocketSentOverItself(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_STREAM)
	pr, pw, err := pipe.New(0)
	require.NoError(t, err)
	defer pr.DecRef()
	// b's queue holds b, and pw.
	b.IncRef()
	_, err = sock(t, a).Send(context.Background(), []byte("b"), SendOptions{Control: Control{Files: []*vfs.File{b, pw}}})
	require.NoError(t, err)
	// a's queue holds a.
	a.IncRef()
	_, err = sock(t, b).Send(context.Background(), []byte("a"), SendOptions{Control: Control{Files: []*vfs.File{a}}})
	require.NoError(t, err)
	require.Len(t, st.inflight, 2)
	a.DecRef()
	b.DecRef()
	require.Equal(t, int64(1), a.Refs())
	require.Equal(t, int64(1), b.Refs())
	// The next release of any socket collects them.
	c, err := st.New(unix.SOCK_DGRAM, false, testCred)
	require.NoError(t, err)
	c.DecRef()
	require.Empty(t, st.inflight)
	require.Zero(t, a.Refs())
	require.Zero(t, b.Refs())
	require.Equal(t, uint32(unix.POLLHUP), pr.Readiness(unix.POLLIN), "the pipe in flight was released")
}

func TestReachableInFlightSurvives(t *testing.T) {
	st := NewStack()
	a, b := pair(t, st, unix.SOCK_STREAM)
	defer a.DecRef()
	defer b.DecRef()
	x, y := pair(t, st, unix.SOCK_STREAM)
	// y sits in b's queue; x only in y's queue: both reachable through b.
	_, err := sock(t, x).Send(context.Background(), []byte("x"), SendOptions{Control: Control{Files: []*vfs.File{x}}})
	require.NoError(t, err)
	_, err = sock(t, a).Send(context.Background(), []byte("y"), SendOptions{Control: Control{Files: []*vfs.File{y}}})
	require.NoError(t, err)
	c, err := st.New(unix.SOCK_DGRAM, false, testCred)
	require.NoError(t, err)
	c.DecRef()
	require.Equal(t, int64(1), y.Refs())
	require.Equal(t, int64(1), x.Refs())
	_, r, err := recvString(t, b, 1, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, []*vfs.File{y}, r.Control.Files)
	_, r2, err := recvString(t, y, 1, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, []*vfs.File{x}, r2.Control.Files)
	r2.Control.Release()
	r.Control.Release()
}

func TestBlockingRecvWakes(t *testing.T) {
	st := NewStack()
	a, b, err := st.Pair(unix.SOCK_SEQPACKET, false, testCred)
	require.NoError(t, err)
	defer a.DecRef()
	defer b.DecRef()
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	b.EventRegister(w)
	defer b.EventUnregister(w)
	done := make(chan string)
	go func() {
		buf := make([]byte, 8)
		r, err := sock(t, b).Recv(context.Background(), buf, RecvOptions{})
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(buf[:r.N])
	}()
	_, err = sock(t, a).Send(context.Background(), []byte("wake"), SendOptions{})
	require.NoError(t, err)
	require.Equal(t, "wake", <-done)
	<-ch

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = sock(t, b).Recv(ctx, make([]byte, 1), RecvOptions{})
	require.Equal(t, unix.EINTR, err)
	_, err = sock(t, b).Recv(vfs.NoWait(context.Background()), make([]byte, 1), RecvOptions{})
	require.Equal(t, vfs.ErrWouldWait, err)
}

func TestSetBuffer(t *testing.T) {
	st := NewStack()
	f, err := st.New(unix.SOCK_STREAM, false, testCred)
	require.NoError(t, err)
	defer f.DecRef()
	s := sock(t, f)
	s.SetBuffer(true, 4096)
	s.SetBuffer(false, 1)
	snd, rcv := s.Buffers()
	require.Equal(t, 8192, snd)
	require.Equal(t, minRcvBuf, rcv)
	s.SetBuffer(true, -1)
	snd, _ = s.Buffers()
	require.Equal(t, 2*maxBuf, snd)
	st2, err := s.Stat(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint16(unix.S_IFSOCK|0o777), st2.Mode)
}
