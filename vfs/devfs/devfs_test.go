package devfs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/devfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func TestDevices(t *testing.T) {
	bg := context.Background()
	v, err := vfs.New(bg, tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	root := v.Root()
	ctx := &vfs.Context{Context: bg, Creds: &vfs.Credentials{UID: 1000, GID: 1000}, Root: root, Cwd: root}
	admin := &vfs.Context{Context: bg, Creds: vfs.RootCredentials(), Root: root, Cwd: root}
	require.NoError(t, v.MkdirAt(admin, nil, "/dev", 0o755))
	dev, err := devfs.New(bg, v)
	require.NoError(t, err)
	require.NoError(t, v.Mount(admin, nil, "/dev", dev, 0))

	open := func(name string, flags int) *vfs.File {
		f, err := v.OpenAt(ctx, nil, "/dev/"+name, flags, 0)
		require.NoError(t, err)
		t.Cleanup(f.DecRef)
		return f
	}
	buf := []byte("xxxx")
	n, err := open("null", unix.O_RDWR).Read(ctx, buf)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = open("null", unix.O_WRONLY).Write(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	n, err = open("zero", unix.O_RDONLY).PRead(ctx, buf, 100)
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 0, 0}, buf[:n])
	_, err = open("full", unix.O_WRONLY).Write(ctx, buf)
	require.ErrorIs(t, err, unix.ENOSPC)
	big := make([]byte, 64)
	n, err = open("urandom", unix.O_RDONLY).Read(ctx, big)
	require.NoError(t, err)
	require.Equal(t, 64, n)
	require.NotEqual(t, make([]byte, 64), big)
	_, err = open("random", unix.O_RDONLY).Seek(ctx, 10, unix.SEEK_SET)
	require.NoError(t, err)

	var st unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, "/dev/null", 0, &st))
	require.Equal(t, uint32(unix.S_IFCHR|0o666), st.Mode)
	require.Equal(t, unix.Mkdev(1, 3), st.Rdev)
	target, err := v.ReadlinkAt(ctx, nil, "/dev/stdout")
	require.NoError(t, err)
	require.Equal(t, "/proc/self/fd/1", target)

	// /dev/tty: ENXIO until the kernel plugs a terminal in.
	_, err = v.OpenAt(ctx, nil, "/dev/tty", unix.O_RDWR, 0)
	require.ErrorIs(t, err, unix.ENXIO)
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer r.DecRef()
	v.RegisterCharDevice(devfs.TTYMajor, devfs.TTYMinor, func(context.Context, int) (vfs.FileImpl, error) {
		return w.Impl(), nil
	})
	tty := open("tty", unix.O_WRONLY)
	_, err = tty.Write(ctx, []byte("hi"))
	require.NoError(t, err)
	n, err = r.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "hi", string(buf[:n]))
}
