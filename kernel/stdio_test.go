package kernel

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

func TestStdioReadiness(t *testing.T) {
	ctx := context.Background()
	done := make(chan struct{})
	defer close(done)
	pr, pw := io.Pipe()
	in := newStdin(newStdinPump(pr, done))
	defer in.DecRef()
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	in.EventRegister(w)
	defer in.EventUnregister(w)
	require.Zero(t, in.Readiness(unix.POLLIN|unix.POLLOUT))
	require.NoError(t, in.SetStatusFlags(unix.O_NONBLOCK))
	_, err := in.Read(ctx, make([]byte, 1))
	require.ErrorIs(t, err, unix.EAGAIN)

	go pw.Write([]byte("hi"))
	<-ch
	require.Equal(t, uint32(unix.POLLIN), in.Readiness(unix.POLLIN|unix.POLLOUT))
	buf := make([]byte, 8)
	n, err := in.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "hi", string(buf[:n]))
	require.Zero(t, in.Readiness(unix.POLLIN))

	// The guest sees a pipe, which hangs up at the end of input.
	pw.Close()
	<-ch
	require.Equal(t, uint32(unix.POLLHUP), in.Readiness(unix.POLLIN))
	n, err = in.Read(ctx, buf)
	require.NoError(t, err)
	require.Zero(t, n)

	out := newStdout(io.Discard, &sync.Mutex{})
	defer out.DecRef()
	require.Equal(t, uint32(unix.POLLOUT), out.Readiness(unix.POLLIN|unix.POLLOUT))
}

// TestStdoutWritesAreWhole writes through stdout, stderr and a reopened
// stdout at once into one bytes.Buffer, which is not safe for concurrent
// use: every write arrives whole.
func TestStdoutWritesAreWhole(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	mu := &sync.Mutex{}
	stdout, stderr := newStdout(&buf, mu), newStdout(&buf, mu)
	defer stdout.DecRef()
	defer stderr.DecRef()
	again, err := stdout.Impl().(vfs.Reopener).Reopen(ctx, unix.O_WRONLY)
	require.NoError(t, err)
	defer again.DecRef()
	line := strings.Repeat("x", 99) + "\n"
	var wg sync.WaitGroup
	for _, f := range []*vfs.File{stdout, stderr, again} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				_, err := f.Write(ctx, []byte(line))
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, strings.Repeat(line, 600), buf.String())
}
