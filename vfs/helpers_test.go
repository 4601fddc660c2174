package vfs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/internal/vfstest"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func newVFS(t *testing.T) (*vfs.VFS, *vfs.Context) {
	t.Helper()
	v, err := vfs.New(context.Background(), tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	t.Cleanup(v.Release)
	root := v.Root()
	return v, &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: root, Cwd: root, Umask: 0o022}
}

// user returns a copy of ctx acting as uid/gid 1000.
func user(ctx *vfs.Context) *vfs.Context {
	c := *ctx
	c.Creds = &vfs.Credentials{UID: 1000, GID: 1000, RealUID: 1000, RealGID: 1000}
	return &c
}

func writeFile(t *testing.T, v *vfs.VFS, ctx *vfs.Context, path, data string) {
	t.Helper()
	f, err := v.OpenAt(ctx, nil, path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644)
	require.NoError(t, err)
	defer f.DecRef()
	n, err := f.Write(ctx, []byte(data))
	require.NoError(t, err)
	require.Equal(t, len(data), n)
}

func readFile(t *testing.T, v *vfs.VFS, ctx *vfs.Context, path string) string {
	t.Helper()
	f, err := v.OpenAt(ctx, nil, path, unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	return vfstest.ReadAll(t, ctx, f, 7)
}

func mkdir(t *testing.T, v *vfs.VFS, ctx *vfs.Context, paths ...string) {
	t.Helper()
	for _, p := range paths {
		require.NoError(t, v.MkdirAt(ctx, nil, p, 0o755))
	}
}

func stat(t *testing.T, v *vfs.VFS, ctx *vfs.Context, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, v.StatAt(ctx, nil, path, unix.AT_SYMLINK_NOFOLLOW, &st))
	return st
}

func openErr(v *vfs.VFS, ctx *vfs.Context, path string, flags int) error {
	f, err := v.OpenAt(ctx, nil, path, flags, 0o644)
	if err == nil {
		f.DecRef()
	}
	return err
}

// names lists a directory with getdents64 and a buffer of size bytes.
func names(t *testing.T, v *vfs.VFS, ctx *vfs.Context, path string, size int) []string {
	t.Helper()
	f, err := v.OpenAt(ctx, nil, path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	return vfstest.Names(vfstest.ReadDir(t, ctx, f, size))
}
