package kernel

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSysLogReadAllKeepsWholeNewestRecords(t *testing.T) {
	l := newSysLog(1<<30, "box")
	all := l.ReadAll(LogBufferSize, false)
	require.True(t, bytes.HasPrefix(all, []byte("<5>[    0.000000] Linux version "+Release)), "%s", all)
	require.Contains(t, string(all), "Memory: 1048576K available\n")
	lines := strings.SplitAfter(string(all), "\n")
	last := lines[len(lines)-2]
	require.Equal(t, last, string(l.ReadAll(len(last)+1, false)), "only whole records fit")
	require.Empty(t, l.ReadAll(len(last)-1, false))

	require.Equal(t, all, l.ReadAll(LogBufferSize, true), "read-clear returns the log")
	require.Empty(t, l.ReadAll(LogBufferSize, false), "and then clears it")
	require.Equal(t, len(all), l.Unread(), "clearing leaves what SYSLOG_ACTION_READ has not consumed")
}

func TestSysLogReadConsumesAndThenWaits(t *testing.T) {
	l := newSysLog(1<<20, "box")
	all := l.ReadAll(LogBufferSize, false)
	first, err := l.Read(context.Background(), 10)
	require.NoError(t, err)
	require.Equal(t, all[:10], first, "a record is cut where the buffer ends")
	require.Equal(t, len(all)-10, l.Unread())
	rest, err := l.Read(context.Background(), LogBufferSize)
	require.NoError(t, err)
	require.Equal(t, all[10:], rest)
	require.Zero(t, l.Unread())
	l.Clear()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = l.Read(ctx, 10)
	require.Equal(t, unix.EINTR, err, "an empty log waits until interrupted")
}
