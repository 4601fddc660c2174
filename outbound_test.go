package kvmbox_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// pongServer answers each connection's data, read to its end of stream,
// with "pong:" and the data, then closes it; it counts the connections.
func pongServer(t *testing.T) (port int, accepted func() int) {
	t.Helper()
	return pongServerAt(t, "127.0.0.1:0")
}

// pongServerAt is a pongServer listening on addr.
func pongServerAt(t *testing.T, addr string) (port int, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			go func() {
				defer c.Close()
				data, _ := io.ReadAll(c)
				c.Write(append([]byte("pong:"), data...))
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// udpEchoServer answers each datagram with "echo " and the datagram.
func udpEchoServer(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
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
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// testNames is the resolver the tests give the sandbox: svc.test is the
// host's loopback, elsewhere.test an address no rule opens.
func testNames(_ context.Context, host string) ([]netip.Addr, error) {
	switch host {
	case "svc.test":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case "evil.test", "elsewhere.test":
		return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func runOutbound(t *testing.T, sb *kvmbox.Sandbox, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(30*time.Second))
	defer cancel()
	out, _ := runSandboxed(t, sb, ctx, path, args, "")
	require.NoError(t, ctx.Err(), "%q did not finish", args)
	require.Empty(t, out.Stderr)
	return out.Stdout
}

// TestOutboundPolicy runs outbound.c in a sandbox whose policy allows
// one TCP and one UDP port of the host's loopback and the name
// svc.test: it reaches them through the gateway, host.kvmbox.internal
// and svc.test, with glibc's and musl's resolvers, and is refused
// everything else, which the host never sees.
func TestOutboundPolicy(t *testing.T) {
	allowed, allowedSeen := pongServer(t)
	other, otherSeen := pongServer(t)
	echo := udpEchoServer(t)
	log := &lockedBuffer{}
	a, o, e := strconv.Itoa(allowed), strconv.Itoa(other), strconv.Itoa(echo)
	connections := 0
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			// A sandbox of its own: the addresses a name resolved to stay
			// allowed for the sandbox's life.
			sb := newSandbox(t, kvmbox.Config{Debug: log, Outbound: &kvmbox.OutboundPolicy{
				Allow: []kvmbox.AllowRule{
					{Prefix: netip.MustParsePrefix("127.0.0.1/32"), FirstPort: uint16(allowed), LastPort: uint16(allowed), Protocol: "tcp"},
					{Prefix: netip.MustParsePrefix("127.0.0.1/32"), FirstPort: uint16(echo), LastPort: uint16(echo), Protocol: "udp"},
					{Host: "svc.test"},
					{Host: "elsewhere.test", FirstPort: 80, LastPort: 80},
				},
				Resolve: testNames,
			}})
			path := kvmtest.Guest(t, tc, "outbound.c")
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"tcp", "10.0.2.2", a, "hello"}, "got: pong:hello\n"},
				{[]string{"tcp", "host.kvmbox.internal", a, "by name"}, "got: pong:by name\n"},
				{[]string{"tcp", "svc.test", a, "svc"}, "got: pong:svc\n"},
				{[]string{"udp", "10.0.2.2", e, "ping"}, "got: echo ping\n"},
				{[]string{"resolve", "svc.test"}, "10.0.2.2\n"},
				{[]string{"resolve", "host.kvmbox.internal"}, "10.0.2.2\n"},
				{[]string{"dns", "svc.test"}, "rcode 0 10.0.2.2\n"},
				{[]string{"dns", "evil.test"}, "rcode 5\n"},
				{[]string{"dns", "missing.svc.test"}, "rcode 5\n"},
				{[]string{"resolve", "evil.test"}, "getaddrinfo: failed\n"},
				{[]string{"tcp", "10.0.2.2", o, "x"}, "connect: ECONNREFUSED\n"},
				{[]string{"tcp", "192.0.2.1", "80", "x"}, "connect: ECONNREFUSED\n"},
				// The name's rule opens 192.0.2.1 on port 80 only.
				{[]string{"resolve", "elsewhere.test"}, "192.0.2.1\n"},
				{[]string{"tcp", "elsewhere.test", "81", "x"}, "connect: ECONNREFUSED\n"},
				{[]string{"udp", "10.0.2.2", a, "x"}, "recv: ECONNREFUSED\n"},
				{[]string{"bind", "10.0.2.15"}, "bound\n"},
			} {
				require.Equal(t, c.want, runOutbound(t, sb, path, c.args...), "%q", c.args)
			}
			connections += 3
		})
	}
	require.Equal(t, connections, allowedSeen())
	require.Zero(t, otherSeen(), "a refused connection reached the host")
	require.Contains(t, log.String(), "kvmbox: network: refused tcp 10.0.2.15:")
	require.Contains(t, log.String(), " -> 192.0.2.1:80: not allowed\n")
	require.Contains(t, log.String(), " -> 10.0.2.2:"+o+": not allowed\n")
}

// TestOutboundGlibcUserland resolves and connects with the host's own
// dynamically linked glibc, its /etc (nsswitch.conf, hosts) shown and
// resolv.conf replaced by the sandbox's.
func TestOutboundGlibcUserland(t *testing.T) {
	allowed, _ := pongServer(t)
	sb := newSandbox(t, kvmbox.Config{HostUserland: true, Outbound: &kvmbox.OutboundPolicy{
		Allow:   []kvmbox.AllowRule{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), FirstPort: uint16(allowed), LastPort: uint16(allowed)}, {Host: "svc.test"}},
		Resolve: testNames,
	}})
	path := kvmtest.Guest(t, kvmtest.GCCDynamic, "outbound.c")
	require.Equal(t, "got: pong:dyn\n", runOutbound(t, sb, path, "tcp", "svc.test", strconv.Itoa(allowed), "dyn"))
	require.Equal(t, "127.0.0.1\n", runOutbound(t, sb, path, "resolve", "localhost"), "/etc/hosts")
	busybox := kvmtest.RequireTool(t, "busybox")
	require.Equal(t, "nameserver 10.0.2.3\n", runOutbound(t, sb, busybox, "cat", "/etc/resolv.conf"))
}

// TestNoOutboundByDefault checks that a sandbox without a policy has no
// eth0 and no route out, and no resolv.conf of kvmbox's.
func TestNoOutboundByDefault(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	path := kvmtest.Guest(t, kvmtest.GCC, "outbound.c")
	require.Equal(t, "connect: ENETUNREACH\n", runOutbound(t, sb, path, "tcp", "10.0.2.2", "80", "x"))
	require.Equal(t, "bind: EADDRNOTAVAIL\n", runOutbound(t, sb, path, "bind", "10.0.2.15"))
	require.Equal(t, "connect: ENETUNREACH\n", runOutbound(t, sb, path, "udp", "10.0.2.3", "53", "x"))
}

func TestAllowRuleParsing(t *testing.T) {
	for s, want := range map[string]kvmbox.AllowRule{
		"10.0.0.0/8":             {Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		"127.0.0.1:8080":         {Prefix: netip.MustParsePrefix("127.0.0.1/32"), FirstPort: 8080, LastPort: 8080},
		"0.0.0.0/0:80-90/tcp":    {Prefix: netip.MustParsePrefix("0.0.0.0/0"), FirstPort: 80, LastPort: 90, Protocol: "tcp"},
		"example.com:443":        {Host: "example.com", FirstPort: 443, LastPort: 443},
		"*.example.com/udp":      {Host: "*.example.com", Protocol: "udp"},
		"dns.example:53/udp":     {Host: "dns.example", FirstPort: 53, LastPort: 53, Protocol: "udp"},
		"192.168.1.0/24:1-65535": {Prefix: netip.MustParsePrefix("192.168.1.0/24"), FirstPort: 1, LastPort: 65535},
	} {
		got, err := kvmbox.ParseAllowRule(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "10.0.0.1/8", "::1", "10.0.0.0/8:0", "10.0.0.0/8:90-80", "a b", "host:70000", "10.0.0.0/33", "example.com:", "x/sctp"} {
		_, err := kvmbox.ParseAllowRule(s)
		require.Error(t, err, s)
		require.Contains(t, err.Error(), strconv.Quote(s))
	}
	_, err := kvmbox.New(kvmbox.Config{Outbound: &kvmbox.OutboundPolicy{Allow: []kvmbox.AllowRule{{Host: "bad name"}}}})
	require.ErrorContains(t, err, "bad name")
}

// TestOutboundResolvConf checks that /etc/resolv.conf names the
// sandbox's resolver whatever the root holds there: nothing, or a
// symbolic link into /run as systemd-resolved leaves it.
func TestOutboundResolvConf(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	linked := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(linked, "etc"), 0o755))
	require.NoError(t, os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(linked, "etc", "resolv.conf")))
	policy := &kvmbox.OutboundPolicy{Allow: []kvmbox.AllowRule{{Host: "example.com"}}}
	for _, root := range []string{"", linked} {
		sb := newSandbox(t, kvmbox.Config{Root: root, Outbound: policy})
		require.Equal(t, "nameserver 10.0.2.3\n", runOutbound(t, sb, busybox, "cat", "/etc/resolv.conf"), "root %q", root)
	}
}

// TestOutboundThroughVeth reaches a server in another network namespace,
// over a veth pair, as a real remote host: a rule for the pair's
// subnet opens the server's address but not the host's own end. A
// range the host has no route to is unreachable in the sandbox too.
func TestOutboundThroughVeth(t *testing.T) {
	kvmtest.RequireKVM(t)
	ipTool := kvmtest.RequireTool(t, "ip")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs the veth test as root")
		}
		t.Skip("network namespaces need root")
	}
	pid := os.Getpid()
	ns, hostEnd, nsEnd := fmt.Sprintf("kvmbox-test-%d", pid), fmt.Sprintf("kvb%da", pid), fmt.Sprintf("kvb%db", pid)
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(pid), 0}), 30)
	hostAddr, nsAddr := subnet.Addr().Next(), subnet.Addr().Next().Next()
	ip := func(args ...string) {
		t.Helper()
		out, err := exec.Command(ipTool, args...).CombinedOutput()
		require.NoError(t, err, "ip %q: %s", args, out)
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command(ipTool, "netns", "del", ns).Run() })
	out, err := exec.Command(ipTool, "link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd).CombinedOutput()
	if err != nil && kvmtest.Emulated() && strings.Contains(string(out), "Unknown device type") {
		// kvm-in-qemu's kernel is built without veth; every other run
		// of the suite has it.
		t.Skipf("no veth under emulation: %s", out)
	}
	require.NoError(t, err, "ip link add %s type veth: %s", hostEnd, out)
	t.Cleanup(func() { exec.Command(ipTool, "link", "del", hostEnd).Run() })
	ip("link", "set", nsEnd, "netns", ns)
	ip("addr", "add", hostAddr.String()+"/30", "dev", hostEnd)
	ip("link", "set", hostEnd, "up")
	ip("-n", ns, "addr", "add", nsAddr.String()+"/30", "dev", nsEnd)
	ip("-n", ns, "link", "set", nsEnd, "up")
	// A range the host has no way to: its connects fail EHOSTUNREACH.
	nowhere := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(pid), 64}), 26)
	ip("route", "add", "unreachable", nowhere.String())
	t.Cleanup(func() { exec.Command(ipTool, "route", "del", "unreachable", nowhere.String()).Run() })

	remote := listenInNetns(t, "/run/netns/"+ns, netip.AddrPortFrom(nsAddr, 0))
	go func() {
		for {
			c, err := remote.Accept()
			if err != nil {
				return
			}
			data, _ := io.ReadAll(c)
			c.Write(append([]byte("remote:"), data...))
			c.Close()
		}
	}()
	own, ownSeen := pongServerAt(t, hostAddr.String()+":0")
	sb := newSandbox(t, kvmbox.Config{Outbound: &kvmbox.OutboundPolicy{Allow: []kvmbox.AllowRule{{Prefix: subnet}, {Prefix: nowhere}}}})
	path := kvmtest.Guest(t, kvmtest.Musl, "outbound.c")
	port := strconv.Itoa(remote.Addr().(*net.TCPAddr).Port)
	require.Equal(t, "got: remote:far\n", runOutbound(t, sb, path, "tcp", nsAddr.String(), port, "far"))
	require.Equal(t, "connect: ECONNREFUSED\n", runOutbound(t, sb, path, "tcp", hostAddr.String(), strconv.Itoa(own), "x"))
	require.Zero(t, ownSeen(), "the host's own address is not the subnet's to open")
	far := nowhere.Addr().Next().String()
	require.Equal(t, "connect: EHOSTUNREACH\n", runOutbound(t, sb, path, "tcp", far, "80", "x"))
	require.Equal(t, "recv: ECONNREFUSED\n", runOutbound(t, sb, path, "udp", far, "53", "x"))
}

// listenInNetns listens on addr inside the network namespace at nsPath:
// the socket belongs to the namespace it was made in, whichever thread
// uses it afterwards.
func listenInNetns(t *testing.T, nsPath string, addr netip.AddrPort) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result)
	go func() {
		// The thread never leaves the namespace: it ends with the
		// goroutine, which keeps it locked.
		runtime.LockOSThread()
		f, err := os.Open(nsPath)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		l, err := net.Listen("tcp4", addr.String())
		done <- result{l, err}
	}()
	r := <-done
	require.NoError(t, r.err)
	t.Cleanup(func() { r.l.Close() })
	return r.l
}

// TestSandboxCloseEndsOutboundFlows closes sandboxes whose guests were
// killed with outbound flows open (a TCP connection the host holds, a
// UDP flow, a DNS query) and requires their goroutines and host
// descriptors (the flows' sockets) gone.
func TestSandboxCloseEndsOutboundFlows(t *testing.T) {
	kvmtest.RequireKVM(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	held := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	echo := udpEchoServer(t)
	path := kvmtest.Guest(t, kvmtest.GCC, "outbound.c")
	runtime.GC()
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	for range 3 {
		func() {
			sb, err := kvmbox.New(kvmbox.Config{Outbound: &kvmbox.OutboundPolicy{
				Allow: []kvmbox.AllowRule{
					{Prefix: netip.MustParsePrefix("127.0.0.1/32"), FirstPort: uint16(port), LastPort: uint16(port)},
					{Prefix: netip.MustParsePrefix("127.0.0.1/32"), FirstPort: uint16(echo), LastPort: uint16(echo)},
					{Host: "svc.test"},
				},
				Resolve: testNames,
			}})
			require.NoError(t, err)
			defer sb.Close()
			require.Equal(t, "got: echo x\n", runOutbound(t, sb, path, "udp", "10.0.2.2", strconv.Itoa(echo), "x"))
			require.Equal(t, "rcode 0 10.0.2.2\n", runOutbound(t, sb, path, "dns", "svc.test"))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan outcome)
			go func() {
				got, _ := runSandboxed(t, sb, ctx, path, []string{"tcp", "10.0.2.2", strconv.Itoa(port), "x"}, "")
				done <- got
			}()
			// The guest sends "x", half-closes, and waits for a reply
			// the host never sends.
			c := <-held
			defer c.Close()
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.Equal(t, "x", string(got))
			cancel()
			require.Equal(t, syscall.SIGKILL, (<-done).Signal)
			require.NoError(t, sb.Close())
		}()
	}
	for end := time.Now().Add(kvmtest.Slowed(5 * time.Second)); runtime.NumGoroutine() > goroutines && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines)
	require.Equal(t, fds, openFDs(t), "host file descriptors leaked")
}
