package netstack

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

func inetSock(t testing.TB, f *vfs.File) *InetSocket {
	t.Helper()
	s, ok := f.Impl().(*InetSocket)
	require.True(t, ok)
	return s
}

func newInet(t *testing.T, st *Stack, family, typ int) *InetSocket {
	t.Helper()
	f, err := st.NewInet(family, typ, 0, false, testCred)
	require.NoError(t, err)
	t.Cleanup(f.DecRef)
	return inetSock(t, f)
}

// sin is a sockaddr_in for ip and port.
func sin(ip [4]byte, port uint16) []byte {
	b := make([]byte, sockaddrInLen)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], ip[:])
	return b
}

// sin6 is a sockaddr_in6 for ip and port.
func sin6(ip [16]byte, port uint16) []byte {
	b := make([]byte, sockaddrIn6Len)
	binary.LittleEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[8:], ip[:])
	return b
}

func port(sa []byte) uint16 { return binary.BigEndian.Uint16(sa[2:]) }

var localhost = [4]byte{127, 0, 0, 1}

// tcpPair returns the two ends of a TCP connection over 127.0.0.1: the
// connecting socket and the accepted one.
func tcpPair(t *testing.T, st *Stack) (client, server *InetSocket) {
	t.Helper()
	ctx := context.Background()
	l := listener(t, st, unix.AF_INET, sin(localhost, 0))
	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, c.Connect(ctx, sin(localhost, port(l.Name())), false))
	af, err := l.Accept(ctx, false, false)
	require.NoError(t, err)
	t.Cleanup(af.DecRef)
	return c, inetSock(t, af)
}

// listener returns a TCP socket of family listening on loopback.
func listener(t *testing.T, st *Stack, family int, addr []byte) *InetSocket {
	t.Helper()
	l := newInet(t, st, family, unix.SOCK_STREAM)
	require.NoError(t, l.Bind(addr, false))
	require.NoError(t, l.Listen(8, testCred))
	return l
}

func TestInetTCPRoundTrip(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		family int
		bind   []byte
		dial   func(p uint16) []byte
	}{
		{"v4", unix.AF_INET, sin(localhost, 0), func(p uint16) []byte { return sin(localhost, p) }},
		{"v6", unix.AF_INET6, sin6([16]byte{15: 1}, 0), func(p uint16) []byte { return sin6([16]byte{15: 1}, p) }},
		{"mapped", unix.AF_INET6, sin6([16]byte{}, 0), func(p uint16) []byte { return sin(localhost, p) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listener(t, st, tc.family, tc.bind)
			p := port(l.Name())
			require.NotZero(t, p)
			clientFamily := tc.family
			if tc.name == "mapped" {
				clientFamily = unix.AF_INET
			}
			c := newInet(t, st, clientFamily, unix.SOCK_STREAM)
			require.NoError(t, c.Connect(ctx, tc.dial(p), false))
			af, err := l.Accept(ctx, false, false)
			require.NoError(t, err)
			defer af.DecRef()
			a := inetSock(t, af)
			peer, err := a.PeerName()
			require.NoError(t, err)
			require.Equal(t, port(c.Name()), port(peer))
			n, err := c.Send(ctx, []byte("hello"), SendOptions{})
			require.NoError(t, err)
			require.Equal(t, 5, n)
			buf := make([]byte, 5)
			r, err := a.Recv(ctx, buf, RecvOptions{WaitAll: true})
			require.NoError(t, err)
			require.Equal(t, "hello", string(buf[:r.N]))
			require.NoError(t, c.Shutdown(unix.SHUT_WR))
			r, err = a.Recv(ctx, buf, RecvOptions{})
			require.NoError(t, err)
			require.Zero(t, r.N)
		})
	}
}

func TestInetRefusedAndInUse(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	l := listener(t, st, unix.AF_INET, sin(localhost, 0))
	p := port(l.Name())
	other := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.Equal(t, unix.EADDRINUSE, other.Bind(sin(localhost, p), false))
	require.Equal(t, unix.EACCES, other.Bind(sin(localhost, 80), false))
	require.Equal(t, unix.EADDRNOTAVAIL, other.Bind(sin([4]byte{10, 0, 0, 1}, 0), false))
	require.NoError(t, other.Bind(sin(localhost, 0), false))
	require.Equal(t, unix.EINVAL, other.Bind(sin(localhost, 0), false))

	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	closed := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, closed.Bind(sin(localhost, 0), false))
	require.Equal(t, unix.ECONNREFUSED, c.Connect(ctx, sin(localhost, port(closed.Name())), false))
}

func TestInetUDP(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	a := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	b := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, a.Bind(sin(localhost, 0), false))
	to := a.Name()
	n, err := b.Send(ctx, []byte("datagram"), SendOptions{Dest: to})
	require.NoError(t, err)
	require.Equal(t, 8, n)
	buf := make([]byte, 4)
	r, err := a.Recv(ctx, buf, RecvOptions{Trunc: true})
	require.NoError(t, err)
	require.Equal(t, 4, r.N)
	require.Equal(t, 8, r.Len)
	require.True(t, r.Truncated)
	require.Equal(t, sin(localhost, port(b.Name())), r.From)
	_, err = b.Send(ctx, make([]byte, 70000), SendOptions{Dest: to})
	require.Equal(t, unix.EMSGSIZE, err)
}

// TestInetWaitsEnd checks that blocked calls end with EINTR when their
// context does and with EAGAIN when their timeout passes, leaving no
// goroutine behind.
func TestInetWaitsEnd(t *testing.T) {
	st := NewStack()
	l := listener(t, st, unix.AF_INET, sin(localhost, 0))
	u := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() {
		_, err := l.Accept(ctx, false, false)
		errs <- err
	}()
	go func() {
		_, err := u.Recv(ctx, make([]byte, 1), RecvOptions{})
		errs <- err
	}()
	cancel()
	require.Equal(t, unix.EINTR, <-errs)
	require.Equal(t, unix.EINTR, <-errs)

	tv := make([]byte, sizeofTimeval)
	binary.LittleEndian.PutUint64(tv[8:], 1000)
	require.NoError(t, u.SetSockopt(unix.SOL_SOCKET, unix.SO_RCVTIMEO, len(tv), func(n int) ([]byte, error) { return tv[:n], nil }))
	_, err := u.Recv(context.Background(), make([]byte, 1), RecvOptions{})
	require.Equal(t, unix.EAGAIN, err)
	st.Close()
	for end := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before)
}

func TestInetReadinessReachesWaiters(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	l := listener(t, st, unix.AF_INET, sin(localhost, 0))
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	l.EventRegister(w)
	defer l.EventUnregister(w)
	require.Zero(t, l.Readiness(unix.POLLIN))
	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, c.Connect(ctx, sin(localhost, port(l.Name())), false))
	<-ch
	require.Equal(t, uint32(unix.POLLIN), l.Readiness(unix.POLLIN))
}

func TestInetNonblockingConnect(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	l := listener(t, st, unix.AF_INET, sin(localhost, 0))
	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	to := sin(localhost, port(l.Name()))
	require.Equal(t, unix.EINPROGRESS, c.Connect(ctx, to, true))
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLOUT)
	c.EventRegister(w)
	defer c.EventUnregister(w)
	for c.Readiness(unix.POLLOUT) == 0 {
		<-ch
	}
	require.Zero(t, c.TakeError())
	require.NoError(t, c.Connect(ctx, to, true))
	require.Equal(t, unix.EISCONN, c.Connect(ctx, to, true))
	af, err := l.Accept(ctx, false, false)
	require.NoError(t, err)
	af.DecRef()
}

func TestInetUDPConnect(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	a := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	b := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, a.Bind(sin(localhost, 0), false))
	_, err := b.Send(ctx, []byte("x"), SendOptions{Dest: a.Name()})
	require.NoError(t, err)
	require.NoError(t, a.Connect(ctx, b.Name(), false))
	peer, err := a.PeerName()
	require.NoError(t, err)
	require.Equal(t, sin(localhost, port(b.Name())), peer)
	require.NoError(t, a.Connect(ctx, make([]byte, 16), false))
	_, err = a.PeerName()
	require.Equal(t, unix.ENOTCONN, err)
}

// TestInetWritableAfterFull checks that a TCP socket whose send buffer
// filled tells its waiters when the peer's reading makes room: a waiter
// registered before that finds it writable or is told. The stack tells
// writers once half the buffer is free.
func TestInetWritableAfterFull(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	c, a := tcpPair(t, st)
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLOUT)
	c.EventRegister(w)
	defer c.EventUnregister(w)
	chunk := make([]byte, 65536)
	for {
		_, err := c.Send(ctx, chunk, SendOptions{Nonblock: true})
		if err == unix.EAGAIN {
			break
		}
		require.NoError(t, err)
	}
	// The peer reads what comes, as an event loop, until the writer is
	// told it may write again.
	rch := make(chan struct{}, 1)
	rw := vfs.NewChanWaiter(rch, unix.POLLIN)
	a.EventRegister(rw)
	defer a.EventUnregister(rw)
	for c.Readiness(unix.POLLOUT) == 0 {
		for {
			_, err := a.Recv(ctx, chunk, RecvOptions{Nonblock: true})
			if err == unix.EAGAIN {
				break
			}
			require.NoError(t, err)
		}
		select {
		case <-ch:
		case <-rch:
		case <-time.After(10 * time.Second):
			t.Fatal("not writable and not told")
		}
	}
}

// TestInetBulkTransfer moves 64 MiB through one connection in the
// pieces the system calls use, both ends non-blocking and waiting for
// readiness as an event loop does.
func TestInetBulkTransfer(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	c, a := tcpPair(t, st)
	// TCP_NODELAY, as Go's net sets it.
	one := []byte{1, 0, 0, 0}
	for _, s := range []*InetSocket{a, c} {
		require.NoError(t, s.SetSockopt(unix.IPPROTO_TCP, unix.TCP_NODELAY, 4, func(n int) ([]byte, error) { return one[:n], nil }))
	}
	const total = 64 << 20
	done := make(chan error, 1)
	go func() {
		// Non-blocking, waiting for POLLOUT on EAGAIN, as an event loop.
		ch := make(chan struct{}, 1)
		w := vfs.NewChanWaiter(ch, unix.POLLOUT)
		c.EventRegister(w)
		defer c.EventUnregister(w)
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < total; {
			n, err := c.Send(ctx, chunk[:min(len(chunk), total-sent)], SendOptions{Nonblock: true})
			sent += n
			switch {
			case err == unix.EAGAIN:
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
					done <- fmt.Errorf("no POLLOUT after %d bytes; readiness %#x", sent, c.Readiness(unix.POLLOUT))
					return
				}
			case err != nil:
				done <- err
				return
			}
		}
		done <- c.Shutdown(unix.SHUT_WR)
	}()
	rch := make(chan struct{}, 1)
	rw := vfs.NewChanWaiter(rch, unix.POLLIN)
	a.EventRegister(rw)
	defer a.EventUnregister(rw)
	buf := make([]byte, 256<<10)
	got := 0
	for {
		r, err := a.Recv(ctx, buf, RecvOptions{Nonblock: true})
		if err == unix.EAGAIN {
			select {
			case <-rch:
			case <-time.After(10 * time.Second):
				t.Fatalf("no POLLIN after %d bytes; readiness %#x", got, a.Readiness(unix.POLLIN))
			}
			continue
		}
		require.NoError(t, err)
		if r.N == 0 {
			break
		}
		got += r.N
	}
	require.NoError(t, <-done)
	require.Equal(t, total, got)
}

// BenchmarkInetTCPThroughput moves b.N × 256 KiB through one connection
// with blocking sends and receives of that size, as the read and write
// system calls make them.
func BenchmarkInetTCPThroughput(b *testing.B) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	lf, err := st.NewInet(unix.AF_INET, unix.SOCK_STREAM, 0, false, testCred)
	require.NoError(b, err)
	defer lf.DecRef()
	l := lf.Impl().(*InetSocket)
	require.NoError(b, l.Bind(sin(localhost, 0), false))
	require.NoError(b, l.Listen(1, testCred))
	cf, err := st.NewInet(unix.AF_INET, unix.SOCK_STREAM, 0, false, testCred)
	require.NoError(b, err)
	defer cf.DecRef()
	c := cf.Impl().(*InetSocket)
	require.NoError(b, c.Connect(ctx, sin(localhost, port(l.Name())), false))
	af, err := l.Accept(ctx, false, false)
	require.NoError(b, err)
	defer af.DecRef()
	a := af.Impl().(*InetSocket)
	const piece = 256 << 10
	b.SetBytes(piece)
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		out := make([]byte, piece)
		for range b.N {
			if _, err := c.Send(ctx, out, SendOptions{}); err != nil {
				done <- err
				return
			}
		}
		done <- c.Shutdown(unix.SHUT_WR)
	}()
	in := make([]byte, piece)
	got := 0
	for {
		r, err := a.Recv(ctx, in, RecvOptions{})
		require.NoError(b, err)
		if r.N == 0 {
			break
		}
		got += r.N
	}
	require.NoError(b, <-done)
	require.Equal(b, b.N*piece, got)
}
