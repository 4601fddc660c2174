// Package hostfs exposes a host directory, read-only or read-write.
//
// Every host path is resolved by openat2(2) relative to a file descriptor
// of the mount's root with RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS and
// RESOLVE_NO_SYMLINKS, and every other host call works on a descriptor
// that such an open returned, with a single path component at most.
// Neither ".." nor symbolic links planted in the tree, nor a directory
// swapped for a symbolic link while a path is being resolved, can make it
// reach a host file outside the tree. Symbolic links inside the tree are
// handed to the VFS, which resolves them inside the sandbox.
//
// Host device nodes are never opened: the VFS opens its own devices for
// them. Host FIFOs and sockets cannot be opened (ENXIO). Files created
// through hostfs belong to the host user running the sandbox.
//
// NewFile serves a single host regular file, read-only, for a file mount
// that shows that file and nothing else of its host directory.
package hostfs

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// resolveFlags confine every host path lookup to the tree.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS

// maxRetries bounds the retries of openat2 calls that fail with EAGAIN
// because the host tree changed during the lookup.
const maxRetries = 16

// Options configure a host mount.
type Options struct {
	// ReadOnly makes every modification fail with EROFS.
	ReadOnly bool
}

// FS is a host directory as a file system.
type FS struct {
	rootFD   int
	readOnly bool
	file     bool // a single file (NewFile): rootFD is that file, readable
	fds      atomic.Int64
	released atomic.Bool

	// mu guards the tree of inodes (parent, name, children).
	mu   sync.Mutex
	root *inode
}

// New opens the host directory dir.
func New(dir string, opts Options) (*FS, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fs := &FS{rootFD: fd, readOnly: opts.ReadOnly}
	fs.fds.Store(1)
	fs.root = &inode{fs: fs, typ: unix.S_IFDIR}
	return fs, nil
}

// NewFile opens the host regular file path as a read-only file system
// whose root is that file (the sandbox's executable, mounted at its host
// path). The file is opened once, readable, and every access works on
// that descriptor: reads use pread. A FIFO is not waited on: it is
// refused like any file that is not regular (EISDIR for a directory,
// EINVAL otherwise).
func NewFile(path string) (*FS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		unix.Close(fd)
		return nil, unix.EISDIR
	default:
		unix.Close(fd)
		return nil, unix.EINVAL
	}
	fs := &FS{rootFD: fd, readOnly: true, file: true}
	fs.fds.Store(1)
	fs.root = &inode{fs: fs, typ: unix.S_IFREG}
	return fs, nil
}

// OpenFDs returns the number of host file descriptors the file system
// holds open now, its root included (0 after Release, once every file
// is closed).
func (fs *FS) OpenFDs() int64 {
	return fs.fds.Load()
}

// Root implements vfs.FileSystem.
func (fs *FS) Root() vfs.Inode {
	return fs.root
}

// Release implements vfs.FileSystem: it closes the root descriptor.
func (fs *FS) Release() {
	if !fs.released.Swap(true) {
		fs.close(fs.rootFD)
	}
}

// Statfs implements vfs.FileSystem.
func (fs *FS) Statfs(context.Context) (unix.Statfs_t, error) {
	var st unix.Statfs_t
	err := unix.Fstatfs(fs.rootFD, &st)
	if fs.readOnly {
		st.Flags |= unix.ST_RDONLY
	}
	return st, err
}

// open opens path, relative to the root, confined to the tree. The final
// component is never followed if it is a symbolic link.
func (fs *FS) open(path string, flags int) (int, error) {
	if fs.released.Load() {
		return -1, unix.EBADF
	}
	if fs.file {
		return fs.dupFile(flags)
	}
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	if flags&unix.O_PATH == 0 {
		flags |= unix.O_NOCTTY
	}
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolveFlags}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(fs.rootFD, path, &how)
		switch {
		case err == nil:
			fs.fds.Add(1)
			return fd, nil
		case err == unix.EINTR, err == unix.EAGAIN && i < maxRetries:
			continue
		}
		return -1, err
	}
}

// dupFile returns a descriptor of a single-file mount's file, its only
// inode, for a read-only access.
func (fs *FS) dupFile(flags int) (int, error) {
	switch {
	case flags&unix.O_DIRECTORY != 0:
		return -1, unix.ENOTDIR
	case flags&unix.O_ACCMODE != unix.O_RDONLY, flags&unix.O_TRUNC != 0:
		return -1, unix.EROFS
	}
	fd, err := unix.FcntlInt(uintptr(fs.rootFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	fs.fds.Add(1)
	return fd, nil
}

func (fs *FS) close(fd int) {
	unix.Close(fd)
	fs.fds.Add(-1)
}

// inode is a host file, known by its place in the tree.
type inode struct {
	fs  *FS
	typ uint32

	// Guarded by fs.mu.
	parent   *inode
	name     string
	children map[string]*inode
}

// path returns the inode's path relative to the root.
func (in *inode) path() string {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	return in.pathLocked()
}

func (in *inode) pathLocked() string {
	if in.parent == nil {
		return "."
	}
	var parts []string
	for n := in; n.parent != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// childPath returns the path of name in the directory in.
func (in *inode) childPath(name string) string {
	p := in.path()
	if p == "." {
		return name
	}
	return p + "/" + name
}

// withFD runs fn with a host descriptor of the inode opened with flags.
func (in *inode) withFD(flags int, fn func(fd int) error) error {
	fd, err := in.fs.open(in.path(), flags)
	if err != nil {
		return err
	}
	defer in.fs.close(fd)
	return fn(fd)
}

// withDir runs fn with a descriptor of the directory in, for a call on
// its child name.
func (in *inode) withDir(name string, fn func(dfd int) error) error {
	if in.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if name == "" || name == "." || name == ".." || strings.IndexByte(name, '/') >= 0 {
		return unix.EINVAL
	}
	return in.withFD(unix.O_PATH|unix.O_DIRECTORY, fn)
}

func statx(fd int) (unix.Statx_t, error) {
	var st unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &st)
	st.Dev_major, st.Dev_minor, st.Mnt_id = 0, 0, 0
	return st, err
}

// Stat implements vfs.Inode.
func (in *inode) Stat(context.Context) (unix.Statx_t, error) {
	var st unix.Statx_t
	err := in.withFD(unix.O_PATH, func(fd int) error {
		var err error
		st, err = statx(fd)
		return err
	})
	return st, err
}

// SetStat implements vfs.Inode.
func (in *inode) SetStat(_ context.Context, s *vfs.SetStat) error {
	if in.fs.readOnly {
		return unix.EROFS
	}
	if s.Mask&unix.STATX_SIZE != 0 {
		if err := in.withFD(unix.O_WRONLY, func(fd int) error {
			return unix.Ftruncate(fd, int64(s.Size))
		}); err != nil {
			return err
		}
	}
	return in.withFD(unix.O_PATH, func(fd int) error {
		if s.Mask&(unix.STATX_UID|unix.STATX_GID) != 0 {
			uid, gid := -1, -1
			if s.Mask&unix.STATX_UID != 0 {
				uid = int(s.UID)
			}
			if s.Mask&unix.STATX_GID != 0 {
				gid = int(s.GID)
			}
			if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
				return err
			}
		}
		if s.Mask&unix.STATX_MODE != 0 {
			if err := unix.Fchmodat(fd, "", s.Mode&0o7777, unix.AT_EMPTY_PATH); err != nil {
				return err
			}
		}
		if s.Mask&(unix.STATX_ATIME|unix.STATX_MTIME) != 0 {
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
			if s.Mask&unix.STATX_ATIME != 0 {
				ts[0] = s.Atime
			}
			if s.Mask&unix.STATX_MTIME != 0 {
				ts[1] = s.Mtime
			}
			return unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
		}
		return nil
	})
}

// Lookup implements vfs.Inode.
func (in *inode) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	if in.typ != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	fd, err := in.fs.open(in.childPath(name), unix.O_PATH)
	if err != nil {
		return nil, err
	}
	st, err := statx(fd)
	in.fs.close(fd)
	if err != nil {
		return nil, err
	}
	return in.child(name, uint32(st.Mode)&unix.S_IFMT), nil
}

// child returns the inode for name, reusing a known one of the same type.
func (in *inode) child(name string, typ uint32) *inode {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if c := in.children[name]; c != nil && c.typ == typ {
		return c
	}
	c := &inode{fs: in.fs, typ: typ, parent: in, name: name}
	if in.children == nil {
		in.children = make(map[string]*inode)
	}
	in.children[name] = c
	return c
}

// Create implements vfs.Inode.
func (in *inode) Create(ctx context.Context, name string, opts *vfs.CreateOptions) (vfs.Inode, error) {
	if in.fs.readOnly {
		return nil, unix.EROFS
	}
	typ := opts.Mode & unix.S_IFMT
	perm := opts.Mode & 0o7777
	err := in.withDir(name, func(dfd int) error {
		var err error
		switch typ {
		case unix.S_IFDIR:
			err = unix.Mkdirat(dfd, name, perm)
		case unix.S_IFLNK:
			return unix.Symlinkat(opts.Target, dfd, name)
		case unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK:
			err = unix.Mknodat(dfd, name, typ|perm, 0)
		default:
			return unix.EPERM
		}
		if err != nil {
			return err
		}
		return unix.Fchmodat(dfd, name, perm, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return nil, err
	}
	return in.child(name, typ), nil
}

// Link implements vfs.Inode.
func (in *inode) Link(_ context.Context, name string, target vfs.Inode) error {
	t, ok := target.(*inode)
	if !ok || t.fs != in.fs {
		return unix.EXDEV
	}
	if in.fs.readOnly {
		return unix.EROFS
	}
	in.fs.mu.Lock()
	tparent, tname := t.parent, t.name
	in.fs.mu.Unlock()
	if tparent == nil {
		return unix.EPERM
	}
	return in.withDir(name, func(dfd int) error {
		return tparent.withDir(tname, func(tfd int) error {
			return unix.Linkat(tfd, tname, dfd, name, 0)
		})
	})
}

// Unlink implements vfs.Inode.
func (in *inode) Unlink(_ context.Context, name string, dir bool) error {
	if in.fs.readOnly {
		return unix.EROFS
	}
	flags := 0
	if dir {
		flags = unix.AT_REMOVEDIR
	}
	if err := in.withDir(name, func(dfd int) error {
		return unix.Unlinkat(dfd, name, flags)
	}); err != nil {
		return err
	}
	in.fs.mu.Lock()
	delete(in.children, name)
	in.fs.mu.Unlock()
	return nil
}

// Rename implements vfs.Inode.
func (in *inode) Rename(_ context.Context, oldName string, newDir vfs.Inode, newName string, flags uint32) error {
	nd, ok := newDir.(*inode)
	if !ok || nd.fs != in.fs {
		return unix.EXDEV
	}
	if in.fs.readOnly {
		return unix.EROFS
	}
	if err := in.withDir(oldName, func(ofd int) error {
		return nd.withDir(newName, func(nfd int) error {
			return unix.Renameat2(ofd, oldName, nfd, newName, uint(flags))
		})
	}); err != nil {
		return err
	}
	fs := in.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	moved, replaced := in.children[oldName], nd.children[newName]
	delete(in.children, oldName)
	delete(nd.children, newName)
	if moved != nil {
		moved.parent, moved.name = nd, newName
		nd.setChildLocked(newName, moved)
	}
	if replaced != nil && flags&unix.RENAME_EXCHANGE != 0 {
		replaced.parent, replaced.name = in, oldName
		in.setChildLocked(oldName, replaced)
	}
	return nil
}

func (in *inode) setChildLocked(name string, c *inode) {
	if in.children == nil {
		in.children = make(map[string]*inode)
	}
	in.children[name] = c
}

// Readlink implements vfs.Inode.
func (in *inode) Readlink(context.Context) (string, error) {
	if in.typ != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	var target string
	err := in.withFD(unix.O_PATH, func(fd int) error {
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf)
		target = string(buf[:max(n, 0)])
		return err
	})
	return target, err
}

// Open implements vfs.Inode.
func (in *inode) Open(_ context.Context, flags int) (vfs.FileImpl, error) {
	acc := flags & unix.O_ACCMODE
	write := acc != unix.O_RDONLY || flags&unix.O_TRUNC != 0
	if write && in.fs.readOnly {
		return nil, unix.EROFS
	}
	switch in.typ {
	case unix.S_IFREG:
		host := flags & (unix.O_TRUNC | unix.O_DSYNC | unix.O_SYNC)
		if acc == unix.O_ACCMODE {
			acc = unix.O_RDWR
		}
		fd, err := in.fs.open(in.path(), acc|host)
		if err != nil {
			return nil, err
		}
		return &regFile{fs: in.fs, fd: fd}, nil
	case unix.S_IFDIR:
		fd, err := in.fs.open(in.path(), unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return nil, err
		}
		return &dirFile{fs: in.fs, fd: fd}, nil
	}
	return nil, unix.ENXIO
}
