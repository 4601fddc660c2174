package kvmbox_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// nginxBinary is Debian's nginx (package nginx-light).
const nginxBinary = "/usr/sbin/nginx"

// nginxGlobals runs nginx in the foreground with one worker, as a
// service manager would, its errors on standard error.
func nginxGlobals(pidFile string) string {
	return fmt.Sprintf("daemon off; master_process on; worker_processes 1; pid %s; error_log stderr;", pidFile)
}

// nginxConfig is a configuration that serves root on listen and keeps its
// logs and temporary files under varDir.
func nginxConfig(listen, root, varDir string) string {
	var temps strings.Builder
	for _, kind := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "  %s_temp_path %s;\n", kind, filepath.Join(varDir, kind))
	}
	return fmt.Sprintf(`events { worker_connections 64; }
http {
  access_log %s;
%s  types { text/html html; text/plain txt; }
  server {
    listen %s;
    root %s;
  }
}
`, filepath.Join(varDir, "access.log"), temps.String(), listen, root)
}

// waitForHTTP polls url until a server answers it.
func waitForHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(kvmtest.Slowed(30 * time.Second))
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		require.True(t, time.Now().Before(deadline), "nothing answered %s: %v", url, err)
		time.Sleep(20 * time.Millisecond)
	}
}

// freeHostPort returns a port of the host's loopback that nothing listens
// on now.
func freeHostPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpDate is the Date header, which changes between requests.
var httpDate = regexp.MustCompile(`(?m)^Date: .*\r$`)

// nginxResponses fetches the pages the test compares, with their status
// line and headers, from base.
func nginxResponses(t *testing.T, base string) string {
	t.Helper()
	var out strings.Builder
	for _, page := range []string{"/", "/index.html", "/notes.txt", "/missing", "/sub/"} {
		fmt.Fprintf(&out, "== GET %s\n%s", page, curl(t, "-i", base+page))
	}
	fmt.Fprintf(&out, "== HEAD /index.html\n%s", curl(t, "-I", base+"/index.html"))
	fmt.Fprintf(&out, "== range\n%s", curl(t, "-i", "-r", "10-29", base+"/notes.txt"))
	return httpDate.ReplaceAllString(out.String(), "Date: (now)\r")
}

// wrkRequestsPerSecond runs wrk -t1 -c10 -d2s against url and returns
// its Requests/sec line's figure.
func wrkRequestsPerSecond(t *testing.T, url string) string {
	t.Helper()
	wrk := kvmtest.RequireTool(t, "wrk")
	out, err := exec.Command(wrk, "-t1", "-c10", "-d2s", url).CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindSubmatch(out)
	require.NotNil(t, m, "%s", out)
	require.NotContains(t, string(out), "Non-2xx", "%s", out)
	return string(m[1])
}

// TestNginxThroughPublishedPort runs Debian's nginx natively and in a
// sandbox with the host's userland, the sandbox's port 8080 published on
// the host, and compares what the host's curl gets from each; then it
// loads both with wrk and logs their requests per second.
func TestNginxThroughPublishedPort(t *testing.T) {
	requireHostPrograms(t, nginxBinary)
	kvmtest.RequireTool(t, "curl")
	// The workers of an nginx started as root run as nobody, who must
	// read the pages.
	top := t.TempDir()
	www := filepath.Join(top, "www")
	require.NoError(t, os.MkdirAll(filepath.Join(www, "sub"), 0o755))
	require.NoError(t, os.Chmod(top, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(top), 0o755))
	index := strings.Repeat("<p>served by nginx</p>\n", 200)
	require.NoError(t, os.WriteFile(filepath.Join(www, "index.html"), []byte(index), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(www, "notes.txt"), []byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(www, "sub", "index.html"), []byte("sub\n"), 0o644))
	// Both serve the same files, so that Last-Modified and ETag agree.
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range []string{"index.html", "notes.txt", "sub/index.html"} {
		require.NoError(t, os.Chtimes(filepath.Join(www, f), mtime, mtime))
	}

	nativeVar := filepath.Join(top, "var")
	require.NoError(t, os.Mkdir(nativeVar, 0o755))
	nativePort := freeHostPort(t)
	nativeConf := filepath.Join(top, "native.conf")
	require.NoError(t, os.WriteFile(nativeConf, []byte(nginxConfig(fmt.Sprintf("127.0.0.1:%d", nativePort), www, nativeVar)), 0o644))
	var nativeLog bytes.Buffer
	native := exec.Command(nginxBinary, "-e", "stderr", "-c", nativeConf, "-g", nginxGlobals(filepath.Join(nativeVar, "nginx.pid")))
	native.Stdout, native.Stderr = &nativeLog, &nativeLog
	// The worker outlives a killed master: kill its process group.
	native.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, native.Start())
	t.Cleanup(func() {
		syscall.Kill(-native.Process.Pid, syscall.SIGKILL)
		native.Wait()
		t.Logf("native nginx:\n%s", nativeLog.String())
	})

	confDir := filepath.Join(top, "conf")
	require.NoError(t, os.Mkdir(confDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "nginx.conf"), []byte(nginxConfig("8080", "/www", "/tmp")), 0o644))
	sb := newSandbox(t, kvmbox.Config{
		HostUserland: true,
		Mounts: []kvmbox.Mount{
			{Source: www, Target: "/www", ReadOnly: true},
			{Source: confDir, Target: "/conf", ReadOnly: true},
		},
		Publish: []kvmbox.PublishedPort{{HostAddr: netip.MustParseAddr("127.0.0.1"), Port: 8080}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	cmd := sb.Command(ctx, nginxBinary, "-e", "stderr", "-c", "/conf/nginx.conf", "-g", nginxGlobals("/tmp/nginx.pid"))
	var sandboxLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &sandboxLog, &sandboxLog
	p, err := cmd.Start()
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		p.Wait()
		t.Logf("sandboxed nginx:\n%s", sandboxLog.String())
	})

	nativeBase := fmt.Sprintf("http://127.0.0.1:%d", nativePort)
	sandboxBase := fmt.Sprintf("http://%s", sb.PublishedAddrs()[0])
	waitForHTTP(t, nativeBase+"/")
	waitForHTTP(t, sandboxBase+"/")
	want := nginxResponses(t, nativeBase)
	require.Contains(t, want, "HTTP/1.1 200 OK")
	require.Contains(t, want, "HTTP/1.1 404 Not Found")
	require.Contains(t, want, "HTTP/1.1 206 Partial Content")
	require.Equal(t, want, nginxResponses(t, sandboxBase))

	nativeRate := wrkRequestsPerSecond(t, nativeBase+"/index.html")
	sandboxRate := wrkRequestsPerSecond(t, sandboxBase+"/index.html")
	t.Logf("wrk -t1 -c10 -d2s /index.html (%d bytes): native %s requests/s, sandboxed through the published port %s requests/s", len(index), nativeRate, sandboxRate)
}
