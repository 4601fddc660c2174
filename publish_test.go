package kvmbox_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

func TestParsePublishedPort(t *testing.T) {
	v4 := netip.MustParseAddr("127.0.0.1")
	v6 := netip.MustParseAddr("::1")
	for in, want := range map[string]kvmbox.PublishedPort{
		"8080:80":               {HostPort: 8080, Port: 80},
		"8080:80/tcp":           {HostPort: 8080, Port: 80},
		"53:53/udp":             {HostPort: 53, Port: 53, UDP: true},
		"80":                    {Port: 80},
		"0:80":                  {Port: 80},
		"127.0.0.1:8080:80":     {HostAddr: v4, HostPort: 8080, Port: 80},
		"127.0.0.1::80":         {HostAddr: v4, Port: 80},
		"[::1]:8080:80/udp":     {HostAddr: v6, HostPort: 8080, Port: 80, UDP: true},
		"[::1]::80":             {HostAddr: v6, Port: 80},
		"0.0.0.0:65535:65535":   {HostAddr: netip.IPv4Unspecified(), HostPort: 65535, Port: 65535},
		"[::]:1:1/tcp":          {HostAddr: netip.IPv6Unspecified(), HostPort: 1, Port: 1},
		"127.0.0.1:08080:00080": {HostAddr: v4, HostPort: 8080, Port: 80},
	} {
		got, err := kvmbox.ParsePublishedPort(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{
		"", "80/sctp", "80/", "8080:0", "0", ":80", "65536:80", "8080:65536", "-1:80", "+80",
		"a:80", "1.2.3:8080:80", "::1:8080:80", "[::1]:80", "[::1]8080:80", "[127.0.0.1]:8080:80",
		"[::ffff:1.2.3.4]:1:2", "[fe80::1%eth0]:1:2", "[::1:8080:80", "1.2.3.4:5:6:7", "80:80/tcp/udp",
		"localhost:80:80", " 80", "100000:80",
	} {
		_, err := kvmbox.ParsePublishedPort(in)
		require.Error(t, err, in)
	}
}

// FuzzParsePublishedPort checks that the parser never panics and that
// what it accepts is written back in a form that parses to the same
// mapping.
func FuzzParsePublishedPort(f *testing.F) {
	for _, s := range []string{"8080:80", "127.0.0.1:8080:80/udp", "[::1]::80", "80", "[", "1:2:3:4", "[::1]:1:2/tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := kvmbox.ParsePublishedPort(s)
		if err != nil {
			return
		}
		require.NotZero(t, p.Port)
		again, err := kvmbox.ParsePublishedPort(p.String())
		require.NoError(t, err, p.String())
		require.Equal(t, p, again)
	})
}

// startServer starts path with args in sb and waits for its first line
// of output, "ready"; the server is killed when the test ends.
func startServer(t *testing.T, sb *kvmbox.Sandbox, path string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := sb.Command(ctx, path, args...)
	out, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	p, err := cmd.Start()
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		p.Wait()
		w.Close()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	go io.Copy(io.Discard, out)
}

// curl fetches url with the host's curl and returns what it printed.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	curlPath := kvmtest.RequireTool(t, "curl")
	out, err := exec.Command(curlPath, append([]string{"-sS", "--max-time", "60"}, args...)...).Output()
	require.NoError(t, err)
	return string(out)
}

// TestPublishedPortServesBusyboxHttpd runs busybox httpd in the sandbox,
// publishes its port on a free port of the host's loopback, and fetches
// a file with the host's curl.
func TestPublishedPortServesBusyboxHttpd(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	www := t.TempDir()
	content := strings.Repeat("served from the sandbox\n", 100)
	require.NoError(t, os.WriteFile(filepath.Join(www, "index.html"), []byte(content), 0o644))
	dir := filepath.Dir(busybox)
	sb := newSandbox(t, kvmbox.Config{
		Mounts:  []kvmbox.Mount{{Source: dir, Target: dir, ReadOnly: true}, {Source: www, Target: "/www", ReadOnly: true}},
		Publish: []kvmbox.PublishedPort{{HostAddr: netip.MustParseAddr("127.0.0.1"), Port: 8080}},
	})
	addrs := sb.PublishedAddrs()
	require.Len(t, addrs, 1)
	require.NotZero(t, addrs[0].Port())
	ctx, cancel := context.WithCancel(context.Background())
	p, err := sb.Command(ctx, busybox, "httpd", "-f", "-p", "8080", "-h", "/www").Start()
	require.NoError(t, err)
	defer func() {
		cancel()
		p.Wait()
	}()
	url := fmt.Sprintf("http://%s/index.html", addrs[0])
	// Until httpd listens, the sandbox refuses the connection: the host
	// client sees a reset.
	deadline := time.Now().Add(kvmtest.Slowed(30 * time.Second))
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "httpd never answered: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, content, curl(t, url))
}

// TestPublishedPortShowsThePeer runs a Go HTTP server in the sandbox that
// answers with the client's address as it sees it: curl on the host's
// loopback appears as the gateway, 10.0.2.2, with curl's own port.
func TestPublishedPortShowsThePeer(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{Publish: []kvmbox.PublishedPort{{HostAddr: netip.MustParseAddr("127.0.0.1"), Port: 8080}}})
	startServer(t, sb, kvmtest.Guest(t, kvmtest.Go, "netserve"), "http", "8080")
	out := curl(t, "-w", "%{local_port}\n", fmt.Sprintf("http://%s/peer", sb.PublishedAddrs()[0]))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 2, out)
	require.Equal(t, "10.0.2.2:"+lines[1], lines[0])

	// Closing the sandbox frees the host port.
	require.NoError(t, sb.Close())
	l, err := net.Listen("tcp", sb.PublishedAddrs()[0].String())
	require.NoError(t, err)
	l.Close()
}

// TestPublishedUDPPortEchoes sends datagrams from two host sockets to a
// UDP echo server in the sandbox through a published UDP port: each gets
// its own answers, naming it as the gateway with its port.
func TestPublishedUDPPortEchoes(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{Publish: []kvmbox.PublishedPort{{HostAddr: netip.MustParseAddr("127.0.0.1"), Port: 5353, UDP: true}}})
	startServer(t, sb, kvmtest.Guest(t, kvmtest.Go, "netserve"), "udpecho", "5353")
	for i := range 2 {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(sb.PublishedAddrs()[0]))
		require.NoError(t, err)
		defer c.Close()
		msg := fmt.Sprintf("datagram %d", i)
		_, err = c.Write([]byte(msg))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(kvmtest.Slowed(30*time.Second))))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("10.0.2.2:%d %s", c.LocalAddr().(*net.UDPAddr).Port, msg), string(buf[:n]))
	}
}

// TestPublishedPortInUse checks that New fails, naming the mapping, when
// the host port is taken.
func TestPublishedPortInUse(t *testing.T) {
	kvmtest.RequireKVM(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).AddrPort()
	_, err = kvmbox.New(kvmbox.Config{Publish: []kvmbox.PublishedPort{{HostAddr: taken.Addr(), HostPort: taken.Port(), Port: 80}}})
	require.ErrorContains(t, err, fmt.Sprintf("publish %s:80/tcp", taken))
}
