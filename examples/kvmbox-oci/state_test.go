package main

import (
	"net"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// connPair returns two connected SOCK_SEQPACKET conns, as the monitor's.
func connPair(t *testing.T) (*conn, *conn) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	var conns [2]*conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "seqpacket")
		c, err := net.FileConn(f)
		f.Close()
		require.NoError(t, err)
		conns[i] = &conn{c.(*net.UnixConn)}
		t.Cleanup(func() { conns[i].Close() })
	}
	return conns[0], conns[1]
}

// A request too large for one SOCK_SEQPACKET message (a process with a
// large environment) arrives whole, with the descriptors sent beside it.
func TestLargeMessagesArriveWhole(t *testing.T) {
	a, b := connPair(t)
	for _, size := range []int{10, maxInline, 4 * maxInline} {
		env := []string{"BIG=" + strings.Repeat("x", size)}
		req := request{Op: opExec, Process: &specs.Process{Args: []string{"sh"}, Env: env, Cwd: "/"}}
		require.NoError(t, a.send(req, os.Stdin, os.Stdout, os.Stderr))
		var got request
		files, err := b.receive(&got)
		require.NoError(t, err, size)
		require.Len(t, files, 3)
		closeAll(files)
		require.Equal(t, req, got)
	}
	require.Error(t, a.send(request{Op: opExec, Process: &specs.Process{Env: []string{strings.Repeat("x", maxMessage)}}}))
}
