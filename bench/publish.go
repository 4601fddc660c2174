package bench

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/kvmbox/kvmbox"
)

//go:embed guests/httpserver.c
var httpserverSource []byte

// rowPublishedHTTP is wrk's rate against a small page, as time per
// request: 10^6 over requests per second.
var rowPublishedHTTP = row{"HTTP request of a small page, wrk on the host, 10 kept-alive connections, through a published port", "µs/request"}

// httpServerPort is the port the server listens on inside a sandbox.
const httpServerPort = 8080

// wrkSeconds is how long each run of wrk lasts.
const wrkSeconds = 3

// publishedHTTPWorkload measures HTTP requests from wrk on the host to a
// static page server: natively on the host's loopback, and in kvmbox in a
// sandbox through a published port. gVisor is left out: `runsc do`
// cannot publish a port.
var publishedHTTPWorkload = workload{rows: []row{rowPublishedHTTP}, needCC: true, in: func(r runner) support {
	if _, ok := r.(gvisorRunner); ok {
		return notApplicable
	}
	return runs
}, run: (*suite).publishedHTTP}

func (s *suite) publishedHTTP(r runner) ([]float64, error) {
	server, err := s.httpServer()
	if err != nil {
		return nil, err
	}
	var addr netip.AddrPort
	var stop func() error
	switch r := r.(type) {
	case kvmboxRunner:
		addr, stop, err = startPublishedServer(server, r.exitPath)
	default:
		addr, stop, err = startNativeServer(server)
	}
	if err != nil {
		return nil, err
	}
	rate, err := wrk(addr)
	if stopErr := stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}
	return []float64{1e6 / rate}, nil
}

// httpServer builds the server once per run of the suite, next to its
// files directory.
func (s *suite) httpServer() (string, error) {
	work := filepath.Dir(s.files)
	exe := filepath.Join(work, "httpserver")
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	return buildC(work, "httpserver", httpserverSource)
}

// awaitReady reads the server's first line, which says it listens.
func awaitReady(out io.Reader) error {
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("bench: the HTTP server did not start: %w", err)
	}
	if line != "ready\n" {
		return fmt.Errorf("bench: the HTTP server wrote %q", line)
	}
	go io.Copy(io.Discard, out)
	return nil
}

func startNativeServer(server string) (netip.AddrPort, func() error, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	addr := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	cmd := exec.Command(server, addr.Addr().String(), strconv.Itoa(int(addr.Port())))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return netip.AddrPort{}, nil, err
	}
	stop := func() error {
		cmd.Process.Kill()
		cmd.Wait()
		return nil
	}
	if err := awaitReady(out); err != nil {
		stop()
		return netip.AddrPort{}, nil, err
	}
	return addr, stop, nil
}

func startPublishedServer(server string, exitPath bool) (netip.AddrPort, func() error, error) {
	sb, err := kvmbox.New(kvmbox.Config{
		Memory:       256 << 20,
		ExitPathOnly: exitPath,
		Publish:      []kvmbox.PublishedPort{{HostAddr: netip.MustParseAddr("127.0.0.1"), Port: httpServerPort}},
	})
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := sb.Command(ctx, server, "0.0.0.0", strconv.Itoa(httpServerPort))
	out, w := io.Pipe()
	cmd.Stdout = w
	p, err := cmd.Start()
	if err != nil {
		cancel()
		return netip.AddrPort{}, nil, errors.Join(err, sb.Close())
	}
	stop := func() error {
		cancel()
		p.Wait()
		w.Close()
		return sb.Close()
	}
	if err := awaitReady(out); err != nil {
		return netip.AddrPort{}, nil, errors.Join(err, stop())
	}
	return sb.PublishedAddrs()[0], stop, nil
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// wrk runs wrk against addr and returns its requests per second.
func wrk(addr netip.AddrPort) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", "-t1", "-c10", fmt.Sprintf("-d%ds", wrkSeconds), fmt.Sprintf("http://%s/", addr))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("bench: wrk (apt package wrk): %w: %s", err, out)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("bench: wrk printed no rate: %s", out)
	}
	rate, err := strconv.ParseFloat(string(m[1]), 64)
	if err == nil && rate <= 0 {
		err = fmt.Errorf("bench: wrk completed no request: %s", out)
	}
	return rate, err
}
