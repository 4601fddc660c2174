package devpts_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/devfs"
	"github.com/kvmbox/kvmbox/vfs/devpts"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

// sessions records what the terminals ask of the kernel.
type sessions struct {
	mu       sync.Mutex
	signals  []string
	acquired int
	hangups  []int32
}

func (s *sessions) SignalGroup(pgid int32, sig unix.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signals = append(s.signals, fmt.Sprintf("%d:%s", pgid, unix.SignalName(sig)))
}

func (s *sessions) Acquire(context.Context, *devpts.Terminal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acquired++
}

func (s *sessions) JobControl(context.Context, *devpts.Terminal, unix.Signal) error { return nil }

func (s *sessions) Hangup(_ *devpts.Terminal, sid int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangups = append(s.hangups, sid)
}

// mountDevpts makes /dev (devfs, for /dev/ptmx) and /dev/pts.
func mountDevpts(t *testing.T) (*vfs.VFS, *vfs.Context, *sessions) {
	t.Helper()
	bg := context.Background()
	v, err := vfs.New(bg, tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	t.Cleanup(v.Release)
	root := v.Root()
	ctx := &vfs.Context{Context: bg, Creds: vfs.RootCredentials(), Root: root, Cwd: root}
	require.NoError(t, v.MkdirAt(ctx, nil, "/dev", 0o755))
	dev, err := devfs.New(bg, v)
	require.NoError(t, err)
	require.NoError(t, v.Mount(ctx, nil, "/dev", dev, 0))
	require.NoError(t, v.MkdirAt(ctx, nil, "/dev/pts", 0o755))
	s := &sessions{}
	require.NoError(t, v.Mount(ctx, nil, "/dev/pts", devpts.New(v, s), 0))
	return v, ctx, s
}

func open(t *testing.T, v *vfs.VFS, ctx *vfs.Context, path string, flags int) (*vfs.File, error) {
	t.Helper()
	f, err := v.OpenAt(ctx, nil, path, flags, 0)
	if err == nil {
		t.Cleanup(f.DecRef)
	}
	return f, err
}

func TestNamesComeAndGo(t *testing.T) {
	v, ctx, s := mountDevpts(t)
	m, err := v.OpenAt(ctx, nil, "/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	pty := m.Impl().(*devpts.Master).Terminal()
	require.Equal(t, uint32(0), pty.Index())
	require.True(t, pty.Locked())
	_, err = open(t, v, ctx, "/dev/pts/0", unix.O_RDWR)
	require.ErrorIs(t, err, unix.EIO, "the slave is locked")
	pty.SetLocked(false)
	slave, err := open(t, v, ctx, "/dev/pts/0", unix.O_RDWR)
	require.NoError(t, err)
	require.Equal(t, 1, s.acquired, "opened without O_NOCTTY")

	var st unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, "/dev/pts/0", 0, &st))
	require.Equal(t, uint32(unix.S_IFCHR|0o620), st.Mode)
	require.Equal(t, unix.Mkdev(136, 0), st.Rdev)
	require.Equal(t, uint64(3), st.Ino)

	second, err := open(t, v, ctx, "/dev/pts/ptmx", unix.O_RDWR)
	require.NoError(t, err)
	require.Equal(t, uint32(1), second.Impl().(*devpts.Master).Terminal().Index())

	dir, err := open(t, v, ctx, "/dev/pts", unix.O_RDONLY|unix.O_DIRECTORY)
	require.NoError(t, err)
	require.Equal(t, []string{".", "..", "ptmx", "0", "1"}, dirNames(t, ctx, dir))

	pty.SetSession(7, 7)
	m.DecRef()
	require.Equal(t, []int32{7}, s.hangups)
	require.ErrorIs(t, v.StatAt(ctx, nil, "/dev/pts/0", 0, &st), unix.ENOENT, "the name goes with the master")
	buf := make([]byte, 4)
	n, err := slave.Read(ctx, buf)
	require.NoError(t, err)
	require.Zero(t, n, "a hung-up slave reads end of file")
	_, err = slave.Write(ctx, buf)
	require.ErrorIs(t, err, unix.EIO)

	third, err := open(t, v, ctx, "/dev/ptmx", unix.O_RDWR)
	require.NoError(t, err)
	require.Equal(t, uint32(2), third.Impl().(*devpts.Master).Terminal().Index(), "0 stays taken while its slave is open")
}

// dirNames lists dir with getdents64.
func dirNames(t *testing.T, ctx context.Context, dir *vfs.File) []string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := dir.Getdents64(ctx, buf)
	require.NoError(t, err)
	var names []string
	for off := 0; off < n; {
		reclen := int(binary.LittleEndian.Uint16(buf[off+16:]))
		name := buf[off+19 : off+reclen]
		names = append(names, string(name[:bytes.IndexByte(name, 0)]))
		off += reclen
	}
	return names
}

func TestMasterAndSlave(t *testing.T) {
	v, ctx, s := mountDevpts(t)
	m, err := open(t, v, ctx, "/dev/ptmx", unix.O_RDWR|unix.O_NONBLOCK)
	require.NoError(t, err)
	pty := m.Impl().(*devpts.Master).Terminal()
	pty.SetLocked(false)
	slave, err := v.OpenAt(ctx, nil, "/dev/pts/0", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	require.NoError(t, err)
	require.Zero(t, s.acquired)
	pty.SetSession(5, 9)

	_, err = m.Write(ctx, []byte("ls -l\x7f\x7fa\n"))
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, err := slave.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "ls a\n", string(buf[:n]))
	n, err = m.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "ls -l\b \b\b \ba\r\n", string(buf[:n]))
	_, err = m.Write(ctx, []byte("line\npartial\x03"))
	require.NoError(t, err)
	require.Equal(t, []string{"9:SIGINT"}, s.signals)
	n, err = m.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "^C", string(buf[:n]), "^C drops the input and the echoes of the write")
	_, err = slave.Read(ctx, buf)
	require.ErrorIs(t, err, unix.EAGAIN)

	pty.SetWindowSize(unix.Winsize{Row: 10, Col: 20})
	pty.SetWindowSize(unix.Winsize{Row: 10, Col: 20})
	require.Equal(t, []string{"9:SIGINT", "9:SIGWINCH"}, s.signals, "SIGWINCH only on a change")

	_, err = slave.Write(ctx, []byte("bye\n"))
	require.NoError(t, err)
	require.Equal(t, uint32(unix.POLLIN|unix.POLLOUT), m.Readiness(unix.POLLIN|unix.POLLOUT))
	slave.DecRef()
	require.Equal(t, uint32(unix.POLLIN|unix.POLLHUP), m.Readiness(unix.POLLIN))
	n, err = m.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "bye\r\n", string(buf[:n]))
	_, err = m.Read(ctx, buf)
	require.ErrorIs(t, err, unix.EIO, "the slave has closed")
}

func TestPTYLimit(t *testing.T) {
	v, ctx, _ := mountDevpts(t)
	for range devpts.MaxPTYs {
		_, err := open(t, v, ctx, "/dev/ptmx", unix.O_RDWR)
		require.NoError(t, err)
	}
	_, err := open(t, v, ctx, "/dev/ptmx", unix.O_RDWR)
	require.ErrorIs(t, err, unix.ENOSPC)
}
