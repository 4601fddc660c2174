package overlay_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/internal/vfstest"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/hostfs"
	"github.com/kvmbox/kvmbox/vfs/overlay"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

// t0 is the modification time of every object of the host tree.
var t0 = time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)

// hostTree builds the lower tree on the host:
//
//	bin/sh  empty/  etc/{passwd,hosts,ssl/cert.pem}  link -> etc/passwd
//	usr/share/doc/{a.txt,b.txt,sub/c.txt}  var/{empty/,log/x.log}
func hostTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	dirs := map[string]os.FileMode{
		"bin": 0o755, "empty": 0o755, "etc": 0o755, "etc/ssl": 0o700, "usr": 0o755, "usr/share": 0o755,
		"usr/share/doc": 0o755, "usr/share/doc/sub": 0o755, "var": 0o755, "var/empty": 0o755, "var/log": 0o755,
	}
	for d, mode := range dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
		require.NoError(t, os.Chmod(filepath.Join(dir, d), mode))
	}
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"bin/sh":                  {"#!/bin/sh\n", 0o755},
		"etc/passwd":              {"root:x:0:0\n", 0o644},
		"etc/hosts":               {"127.0.0.1 localhost\n", 0o644},
		"etc/ssl/cert.pem":        {"CERT", 0o600},
		"usr/share/doc/a.txt":     {"doc a", 0o644},
		"usr/share/doc/b.txt":     {"doc b", 0o644},
		"usr/share/doc/sub/c.txt": {"doc c", 0o644},
		"var/log/x.log":           {"log", 0o640},
	}
	for f, c := range files {
		writeHost(t, filepath.Join(dir, f), []byte(c.data), c.mode)
	}
	require.NoError(t, os.Symlink("etc/passwd", filepath.Join(dir, "link")))
	return dir
}

func writeHost(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(p, data, mode))
	require.NoError(t, os.Chmod(p, mode))
}

// setTimes gives every object under dir the modification time t0.
func setTimes(t *testing.T, dir string) {
	t.Helper()
	var paths []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	ts := unix.NsecToTimespec(t0.UnixNano())
	for _, p := range slices.Backward(paths) {
		require.NoError(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// snapshot records every object under dir: type, mode, owner, size,
// links, mtime, and content or target.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("%o %d:%d size=%d nlink=%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + l
		}
		out[p] = desc
		return nil
	}))
	return out
}

type env struct {
	host  string
	upper *tmpfs.FS
	v     *vfs.VFS
	ctx   *vfs.Context
}

// mount stacks a tmpfs over the host directory dir. Unless readOnly, the
// lower hostfs is writable, so that any write of the overlay to its
// lower layer would reach the host: the host tree is checked unchanged
// at the end of the test.
func mount(t *testing.T, dir string, upper *tmpfs.FS, readOnly bool) *env {
	t.Helper()
	setTimes(t, dir)
	before := snapshot(t, dir)
	lower, err := hostfs.New(dir, hostfs.Options{ReadOnly: readOnly})
	require.NoError(t, err)
	ofs, err := overlay.New(context.Background(), lower, upper)
	require.NoError(t, err)
	v, err := vfs.New(context.Background(), ofs)
	require.NoError(t, err)
	t.Cleanup(func() {
		v.Release()
		require.Zero(t, lower.OpenFDs())
		require.Equal(t, before, snapshot(t, dir))
	})
	root := v.Root()
	ctx := &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: root, Cwd: root, Umask: 0o022}
	return &env{host: dir, upper: upper, v: v, ctx: ctx}
}

func setup(t *testing.T) *env {
	t.Helper()
	return mount(t, hostTree(t), tmpfs.New(tmpfs.Options{}), false)
}

func (e *env) write(t *testing.T, p string, flags int, data string) {
	t.Helper()
	f, err := e.v.OpenAt(e.ctx, nil, p, flags, 0o644)
	require.NoError(t, err)
	defer f.DecRef()
	n, err := f.Write(e.ctx, []byte(data))
	require.NoError(t, err)
	require.Equal(t, len(data), n)
}

func (e *env) read(t *testing.T, p string) string {
	t.Helper()
	f, err := e.v.OpenAt(e.ctx, nil, p, unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	return vfstest.ReadAll(t, e.ctx, f, 64<<10)
}

func (e *env) stat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, e.v.StatAt(e.ctx, nil, p, unix.AT_SYMLINK_NOFOLLOW, &st))
	return st
}

func (e *env) statErr(p string) error {
	var st unix.Stat_t
	return e.v.StatAt(e.ctx, nil, p, unix.AT_SYMLINK_NOFOLLOW, &st)
}

// dirents lists a directory, "." and ".." left out, with a buffer of
// size bytes; it returns the names in order and their inode numbers.
func (e *env) dirents(t *testing.T, p string, size int) ([]string, map[string]uint64) {
	t.Helper()
	f, err := e.v.OpenAt(e.ctx, nil, p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer f.DecRef()
	var names []string
	inos := map[string]uint64{}
	for _, d := range vfstest.ReadDir(t, e.ctx, f, size) {
		if d.Name != "." && d.Name != ".." {
			require.NotContains(t, inos, d.Name, "duplicate entry")
			names = append(names, d.Name)
			inos[d.Name] = d.Ino
		}
	}
	return names, inos
}

// names returns the sorted listing of a directory.
func (e *env) names(t *testing.T, p string) []string {
	t.Helper()
	names, _ := e.dirents(t, p, 4096)
	slices.Sort(names)
	return names
}

// view describes every object under dir in the merged view, as
// snapshot does for the host, with permissions and content.
func (e *env) view(t *testing.T, dir string, out map[string]string) map[string]string {
	t.Helper()
	for _, name := range e.names(t, dir) {
		p := path.Join(dir, name)
		st := e.stat(t, p)
		perm := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			out[p] = fmt.Sprintf("d %o", perm)
			e.view(t, p, out)
		case unix.S_IFREG:
			out[p] = fmt.Sprintf("f %o %s", perm, e.read(t, p))
		case unix.S_IFLNK:
			target, err := e.v.ReadlinkAt(e.ctx, nil, p)
			require.NoError(t, err)
			out[p] = "l " + target
		default:
			out[p] = fmt.Sprintf("%o", st.Mode)
		}
	}
	return out
}

// copyTree copies src to dst through the VFS, as cp -r does.
func (e *env) copyTree(t *testing.T, src, dst string) {
	t.Helper()
	st := e.stat(t, src)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		require.NoError(t, e.v.MkdirAt(e.ctx, nil, dst, st.Mode&0o7777))
		for _, name := range e.names(t, src) {
			e.copyTree(t, path.Join(src, name), path.Join(dst, name))
		}
	case unix.S_IFLNK:
		target, err := e.v.ReadlinkAt(e.ctx, nil, src)
		require.NoError(t, err)
		require.NoError(t, e.v.SymlinkAt(e.ctx, target, nil, dst))
	default:
		e.write(t, dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, e.read(t, src))
		require.NoError(t, e.v.ChmodAt(e.ctx, nil, dst, st.Mode&0o7777, 0))
	}
}

// removeTree removes p and everything below, as rm -r does.
func (e *env) removeTree(t *testing.T, p string) {
	t.Helper()
	if e.stat(t, p).Mode&unix.S_IFMT != unix.S_IFDIR {
		require.NoError(t, e.v.UnlinkAt(e.ctx, nil, p, 0))
		return
	}
	for _, name := range e.names(t, p) {
		e.removeTree(t, path.Join(p, name))
	}
	require.NoError(t, e.v.UnlinkAt(e.ctx, nil, p, unix.AT_REMOVEDIR))
}

// inUpper reports whether the upper layer has p.
func (e *env) inUpper(t *testing.T, p string) bool {
	t.Helper()
	in := e.upper.Root()
	for name := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
		var err error
		if in, err = in.Lookup(context.Background(), name); err != nil {
			require.ErrorIs(t, err, unix.ENOENT)
			return false
		}
	}
	return true
}

// upperNames lists the upper layer's directory p.
func (e *env) upperNames(t *testing.T, p string) []string {
	t.Helper()
	ctx := context.Background()
	in := e.upper.Root()
	for name := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
		if name != "" {
			var err error
			in, err = in.Lookup(ctx, name)
			require.NoError(t, err)
		}
	}
	impl, err := in.Open(ctx, unix.O_RDONLY|unix.O_DIRECTORY)
	require.NoError(t, err)
	defer impl.Release()
	names := []string{}
	require.NoError(t, impl.(vfs.DirReader).ReadDir(ctx, 2, func(d vfs.Dirent) bool {
		names = append(names, d.Name)
		return true
	}))
	slices.Sort(names)
	return names
}
