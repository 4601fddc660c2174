package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// sandboxPort is the port the tests publish; unprivileged, so that the
// test's sockets may bind it.
const sandboxPort = 8080

// publishOne returns a stack publishing sandboxPort on a free port of
// the host's loopback, and that host address.
func publishOne(t *testing.T, udp bool) (*Stack, netip.AddrPort) {
	t.Helper()
	st, err := New(Options{Publish: []PublishedPort{{HostAddr: hostLoopback, Port: sandboxPort, UDP: udp}}})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	addrs := st.PublishedAddrs()
	require.Len(t, addrs, 1)
	require.Equal(t, hostLoopback, addrs[0].Addr())
	require.NotZero(t, addrs[0].Port())
	return st, addrs[0]
}

// peerOf decodes a sockaddr_in.
func peerOf(sa []byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:]))
}

// TestPublishedTCP connects from the host to a published port and checks
// that the sandbox's listener on 0.0.0.0 sees the client as the gateway
// with the client's port, and that data and half-closes pass both ways.
func TestPublishedTCP(t *testing.T) {
	st, host := publishOne(t, false)
	ctx := context.Background()
	l := listener(t, st, unix.AF_INET, sin([4]byte{}, sandboxPort))

	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(host))
	require.NoError(t, err)
	defer c.Close()
	af, err := l.Accept(ctx, false, false)
	require.NoError(t, err)
	defer af.DecRef()
	a := inetSock(t, af)
	peer, err := a.PeerName()
	require.NoError(t, err)
	clientPort := c.LocalAddr().(*net.TCPAddr).AddrPort().Port()
	require.Equal(t, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), clientPort), peerOf(peer))
	require.Equal(t, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.15"), sandboxPort), peerOf(a.Name()))

	_, err = c.Write([]byte("request"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	buf := make([]byte, 16)
	r, err := a.Recv(ctx, buf, RecvOptions{WaitAll: true})
	require.NoError(t, err)
	require.Equal(t, "request", string(buf[:r.N]))
	r, err = a.Recv(ctx, buf, RecvOptions{})
	require.NoError(t, err)
	require.Zero(t, r.N, "the client's half-close reaches the sandbox")

	_, err = a.Send(ctx, []byte("response"), SendOptions{})
	require.NoError(t, err)
	require.NoError(t, a.Shutdown(unix.SHUT_WR))
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "response", string(got))
}

// TestPublishedTCPRefused checks that a host client of a published port
// nothing in the sandbox listens on sees its connection reset.
func TestPublishedTCPRefused(t *testing.T) {
	_, host := publishOne(t, false)
	// The reset may come before the dial returns.
	c, err := net.Dial("tcp", host.String())
	if err == nil {
		defer c.Close()
		_, err = c.Read(make([]byte, 1))
	}
	require.True(t, errors.Is(err, syscall.ECONNRESET), "got %v", err)
}

// TestPublishedTCPReset checks that a reset by the sandbox's side resets
// the host client's connection.
func TestPublishedTCPReset(t *testing.T) {
	st, host := publishOne(t, false)
	ctx := context.Background()
	l := listener(t, st, unix.AF_INET, sin([4]byte{}, sandboxPort))
	c, err := net.Dial("tcp", host.String())
	require.NoError(t, err)
	defer c.Close()
	af, err := l.Accept(ctx, false, false)
	require.NoError(t, err)
	a := inetSock(t, af)
	require.NoError(t, a.SetSockopt(unix.SOL_SOCKET, unix.SO_LINGER, 8, func(int) ([]byte, error) {
		return []byte{1, 0, 0, 0, 0, 0, 0, 0}, nil
	}))
	af.DecRef()
	_, err = c.Read(make([]byte, 1))
	require.True(t, errors.Is(err, syscall.ECONNRESET), "got %v", err)
}

// TestPublishedUDP sends datagrams from two host clients to a published
// UDP port and checks that the sandbox sees each from the gateway with
// its port, and that each client gets its own answers.
func TestPublishedUDP(t *testing.T) {
	st, host := publishOne(t, true)
	ctx := context.Background()
	s := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, s.Bind(sin([4]byte{}, sandboxPort), false))

	var clients []*net.UDPConn
	for range 2 {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(host))
		require.NoError(t, err)
		defer c.Close()
		clients = append(clients, c)
	}
	for i, c := range clients {
		_, err := c.Write([]byte{'a' + byte(i)})
		require.NoError(t, err)
		buf := make([]byte, 16)
		r, err := s.Recv(ctx, buf, RecvOptions{})
		require.NoError(t, err)
		require.Equal(t, []byte{'a' + byte(i)}, buf[:r.N])
		from := peerOf(r.From)
		require.Equal(t, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.2"), c.LocalAddr().(*net.UDPAddr).AddrPort().Port()), from)
		_, err = s.Send(ctx, append([]byte("echo "), buf[:r.N]...), SendOptions{Dest: sin(from.Addr().As4(), from.Port())})
		require.NoError(t, err)
	}
	for i, c := range clients {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "echo "+string(rune('a'+i)), string(buf[:n]))
	}
}

// TestPublishedUDPFlowExpires checks that an idle flow ends and that the
// client's next datagram starts a new one.
func TestPublishedUDPFlowExpires(t *testing.T) {
	defer func(d time.Duration) { udpFlowIdle = d }(udpFlowIdle)
	udpFlowIdle = 20 * time.Millisecond
	st, host := publishOne(t, true)
	ctx := context.Background()
	s := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, s.Bind(sin([4]byte{}, sandboxPort), false))
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(host))
	require.NoError(t, err)
	defer c.Close()
	for _, msg := range []string{"first", "second"} {
		_, err = c.Write([]byte(msg))
		require.NoError(t, err)
		buf := make([]byte, 16)
		r, err := s.Recv(ctx, buf, RecvOptions{})
		require.NoError(t, err)
		require.Equal(t, msg, string(buf[:r.N]))
		waitFor(t, func() bool { return st.ports.udpFlows() == 0 })
	}
}

// TestPublishPortInUse checks that New fails, naming the mapping, when a
// host port is taken, and leaves the ports it did open closed.
func TestPublishPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).AddrPort().Port()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	freePort := free.Addr().(*net.TCPAddr).AddrPort().Port()
	require.NoError(t, free.Close())

	_, err = New(Options{Publish: []PublishedPort{
		{HostAddr: hostLoopback, HostPort: freePort, Port: 80},
		{HostAddr: hostLoopback, HostPort: takenPort, Port: 81},
	}})
	require.ErrorContains(t, err, "publish 127.0.0.1:"+strconv.Itoa(int(takenPort))+":81/tcp")
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	again, err := net.Listen("tcp", netip.AddrPortFrom(hostLoopback, freePort).String())
	require.NoError(t, err, "the first mapping's port is free again")
	again.Close()

	_, err = New(Options{Publish: []PublishedPort{{HostAddr: hostLoopback, Port: 0}}})
	require.ErrorContains(t, err, "sandbox port 0")
}

// TestPublishCloseEndsEverything relays a connection and a UDP flow, then
// checks that Close ends every goroutine and frees the host ports.
func TestPublishCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	st, err := New(Options{Publish: []PublishedPort{
		{HostAddr: hostLoopback, Port: sandboxPort},
		{HostAddr: hostLoopback, Port: sandboxPort, UDP: true},
	}})
	require.NoError(t, err)
	addrs := st.PublishedAddrs()
	ctx := context.Background()
	l := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, l.Bind(sin([4]byte{}, sandboxPort), false))
	require.NoError(t, l.Listen(8, testCred))
	c, err := net.Dial("tcp", addrs[0].String())
	require.NoError(t, err)
	defer c.Close()
	af, err := l.Accept(ctx, false, false)
	require.NoError(t, err)
	defer af.DecRef()
	us := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, us.Bind(sin([4]byte{}, sandboxPort), false))
	u, err := net.Dial("udp", addrs[1].String())
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write([]byte("x"))
	require.NoError(t, err)
	waitFor(t, func() bool { return st.ports.udpFlows() == 1 })

	st.Close()
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "the relayed connection ends")
	for _, a := range addrs[:1] {
		ln, err := net.Listen("tcp", a.String())
		require.NoError(t, err)
		ln.Close()
	}
	pc, err := net.ListenPacket("udp", addrs[1].String())
	require.NoError(t, err)
	pc.Close()
	if !eventually(func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines left running:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

// waitFor polls cond until it holds, failing the test after a long while.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	require.True(t, eventually(cond))
}

// eventually polls cond until it holds or a long while has passed, and
// reports whether it held.
func eventually(cond func() bool) bool {
	for range 1000 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// udpFlows counts the flows of p's UDP ports.
func (p *publisher) udpFlows() int {
	n := 0
	for _, u := range p.udp {
		u.mu.Lock()
		n += len(u.flows)
		u.mu.Unlock()
	}
	return n
}

func TestPeerInSandbox(t *testing.T) {
	for client, want := range map[string]string{
		"127.0.0.1:5000":       "10.0.2.2",
		"127.1.2.3:5000":       "10.0.2.2",
		"[::1]:5000":           "10.0.2.2",
		"[2001:db8::1]:5000":   "10.0.2.2",
		"192.168.1.7:5000":     "192.168.1.7",
		"[::ffff:1.2.3.4]:500": "1.2.3.4",
		"10.0.2.15:5000":       "10.0.2.2",
		"10.0.3.15:5000":       "10.0.3.15",
	} {
		got := peerInSandbox(netip.MustParseAddrPort(client))
		require.Equal(t, want, got.String(), client)
	}
}

// BenchmarkPublishedTCPRoundTrip measures a request and its answer, 100
// bytes each way, between a host client and a sandbox socket through a
// published port: the relay's cost without a guest.
func BenchmarkPublishedTCPRoundTrip(b *testing.B) {
	st, err := New(Options{Publish: []PublishedPort{{HostAddr: hostLoopback, Port: sandboxPort}}})
	require.NoError(b, err)
	defer st.Close()
	ctx := context.Background()
	f, err := st.NewInet(unix.AF_INET, unix.SOCK_STREAM, 0, false, testCred)
	require.NoError(b, err)
	defer f.DecRef()
	l := f.Impl().(*InetSocket)
	require.NoError(b, l.Bind(sin([4]byte{}, sandboxPort), false))
	require.NoError(b, l.Listen(8, testCred))
	c, err := net.Dial("tcp", st.PublishedAddrs()[0].String())
	require.NoError(b, err)
	defer c.Close()
	af, err := l.Accept(ctx, false, false)
	require.NoError(b, err)
	defer af.DecRef()
	a := af.Impl().(*InetSocket)
	go func() {
		buf := make([]byte, 100)
		for {
			r, err := a.Recv(ctx, buf, RecvOptions{WaitAll: true})
			if err != nil || r.N == 0 {
				return
			}
			if _, err := a.Send(ctx, buf[:r.N], SendOptions{}); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 100)
	b.ResetTimer()
	for range b.N {
		_, err := c.Write(msg)
		require.NoError(b, err)
		_, err = io.ReadFull(c, msg)
		require.NoError(b, err)
	}
}

// TestPublishedClientsSharingAPort connects two host clients with the
// same port, from 127.0.0.1 and 127.0.0.2, and an IPv6 client: all appear
// as the gateway, the first with its own port, the second with another.
func TestPublishedClientsSharingAPort(t *testing.T) {
	st, err := New(Options{Publish: []PublishedPort{{Port: sandboxPort}}})
	require.NoError(t, err)
	defer st.Close()
	host := st.PublishedAddrs()[0]
	require.True(t, host.Addr().IsUnspecified())
	ctx := context.Background()
	l := listener(t, st, unix.AF_INET, sin([4]byte{}, sandboxPort))
	accept := func() netip.AddrPort {
		af, err := l.Accept(ctx, false, false)
		require.NoError(t, err)
		t.Cleanup(af.DecRef)
		peer, err := inetSock(t, af).PeerName()
		require.NoError(t, err)
		return peerOf(peer)
	}
	first, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(netip.AddrPortFrom(hostLoopback, host.Port())))
	require.NoError(t, err)
	defer first.Close()
	clientPort := first.LocalAddr().(*net.TCPAddr).AddrPort().Port()
	gateway := netip.MustParseAddr("10.0.2.2")
	require.Equal(t, netip.AddrPortFrom(gateway, clientPort), accept())

	local := net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), clientPort))
	second, err := net.DialTCP("tcp", local, net.TCPAddrFromAddrPort(netip.AddrPortFrom(hostLoopback, host.Port())))
	require.NoError(t, err)
	defer second.Close()
	peer := accept()
	require.Equal(t, gateway, peer.Addr())
	require.NotEqual(t, clientPort, peer.Port())

	v6, err := net.Dial("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), host.Port()).String())
	if err != nil {
		t.Logf("no IPv6 loopback here: %v", err)
		return
	}
	defer v6.Close()
	require.Equal(t, netip.AddrPortFrom(gateway, v6.LocalAddr().(*net.TCPAddr).AddrPort().Port()), accept())
}

// TestPublishCloseWhileBlocked closes the stack while the relay waits to
// write to a sandbox socket that reads nothing, and to a host client that
// reads nothing.
func TestPublishCloseWhileBlocked(t *testing.T) {
	before := runtime.NumGoroutine()
	st, err := New(Options{Publish: []PublishedPort{{HostAddr: hostLoopback, Port: sandboxPort}}})
	require.NoError(t, err)
	ctx := context.Background()
	l := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, l.Bind(sin([4]byte{}, sandboxPort), false))
	require.NoError(t, l.Listen(8, testCred))
	c, err := net.Dial("tcp", st.PublishedAddrs()[0].String())
	require.NoError(t, err)
	defer c.Close()
	af, err := l.Accept(ctx, false, false)
	require.NoError(t, err)
	defer af.DecRef()
	a := inetSock(t, af)
	// Fill the path to the sandbox until the host client's writes stall.
	chunk := make([]byte, 1<<20)
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(2*time.Second)))
	for {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	// And the path back, until the sandbox's sends would wait.
	for {
		if _, err := a.Send(ctx, chunk, SendOptions{Nonblock: true}); err != nil {
			require.Equal(t, unix.EAGAIN, err)
			break
		}
	}
	st.Close()
	if !eventually(func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines left running:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

// TestPublishBackoff checks the waits after failed accepts: growing to a
// second, and none once the socket is closed or the publisher stops.
func TestPublishBackoff(t *testing.T) {
	p := &publisher{done: make(chan struct{})}
	var wait time.Duration
	require.True(t, p.backoff(syscall.EMFILE, &wait))
	require.Equal(t, 5*time.Millisecond, wait)
	require.True(t, p.backoff(syscall.EMFILE, &wait))
	require.Equal(t, 10*time.Millisecond, wait)
	wait = 800 * time.Millisecond
	close(p.done)
	require.False(t, p.backoff(syscall.EMFILE, &wait))
	require.Equal(t, time.Second, wait)
	require.False(t, p.backoff(&net.OpError{Op: "accept", Err: net.ErrClosed}, &wait))
}

// TestPublishedPortsBesideOutbound publishes a port of a sandbox that
// also has outbound access: both use the one router, a host client
// reaches the sandbox's listener, and the sandbox reaches the host's.
func TestPublishedPortsBesideOutbound(t *testing.T) {
	hostL, hostPort := tcpListen(t)
	st, err := New(Options{Uplink: true,
		Outbound: &Policy{Rules: []Rule{hostRule("127.0.0.1/32", hostPort, TCP)}},
		Publish:  []PublishedPort{{HostAddr: hostLoopback, Port: sandboxPort}}})
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()

	l := listener(t, st, unix.AF_INET, sin([4]byte{}, sandboxPort))
	c, err := net.Dial("tcp", st.PublishedAddrs()[0].String())
	require.NoError(t, err)
	defer c.Close()
	af, err := l.Accept(ctx, false, false)
	require.NoError(t, err)
	defer af.DecRef()
	_, err = inetSock(t, af).Send(ctx, []byte("in"), SendOptions{})
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "in", string(buf))

	out := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, out.Connect(ctx, sin(gateway, uint16(hostPort)), false))
	hc, err := hostL.Accept()
	require.NoError(t, err)
	defer hc.Close()
	_, err = out.Send(ctx, []byte("out"), SendOptions{})
	require.NoError(t, err)
	buf = make([]byte, 3)
	_, err = io.ReadFull(hc, buf)
	require.NoError(t, err)
	require.Equal(t, "out", string(buf))
}
