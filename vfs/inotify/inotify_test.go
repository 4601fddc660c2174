package inotify_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/inotify"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

type event struct {
	wd     int32
	mask   uint32
	cookie uint32
	name   string
}

func setup(t *testing.T) (*vfs.VFS, *vfs.Context) {
	t.Helper()
	v, err := vfs.New(context.Background(), tmpfs.New(tmpfs.Options{}))
	require.NoError(t, err)
	t.Cleanup(v.Release)
	root := v.Root()
	return v, &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: root, Cwd: root, Umask: 0o022}
}

func newInstance(t *testing.T, v *vfs.VFS, limits *inotify.Limits) (*vfs.File, *inotify.Instance) {
	t.Helper()
	f, err := inotify.New(v, limits, 0, unix.IN_NONBLOCK)
	require.NoError(t, err)
	t.Cleanup(f.DecRef)
	in, ok := inotify.Of(f)
	require.True(t, ok)
	return f, in
}

func watch(t *testing.T, v *vfs.VFS, ctx *vfs.Context, in *inotify.Instance, path string, mask uint32) int32 {
	t.Helper()
	vd, err := v.WatchPath(ctx, path, true, false)
	require.NoError(t, err)
	wd, err := in.AddWatch(vd, mask)
	require.NoError(t, err)
	return wd
}

// readEvents reads and decodes every queued event.
func readEvents(t *testing.T, ctx context.Context, f *vfs.File) []event {
	t.Helper()
	var out []event
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(ctx, buf)
		if err == unix.EAGAIN {
			return out
		}
		require.NoError(t, err)
		for p := buf[:n]; len(p) > 0; {
			e := event{wd: int32(binary.LittleEndian.Uint32(p)), mask: binary.LittleEndian.Uint32(p[4:]), cookie: binary.LittleEndian.Uint32(p[8:])}
			l := binary.LittleEndian.Uint32(p[12:])
			name := p[16 : 16+l]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			e.name = string(name)
			out = append(out, e)
			p = p[16+l:]
		}
	}
}

func create(t *testing.T, v *vfs.VFS, ctx *vfs.Context, path string) {
	t.Helper()
	f, err := v.OpenAt(ctx, nil, path, unix.O_WRONLY|unix.O_CREAT, 0o644)
	require.NoError(t, err)
	f.DecRef()
}

// TestQueueOverflowsOnce checks that a full queue takes one
// IN_Q_OVERFLOW event, and events again once it is read.
func TestQueueOverflowsOnce(t *testing.T) {
	v, ctx := setup(t)
	limits := inotify.NewLimits()
	limits.MaxQueuedEvents.Store(3)
	f, in := newInstance(t, v, limits)
	wd := watch(t, v, ctx, in, "/", unix.IN_CREATE)
	for _, name := range []string{"/a", "/b", "/c", "/d", "/e"} {
		create(t, v, ctx, name)
	}
	require.Equal(t, []event{
		{wd, unix.IN_CREATE, 0, "a"}, {wd, unix.IN_CREATE, 0, "b"}, {wd, unix.IN_CREATE, 0, "c"},
		{-1, unix.IN_Q_OVERFLOW, 0, ""},
	}, readEvents(t, ctx, f))
	create(t, v, ctx, "/f")
	require.Equal(t, []event{{wd, unix.IN_CREATE, 0, "f"}}, readEvents(t, ctx, f))
}

// TestUnmountEndsWatches checks that unmounting a file system ends the
// watches on its inodes with IN_UNMOUNT and IN_IGNORED, and leaves the
// others.
func TestUnmountEndsWatches(t *testing.T) {
	v, ctx := setup(t)
	require.NoError(t, v.MkdirAt(ctx, nil, "/mnt", 0o755))
	require.NoError(t, v.Mount(ctx, nil, "/mnt", tmpfs.New(tmpfs.Options{}), 0))
	create(t, v, ctx, "/mnt/file")
	f, in := newInstance(t, v, inotify.NewLimits())
	inner := watch(t, v, ctx, in, "/mnt/file", unix.IN_ALL_EVENTS)
	outer := watch(t, v, ctx, in, "/", unix.IN_CREATE)
	require.NoError(t, v.Unmount(ctx, nil, "/mnt", true, false))
	create(t, v, ctx, "/after")
	require.Equal(t, []event{
		{inner, unix.IN_UNMOUNT, 0, ""}, {inner, unix.IN_IGNORED, 0, ""},
		{outer, unix.IN_CREATE, 0, "after"},
	}, readEvents(t, ctx, f))
	require.Equal(t, unix.EINVAL, in.RemoveWatch(inner))
}

// TestWatchLimit checks max_user_watches (ENOSPC) and that removed
// watches give their place back.
func TestWatchLimit(t *testing.T) {
	v, ctx := setup(t)
	limits := inotify.NewLimits()
	limits.MaxUserWatches.Store(1)
	create(t, v, ctx, "/a")
	create(t, v, ctx, "/b")
	_, in := newInstance(t, v, limits)
	wd := watch(t, v, ctx, in, "/a", unix.IN_MODIFY)
	vd, err := v.WatchPath(ctx, "/b", true, false)
	require.NoError(t, err)
	_, err = in.AddWatch(vd, unix.IN_MODIFY)
	require.Equal(t, unix.ENOSPC, err)
	require.NoError(t, in.RemoveWatch(wd))
	_, err = in.AddWatch(vd, unix.IN_MODIFY)
	require.NoError(t, err)
}

// TestInstanceLimit checks max_user_instances (EMFILE), counted per user.
func TestInstanceLimit(t *testing.T) {
	v, _ := setup(t)
	limits := inotify.NewLimits()
	limits.MaxUserInstances.Store(1)
	f, err := inotify.New(v, limits, 1000, 0)
	require.NoError(t, err)
	_, err = inotify.New(v, limits, 1000, 0)
	require.Equal(t, unix.EMFILE, err)
	other, err := inotify.New(v, limits, 1001, 0)
	require.NoError(t, err)
	other.DecRef()
	f.DecRef()
	f, err = inotify.New(v, limits, 1000, 0)
	require.NoError(t, err)
	f.DecRef()
}

// TestClosedInstanceLeavesNoWatch checks that the watches of a closed
// instance go with it.
func TestClosedInstanceLeavesNoWatch(t *testing.T) {
	v, ctx := setup(t)
	limits := inotify.NewLimits()
	f, err := inotify.New(v, limits, 0, unix.IN_NONBLOCK)
	require.NoError(t, err)
	in, _ := inotify.Of(f)
	watch(t, v, ctx, in, "/", unix.IN_CREATE)
	f.DecRef()
	limits.MaxUserWatches.Store(1)
	_, in2 := newInstance(t, v, limits)
	watch(t, v, ctx, in2, "/", unix.IN_CREATE)
}

// TestConcurrentChangesAndWatches changes files while watches come and go
// and the queue is read, then closes the instance: run with -race, it
// checks the locking; the instance's counts go back to zero.
func TestConcurrentChangesAndWatches(t *testing.T) {
	v, ctx := setup(t)
	limits := inotify.NewLimits()
	limits.MaxUserWatches.Store(2)
	f, err := inotify.New(v, limits, 0, unix.IN_NONBLOCK)
	require.NoError(t, err)
	in, _ := inotify.Of(f)
	create(t, v, ctx, "/a")
	done := make(chan struct{})
	var changers sync.WaitGroup
	for i := range 2 {
		changers.Add(1)
		go func() {
			defer changers.Done()
			name := fmt.Sprintf("/f%d", i)
			for range 200 {
				nf, err := v.OpenAt(ctx, nil, name, unix.O_WRONLY|unix.O_CREAT, 0o644)
				if !assert.NoError(t, err) {
					return
				}
				nf.DecRef()
				assert.NoError(t, v.RenameAt(ctx, nil, name, nil, name+"x", 0))
				assert.NoError(t, v.UnlinkAt(ctx, nil, name+"x", 0))
			}
		}()
	}
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for range 200 {
			vd, err := v.WatchPath(ctx, "/", true, false)
			assert.NoError(t, err)
			wd, err := in.AddWatch(vd, unix.IN_ALL_EVENTS|unix.IN_ONESHOT)
			assert.NoError(t, err)
			f.Read(ctx, buf)
			in.RemoveWatch(wd)
		}
	}()
	changers.Wait()
	<-done
	f.DecRef()
	limits.MaxUserWatches.Store(1)
	limits.MaxUserInstances.Store(1)
	f2, in2 := newInstance(t, v, limits)
	watch(t, v, ctx, in2, "/a", unix.IN_MODIFY)
	require.Empty(t, readEvents(t, ctx, f2))
}
