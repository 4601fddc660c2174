package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// guardTimeout ends a test stuck on a bug instead of hanging it; under
// emulation, ten times slower, it is ten times longer.
var guardTimeout = kvmtest.Slowed(20 * time.Second)

// syncBuffer is a log the outbound goroutines write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func outboundStack(t *testing.T, p *Policy) *Stack {
	t.Helper()
	st, err := New(Options{Uplink: true, Outbound: p})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st
}

func hostRule(addr string, port int, proto Proto) Rule {
	return Rule{Prefix: netip.MustParsePrefix(addr), FirstPort: uint16(port), LastPort: uint16(port), Proto: proto}
}

func tcpListen(t *testing.T) (*net.TCPListener, int) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener), l.Addr().(*net.TCPAddr).Port
}

var gateway = GatewayAddr.As4()

// noConnection checks that l has no connection waiting.
func noConnection(t *testing.T, l *net.TCPListener) {
	t.Helper()
	require.NoError(t, l.SetDeadline(time.Now()))
	c, err := l.Accept()
	if err == nil {
		c.Close()
	}
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
}

func recvAll(t *testing.T, ctx context.Context, s *InetSocket) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		r, err := s.Recv(ctx, buf, RecvOptions{})
		require.NoError(t, err)
		if r.N == 0 {
			return string(out)
		}
		out = append(out, buf[:r.N]...)
	}
}

// TestOutboundTCPToHostLoopback connects from the sandbox to the
// gateway, which a rule for 127.0.0.1 and the port opens to the host's
// loopback, and passes data and half-closes both ways.
func TestOutboundTCPToHostLoopback(t *testing.T) {
	l, p := tcpListen(t)
	st := outboundStack(t, &Policy{Rules: []Rule{hostRule("127.0.0.1/32", p, TCP)}})
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, c.Connect(ctx, sin(gateway, uint16(p)), false))
	host, err := l.Accept()
	require.NoError(t, err)
	defer host.Close()
	require.Equal(t, "127.0.0.1", host.RemoteAddr().(*net.TCPAddr).IP.String())

	_, err = c.Send(ctx, []byte("ping"), SendOptions{})
	require.NoError(t, err)
	require.NoError(t, c.Shutdown(unix.SHUT_WR))
	got, err := io.ReadAll(host)
	require.NoError(t, err)
	require.Equal(t, "ping", string(got))
	_, err = host.Write([]byte("pong"))
	require.NoError(t, err)
	require.NoError(t, host.(*net.TCPConn).CloseWrite())
	require.Equal(t, "pong", recvAll(t, ctx, c))
}

// TestOutboundHostResetReachesSandbox checks that a reset from the host
// resets the sandbox's connection.
func TestOutboundHostResetReachesSandbox(t *testing.T) {
	l, p := tcpListen(t)
	st := outboundStack(t, &Policy{Rules: []Rule{hostRule("127.0.0.1/32", p, AnyProto)}})
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, c.Connect(ctx, sin(gateway, uint16(p)), false))
	host, err := l.Accept()
	require.NoError(t, err)
	require.NoError(t, host.(*net.TCPConn).SetLinger(0))
	require.NoError(t, host.Close())
	_, err = c.Recv(ctx, make([]byte, 16), RecvOptions{})
	require.Equal(t, unix.ECONNRESET, err)
}

// TestOutboundSandboxResetReachesHost checks that the sandbox's reset
// (a close with a zero linger) resets the host's connection.
func TestOutboundSandboxResetReachesHost(t *testing.T) {
	l, p := tcpListen(t)
	st := outboundStack(t, &Policy{Rules: []Rule{hostRule("127.0.0.1/32", p, TCP)}})
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	f, err := st.NewInet(unix.AF_INET, unix.SOCK_STREAM, 0, false, testCred)
	require.NoError(t, err)
	c := inetSock(t, f)
	require.NoError(t, c.Connect(ctx, sin(gateway, uint16(p)), false))
	host, err := l.Accept()
	require.NoError(t, err)
	defer host.Close()
	linger := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	require.NoError(t, c.SetSockopt(unix.SOL_SOCKET, unix.SO_LINGER, len(linger), optBytes(linger)))
	f.DecRef()
	_, err = io.ReadAll(host)
	require.ErrorIs(t, err, unix.ECONNRESET)
}

// TestOutboundManyShortConnections makes connections the host closes
// first, as a web server does, one after another: a new one that lands
// on the ports of an earlier one must not wait for that one's TIME-WAIT.
func TestOutboundManyShortConnections(t *testing.T) {
	l, p := tcpListen(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("bye"))
			c.Close()
		}
	}()
	st := outboundStack(t, &Policy{Rules: []Rule{hostRule("127.0.0.1/32", p, TCP)}})
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	for range 2000 {
		f, err := st.NewInet(unix.AF_INET, unix.SOCK_STREAM, 0, false, testCred)
		require.NoError(t, err)
		c := inetSock(t, f)
		require.NoError(t, c.Connect(ctx, sin(gateway, uint16(p)), false))
		require.Equal(t, "bye", recvAll(t, ctx, c))
		f.DecRef()
	}
}

// TestOutboundRefused checks that flows the policy does not allow are
// reset before any host connection is made, and logged.
func TestOutboundRefused(t *testing.T) {
	allowed, p := tcpListen(t)
	other, q := tcpListen(t)
	log := &syncBuffer{}
	st := outboundStack(t, &Policy{Log: log, Rules: []Rule{
		hostRule("127.0.0.1/32", p, TCP),
		// Everything else, the host's loopback and LAN excepted.
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), FirstPort: uint16(q), LastPort: uint16(q)},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	for _, to := range [][]byte{
		sin(gateway, uint16(q)),                 // a host port no 127.0.0.1 rule names
		sin([4]byte{192, 0, 2, 1}, 80),          // TEST-NET-1, no rule
		sin([4]byte{10, 0, 2, 7}, 80),           // the sandbox's own subnet
		sin([4]byte{127, 0, 0, 1}, 80),          // the sandbox's own loopback: nobody listens
		sin([4]byte{192, 168, 1, 1}, uint16(q)), // a LAN, which 0.0.0.0/0 does not name
		sin([4]byte{10, 0, 2, 3}, uint16(p)),    // the resolver's address, another port
	} {
		c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
		require.Equal(t, unix.ECONNREFUSED, c.Connect(ctx, to, false), "%v", to)
	}
	noConnection(t, allowed)
	noConnection(t, other)
	require.Contains(t, log.String(), "kvmbox: network: refused tcp 10.0.2.15:")
	require.Contains(t, log.String(), " -> 192.0.2.1:80: not allowed\n")
	require.Contains(t, log.String(), " -> 10.0.2.2:"+strconv.Itoa(q)+": not allowed\n")
}

// TestOutboundUDPEcho sends datagrams to a host UDP echo server through
// the gateway, and checks that a refused flow's datagram brings
// ECONNREFUSED.
func TestOutboundUDPEcho(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			pc.WriteToUDP(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	p := pc.LocalAddr().(*net.UDPAddr).Port
	st := outboundStack(t, &Policy{Rules: []Rule{hostRule("127.0.0.1/32", p, UDP)}})
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	c := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, c.Connect(ctx, sin(gateway, uint16(p)), false))
	buf := make([]byte, 64)
	for _, msg := range []string{"one", "two"} {
		_, err = c.Send(ctx, []byte(msg), SendOptions{})
		require.NoError(t, err)
		r, err := c.Recv(ctx, buf, RecvOptions{})
		require.NoError(t, err)
		require.Equal(t, "echo "+msg, string(buf[:r.N]))
	}

	refused := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, refused.Connect(ctx, sin(gateway, uint16(p+1)), false))
	_, err = refused.Send(ctx, []byte("x"), SendOptions{})
	require.NoError(t, err)
	_, err = refused.Recv(ctx, buf, RecvOptions{})
	require.Equal(t, unix.ECONNREFUSED, err)
}

// dnsQueryMsg is a query for name of type qtype.
func dnsQueryMsg(id uint16, name string, qtype uint16) []byte {
	msg := []byte{byte(id >> 8), byte(id), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for label := range strings.SplitSeq(name, ".") {
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	return binary.BigEndian.AppendUint16(msg, dnsClassIN)
}

// dnsReply decodes an answer to one of dnsQueryMsg's: its ID, rcode and
// A records.
func dnsReply(t *testing.T, msg []byte) (id uint16, rcode int, addrs []netip.Addr) {
	t.Helper()
	require.GreaterOrEqual(t, len(msg), dnsHeaderLen)
	id = binary.BigEndian.Uint16(msg)
	flags := binary.BigEndian.Uint16(msg[2:])
	require.NotZero(t, flags&dnsFlagQR)
	an := int(binary.BigEndian.Uint16(msg[6:]))
	q, err := parseDNSQuery(append([]byte{0, 0, 0, 0}, msg[4:]...))
	require.NoError(t, err)
	off := dnsHeaderLen + len(q.question)
	for range an {
		require.Equal(t, []byte{0xc0, dnsHeaderLen}, msg[off:off+2])
		typ := binary.BigEndian.Uint16(msg[off+2:])
		n := int(binary.BigEndian.Uint16(msg[off+10:]))
		rdata := msg[off+12 : off+12+n]
		require.Equal(t, uint16(dnsTypeA), typ)
		addrs = append(addrs, netip.AddrFrom4([4]byte(rdata)))
		off += 12 + n
	}
	require.Equal(t, len(msg), off)
	return id, int(flags & 0xf), addrs
}

// testResolver resolves a fixed table, NXDOMAIN for the rest.
func testResolver(table map[string][]netip.Addr) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := table[host]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
}

// TestOutboundDNS queries the resolver at 10.0.2.3 over UDP and TCP.
func TestOutboundDNS(t *testing.T) {
	web := netip.MustParseAddr("198.51.100.7")
	st := outboundStack(t, &Policy{
		Rules: []Rule{
			{Host: "web.test", FirstPort: 443, LastPort: 443, Proto: TCP},
			{Host: "*.loop.test"},
			{Host: "gone.test"},
		},
		Resolve: testResolver(map[string][]netip.Addr{
			"web.test":    {web, netip.MustParseAddr("2001:db8::1")},
			"a.loop.test": {netip.MustParseAddr("127.0.0.1")},
			"denied.test": {netip.MustParseAddr("198.51.100.8")},
		}),
	})
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	_, err := st.policy.check(TCP, netip.AddrPortFrom(web, 443))
	require.Equal(t, errNotAllowed, err)

	udpc := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
	require.NoError(t, udpc.Connect(ctx, sin(DNSAddr.As4(), 53), false))
	ask := func(id uint16, name string, qtype uint16) (int, []netip.Addr) {
		_, err := udpc.Send(ctx, dnsQueryMsg(id, name, qtype), SendOptions{})
		require.NoError(t, err)
		buf := make([]byte, 512)
		r, err := udpc.Recv(ctx, buf, RecvOptions{})
		require.NoError(t, err)
		gotID, rcode, addrs := dnsReply(t, buf[:r.N])
		require.Equal(t, id, gotID)
		return rcode, addrs
	}
	gw := netip.AddrFrom4(gateway)
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
		addrs []netip.Addr
	}{
		{"host.kvmbox.internal", dnsTypeA, dnsNoError, []netip.Addr{gw}},
		{"HOST.kvmbox.internal", dnsTypeA, dnsNoError, []netip.Addr{gw}},
		{"web.test", dnsTypeA, dnsNoError, []netip.Addr{web}},
		{"web.test", dnsTypeAAAA, dnsNoError, nil},
		{"web.test", 16, dnsNotImp, nil}, // TXT
		{"a.loop.test", dnsTypeA, dnsNoError, []netip.Addr{gw}},
		{"loop.test", dnsTypeA, dnsRefused, nil},
		{"denied.test", dnsTypeA, dnsRefused, nil},
		{"gone.test", dnsTypeA, dnsNXDomain, nil},
	} {
		rcode, addrs := ask(7, c.name, c.qtype)
		require.Equal(t, c.rcode, rcode, c.name)
		require.Equal(t, c.addrs, addrs, c.name)
	}
	// The name's rule opened its address, for its port only.
	_, err = st.policy.check(TCP, netip.AddrPortFrom(web, 443))
	require.NoError(t, err)
	_, err = st.policy.check(TCP, netip.AddrPortFrom(web, 80))
	require.Equal(t, errNotAllowed, err)
	_, err = st.policy.check(UDP, netip.AddrPortFrom(web, 443))
	require.Equal(t, errNotAllowed, err)

	tcpc := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.NoError(t, tcpc.Connect(ctx, sin(DNSAddr.As4(), 53), false))
	for i, name := range []string{"web.test", "denied.test"} {
		q := dnsQueryMsg(uint16(i), name, dnsTypeA)
		_, err := tcpc.Send(ctx, append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...), SendOptions{})
		require.NoError(t, err)
		size := make([]byte, 2)
		_, err = tcpc.Recv(ctx, size, RecvOptions{WaitAll: true})
		require.NoError(t, err)
		reply := make([]byte, binary.BigEndian.Uint16(size))
		_, err = tcpc.Recv(ctx, reply, RecvOptions{WaitAll: true})
		require.NoError(t, err)
		_, rcode, _ := dnsReply(t, reply)
		require.Equal(t, []int{dnsNoError, dnsRefused}[i], rcode)
	}
}

// TestPolicyCheck covers which rules name the protected ranges.
func TestPolicyCheck(t *testing.T) {
	pol, err := newPolicy(&Policy{Rules: []Rule{
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), FirstPort: 80, LastPort: 80, Proto: TCP},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16")},
		{Prefix: netip.MustParsePrefix("127.0.0.1/32"), FirstPort: 8000, LastPort: 8100},
		{Prefix: netip.MustParsePrefix("172.0.0.0/8"), FirstPort: 22, LastPort: 22},
	}})
	require.NoError(t, err)
	for _, c := range []struct {
		proto Proto
		dst   string
		ok    bool
	}{
		{TCP, "192.0.2.1:80", true},
		{UDP, "192.0.2.1:80", false},
		{TCP, "192.0.2.1:81", false},
		{TCP, "10.1.2.3:80", true},
		{UDP, "10.1.2.3:53", true},
		{TCP, "10.2.0.1:80", false},
		{TCP, "192.168.0.1:80", false},
		{TCP, "169.254.169.254:80", false},
		{TCP, "127.0.0.1:80", false},
		{TCP, "0.0.0.0:80", false},
		{TCP, "10.0.2.2:8050", true},
		{TCP, "10.0.2.2:80", false},
		{TCP, "10.0.2.2:8101", false},
		{TCP, "10.0.2.9:80", false},
		{TCP, "172.20.0.1:22", false}, // 172.0.0.0/8 is wider than 172.16.0.0/12
		{TCP, "172.15.0.1:22", true},
		{UDP, "224.0.0.251:80", false},
		{UDP, "255.255.255.255:80", false},
	} {
		_, err := pol.check(c.proto, netip.MustParseAddrPort(c.dst))
		require.Equal(t, c.ok, err == nil, "%v %s", c.proto, c.dst)
	}
	for _, a := range pol.hostAddrsList() {
		_, err := pol.check(TCP, netip.AddrPortFrom(a, 80))
		require.Error(t, err, "host address %s", a)
	}
}

func (p *policy) hostAddrsList() []netip.Addr {
	var out []netip.Addr
	for a := range p.hostAddrs {
		out = append(out, a)
	}
	return out
}

func TestRuleValidate(t *testing.T) {
	for _, r := range []Rule{
		{},
		{Prefix: netip.MustParsePrefix("10.0.0.1/8")},
		{Prefix: netip.MustParsePrefix("::/0")},
		{Host: "bad host"},
		{Host: "a..b"},
		{Host: "example.com", FirstPort: 9, LastPort: 8},
		{Host: "example.com", LastPort: 8},
		{Host: "example.com", Prefix: netip.MustParsePrefix("10.0.0.0/8")},
	} {
		require.Error(t, r.Validate(), "%+v", r)
	}
	for _, r := range []Rule{
		{Prefix: netip.MustParsePrefix("0.0.0.0/0")},
		{Host: "*.example.com", FirstPort: 1, LastPort: 65535, Proto: UDP},
	} {
		require.NoError(t, r.Validate(), "%+v", r)
	}
}

// TestOutboundCloseEndsGoroutines leaves flows of every kind open and
// checks that Close ends every goroutine they started.
func TestOutboundCloseEndsGoroutines(t *testing.T) {
	l, p := tcpListen(t)
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer pc.Close()
	up := pc.LocalAddr().(*net.UDPAddr).Port
	before := runtime.NumGoroutine()
	st, err := New(Options{Uplink: true, Outbound: &Policy{Rules: []Rule{
		hostRule("127.0.0.1/32", p, TCP), hostRule("127.0.0.1/32", up, UDP)}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	var files []interface{ DecRef() }
	sock := func(typ int) *InetSocket {
		f, err := st.NewInet(unix.AF_INET, typ, 0, false, testCred)
		require.NoError(t, err)
		files = append(files, f)
		return inetSock(t, f)
	}
	c := sock(unix.SOCK_STREAM)
	require.NoError(t, c.Connect(ctx, sin(gateway, uint16(p)), false))
	host, err := l.Accept()
	require.NoError(t, err)
	defer host.Close()
	u := sock(unix.SOCK_DGRAM)
	require.NoError(t, u.Connect(ctx, sin(gateway, uint16(up)), false))
	_, err = u.Send(ctx, []byte("x"), SendOptions{})
	require.NoError(t, err)
	buf := make([]byte, 8)
	_, _, err = pc.ReadFromUDP(buf)
	require.NoError(t, err)
	d := sock(unix.SOCK_STREAM)
	require.NoError(t, d.Connect(ctx, sin(DNSAddr.As4(), 53), false))

	st.Close()
	for _, f := range files {
		f.DecRef()
	}
	// The host's side of the TCP flow sees it end.
	_, err = io.ReadAll(host)
	require.NoError(t, err)
	// Goroutines end soon after Close returns (the runtime's own ones
	// for timers and network polling take a moment); wait for the count
	// to settle, bounded by the guard.
	settled := time.Now().Add(guardTimeout)
	for runtime.NumGoroutine() > before && time.Now().Before(settled) {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before)
}

// TestOutboundUnreachable checks that a host connect failing for want
// of a route fails the sandbox's TCP connect the same way, and any other
// failure as ECONNREFUSED; a UDP flow that fails is ECONNREFUSED.
func TestOutboundUnreachable(t *testing.T) {
	st := outboundStack(t, &Policy{Rules: []Rule{{Prefix: netip.MustParsePrefix("203.0.113.0/24")}}})
	failures := map[string]error{
		"203.0.113.1:80": unix.ENETUNREACH,
		"203.0.113.2:80": unix.EHOSTUNREACH,
		"203.0.113.3:80": unix.ECONNREFUSED,
		"203.0.113.4:80": unix.ETIMEDOUT,
	}
	st.policy.dial = func(_ context.Context, network, address string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", failures[address])}
	}
	ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
	defer cancel()
	for i, want := range []unix.Errno{unix.ENETUNREACH, unix.EHOSTUNREACH, unix.ECONNREFUSED, unix.ECONNREFUSED} {
		to := sin([4]byte{203, 0, 113, byte(i + 1)}, 80)
		c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
		require.Equal(t, want, c.Connect(ctx, to, false))
		u := newInet(t, st, unix.AF_INET, unix.SOCK_DGRAM)
		require.NoError(t, u.Connect(ctx, to, false))
		_, err := u.Send(ctx, []byte("x"), SendOptions{})
		require.NoError(t, err)
		_, err = u.Recv(ctx, make([]byte, 8), RecvOptions{})
		require.Equal(t, unix.ECONNREFUSED, err)
	}
}

// BenchmarkOutboundTCP measures a bulk transfer from a host server to the
// sandbox's socket through the router.
func BenchmarkOutboundTCP(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(b, err)
	defer l.Close()
	chunk := make([]byte, 1<<20)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
		}
	}()
	p := l.Addr().(*net.TCPAddr).Port
	st, err := New(Options{Uplink: true, Outbound: &Policy{Rules: []Rule{hostRule("127.0.0.1/32", p, TCP)}}})
	require.NoError(b, err)
	defer st.Close()
	f, err := st.NewInet(unix.AF_INET, unix.SOCK_STREAM, 0, false, testCred)
	require.NoError(b, err)
	defer f.DecRef()
	c := inetSock(b, f)
	ctx := context.Background()
	require.NoError(b, c.Connect(ctx, sin(gateway, uint16(p)), false))
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		_, err := c.Recv(ctx, buf, RecvOptions{WaitAll: true})
		require.NoError(b, err)
	}
}

// BenchmarkOutboundConnect measures a connection from the sandbox to a
// host listener through the router: the policy check, the host's
// connect and the sandbox's handshake.
func BenchmarkOutboundConnect(b *testing.B) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(b, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p := l.Addr().(*net.TCPAddr).Port
	st, err := New(Options{Uplink: true, Outbound: &Policy{Rules: []Rule{hostRule("127.0.0.1/32", p, TCP)}}})
	require.NoError(b, err)
	defer st.Close()
	ctx := context.Background()
	for range b.N {
		f, err := st.NewInet(unix.AF_INET, unix.SOCK_STREAM, 0, false, testCred)
		require.NoError(b, err)
		require.NoError(b, inetSock(b, f).Connect(ctx, sin(gateway, uint16(p)), false))
		f.DecRef()
	}
}
