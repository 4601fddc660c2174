package vfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/hostfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

func targets(v *vfs.VFS, ctx *vfs.Context) []string {
	var out []string
	for _, m := range v.Mounts(ctx.Root) {
		out = append(out, m.Root+" "+m.Target)
	}
	return out
}

func TestBindRemountUnmount(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/a", "/a/sub", "/b", "/c", "/t")
	writeFile(t, v, ctx, "/a/f", "a")
	id, err := v.MountCollected(ctx, nil, "/a/sub", tmpfs.New(tmpfs.Options{}), unix.MS_NOSUID, "none")
	require.NoError(t, err)
	require.Equal(t, 2, id)
	writeFile(t, v, ctx, "/a/sub/g", "sub")

	// A plain bind shows the directory, not the mounts below it; a
	// recursive one shows them too.
	require.NoError(t, v.Bind(ctx, nil, "/a", "/b", false))
	require.Equal(t, "a", readFile(t, v, ctx, "/b/f"))
	require.ErrorIs(t, openErr(v, ctx, "/b/sub/g", unix.O_RDONLY), unix.ENOENT)
	require.NoError(t, v.Bind(ctx, nil, "/a", "/c", true))
	require.Equal(t, "sub", readFile(t, v, ctx, "/c/sub/g"))
	require.Equal(t, []string{"/ /", "/ /a/sub", "/a /b", "/a /c", "/ /c/sub"}, targets(v, ctx))
	require.Equal(t, stat(t, v, ctx, "/a/f").Dev, stat(t, v, ctx, "/b/f").Dev)
	require.ErrorIs(t, v.Bind(ctx, nil, "/a/f", "/t", false), unix.ENOTDIR)
	require.ErrorIs(t, v.Bind(ctx, nil, "/nope", "/t", false), unix.ENOENT)
	require.ErrorIs(t, v.Bind(user(ctx), nil, "/a", "/t", false), unix.EPERM)

	// A read-only remount of a bind leaves the original writable.
	require.NoError(t, v.Remount(ctx, nil, "/b", unix.MS_RDONLY))
	require.ErrorIs(t, openErr(v, ctx, "/b/f", unix.O_WRONLY), unix.EROFS)
	writeFile(t, v, ctx, "/a/f", "A")
	require.Equal(t, "A", readFile(t, v, ctx, "/b/f"))
	require.ErrorIs(t, v.Remount(ctx, nil, "/b/sub", unix.MS_RDONLY), unix.EINVAL)
	require.NoError(t, v.Remount(ctx, nil, "/b", 0))
	writeFile(t, v, ctx, "/b/f", "b")

	// A file open on a detached mount keeps working.
	f, err := v.OpenAt(ctx, nil, "/c/sub/g", unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	require.ErrorIs(t, v.Unmount(ctx, nil, "/c", true, false), unix.EBUSY)
	require.ErrorIs(t, v.Unmount(ctx, nil, "/c/sub/g", true, false), unix.EINVAL)
	require.ErrorIs(t, v.Unmount(ctx, nil, "/t", true, false), unix.EINVAL)
	require.ErrorIs(t, v.Unmount(ctx, nil, "/", true, false), unix.EBUSY)
	require.ErrorIs(t, v.Unmount(ctx, nil, "/", true, true), unix.EINVAL)
	require.ErrorIs(t, v.Unmount(user(ctx), nil, "/b", true, false), unix.EPERM)
	require.NoError(t, v.Unmount(ctx, nil, "/c", true, true))
	require.NoError(t, v.Unmount(ctx, nil, "/b", true, false))
	require.Equal(t, []string{"/ /", "/ /a/sub"}, targets(v, ctx))
	buf := make([]byte, 3)
	n, err := f.Read(ctx, buf)
	require.NoError(t, err)
	require.Equal(t, "sub", string(buf[:n]))
	require.ErrorIs(t, openErr(v, ctx, "/c/sub/g", unix.O_RDONLY), unix.ENOENT)
	require.Equal(t, "b", readFile(t, v, ctx, "/a/f"))

	// A mount point can be removed once unmounted.
	require.NoError(t, v.Unmount(ctx, nil, "/a/sub", true, false))
	require.NoError(t, v.UnlinkAt(ctx, nil, "/a/sub", unix.AT_REMOVEDIR))
}

// UnmountRelease lets go of a host directory once no mount shows it: its
// descriptors are closed, while one still bound elsewhere stays open.
func TestUnmountReleaseClosesHostFiles(t *testing.T) {
	v, ctx := newVFS(t)
	mkdir(t, v, ctx, "/h", "/k", "/b")
	served, kept := hostfsOf(t), hostfsOf(t)
	require.NoError(t, v.Mount(ctx, nil, "/h", served, 0))
	require.NoError(t, v.Mount(ctx, nil, "/k", kept, 0))
	require.NoError(t, v.Bind(ctx, nil, "/k", "/b", false))
	require.Equal(t, int64(1), served.OpenFDs())

	require.NoError(t, v.UnmountRelease(ctx, "/h"))
	require.Equal(t, int64(0), served.OpenFDs())
	require.NoError(t, v.UnmountRelease(ctx, "/k"))
	require.Equal(t, int64(1), kept.OpenFDs(), "still shown at /b")
	require.ErrorIs(t, v.UnmountRelease(ctx, "/h"), unix.EINVAL)
	require.ErrorIs(t, v.UnmountRelease(ctx, "/"), unix.EINVAL)
	require.ErrorIs(t, v.UnmountRelease(user(ctx), "/b"), unix.EPERM)
	require.NoError(t, v.UnmountRelease(ctx, "/b"))
	require.Equal(t, int64(0), kept.OpenFDs())
}

func hostfsOf(t *testing.T) *hostfs.FS {
	t.Helper()
	fs, err := hostfs.New(t.TempDir(), hostfs.Options{})
	require.NoError(t, err)
	return fs
}
