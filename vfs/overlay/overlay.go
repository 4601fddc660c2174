// Package overlay stacks a writable upper file system over a read-only
// lower one, as Linux's overlayfs does. The default root of a sandbox is
// a host directory (hostfs, read-only) under a tmpfs: the sandbox can
// change its root without changing the host.
//
// Lookups see the upper layer first; a directory present in both layers
// is merged, and an upper non-directory hides the lower entry. The first
// modification of a lower object copies it up into the upper layer, its
// parent directories first. Removing or renaming away a lower name
// leaves a whiteout, which the overlay keeps in its own bookkeeping:
// nothing in either layer shows it, and a directory made over a whiteout
// is opaque. The lower layer is only ever read.
//
// As on Linux without redirect_dir, renaming a directory that shows
// lower entries fails with EXDEV (mv then copies and deletes). Copy-up
// does not preserve hard links between lower files, and a file opened
// read-only before its copy-up keeps reading the lower data.
package overlay

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// upperInoBit marks the inode numbers of objects that only the upper
// layer has, so that they never collide with lower ones. An object
// keeps its lower inode number across copy-up.
const upperInoBit = 1 << 63

func lowerIno(ino uint64) uint64 {
	return ino &^ upperInoBit
}

func upperIno(ino uint64) uint64 {
	return ino | upperInoBit
}

// FS is an overlay file system.
type FS struct {
	lower, upper vfs.FileSystem

	// mu guards the tree: every inode's layers, parent, name, children
	// and whiteouts, and links.
	mu   sync.Mutex
	root *inode
	// links maps upper non-directories that have several names to their
	// inode, so that every name of a hard link is the same vfs.Inode.
	links map[vfs.Inode]*inode
}

// New stacks upper over lower and takes ownership of both: Release
// releases them. lower is only read; upper must not be used by anything
// else while the overlay lives, and is normally an empty tmpfs. The
// upper root takes the lower root's mode, owner and timestamps, as a
// copy-up would.
func New(ctx context.Context, lower, upper vfs.FileSystem) (*FS, error) {
	lr, ur := lower.Root(), upper.Root()
	lst, err := lr.Stat(ctx)
	if err != nil {
		return nil, err
	}
	ust, err := ur.Stat(ctx)
	if err != nil {
		return nil, err
	}
	if lst.Mode&unix.S_IFMT != unix.S_IFDIR || ust.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	set := attrs(&lst)
	set.Mask |= unix.STATX_MODE
	set.Mode = uint32(lst.Mode) & 0o7777
	if err := ur.SetStat(ctx, set); err != nil {
		return nil, err
	}
	fs := &FS{lower: lower, upper: upper, links: make(map[vfs.Inode]*inode)}
	fs.root = &inode{fs: fs, ino: lowerIno(lst.Ino), typ: unix.S_IFDIR, upper: ur, lower: lr}
	return fs, nil
}

// attrs returns the attribute change that gives an object the owner and
// timestamps of st.
func attrs(st *unix.Statx_t) *vfs.SetStat {
	ts := func(t unix.StatxTimestamp) unix.Timespec {
		return unix.Timespec{Sec: t.Sec, Nsec: int64(t.Nsec)}
	}
	return &vfs.SetStat{
		Mask:  unix.STATX_UID | unix.STATX_GID | unix.STATX_ATIME | unix.STATX_MTIME,
		UID:   st.Uid,
		GID:   st.Gid,
		Atime: ts(st.Atime),
		Mtime: ts(st.Mtime),
	}
}

// Root implements vfs.FileSystem.
func (fs *FS) Root() vfs.Inode {
	return fs.root
}

// Statfs implements vfs.FileSystem: the upper layer's space, under
// overlayfs's magic number.
func (fs *FS) Statfs(ctx context.Context) (unix.Statfs_t, error) {
	st, err := fs.upper.Statfs(ctx)
	st.Type = unix.OVERLAYFS_SUPER_MAGIC
	return st, err
}

// Release implements vfs.FileSystem: it releases both layers.
func (fs *FS) Release() {
	fs.lower.Release()
	fs.upper.Release()
}

// inode is an object of the merged tree. It stays the same vfs.Inode
// when the object is copied up.
type inode struct {
	fs  *FS
	ino uint64
	typ uint32 // S_IFMT bits

	// copyMu serializes the copy-up of the object.
	copyMu sync.Mutex

	// Guarded by fs.mu.
	//
	// upper is nil until the object is copied up. lower is the lower
	// object while it shows: a directory keeps it once copied up (it is
	// merged) unless it is opaque; other objects drop it.
	upper, lower vfs.Inode
	// parent and name locate a lower object for its copy-up; parent is
	// nil for the root and for removed objects.
	parent   *inode
	name     string
	children map[string]*inode
	// whiteouts are the names of lower entries that no longer show.
	whiteouts map[string]bool
}

func (in *inode) layers() (upper, lower vfs.Inode) {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	return in.upper, in.lower
}

// layer returns the object that holds the attributes and data: the upper
// one once copied up.
func (in *inode) layer() vfs.Inode {
	upper, lower := in.layers()
	if upper != nil {
		return upper
	}
	return lower
}

// Stat implements vfs.Inode. A merged directory has one link, as on
// Linux: counting the subdirectories of both layers is not worth it, and
// find(1) takes 1 as "unknown".
func (in *inode) Stat(ctx context.Context) (unix.Statx_t, error) {
	upper, lower := in.layers()
	layer := upper
	if layer == nil {
		layer = lower
	}
	st, err := layer.Stat(ctx)
	if err != nil {
		return st, err
	}
	st.Ino = in.ino
	if in.typ == unix.S_IFDIR && upper != nil && lower != nil {
		st.Nlink = 1
	}
	return st, nil
}

// SetStat implements vfs.Inode: the object is copied up first, only up
// to the new size for a truncation.
func (in *inode) SetStat(ctx context.Context, s *vfs.SetStat) error {
	limit := int64(-1)
	if s.Mask&unix.STATX_SIZE != 0 {
		switch {
		case in.typ != unix.S_IFREG:
			return unix.EINVAL
		case s.Size > 1<<63-1:
			return unix.EFBIG
		}
		limit = int64(s.Size)
	}
	if err := in.copyUp(ctx, limit); err != nil {
		return err
	}
	upper, _ := in.layers()
	return upper.SetStat(ctx, s)
}

// Readlink implements vfs.Inode.
func (in *inode) Readlink(ctx context.Context) (string, error) {
	return in.layer().Readlink(ctx)
}

// Open implements vfs.Inode. Opening a regular file for writing or with
// O_TRUNC copies it up (without data for O_TRUNC); a FIFO is copied up so
// that it works inside the sandbox.
func (in *inode) Open(ctx context.Context, flags int) (vfs.FileImpl, error) {
	switch in.typ {
	case unix.S_IFDIR:
		return &dirFile{in: in}, nil
	case unix.S_IFREG:
		if flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0 {
			limit := int64(-1)
			if flags&unix.O_TRUNC != 0 {
				limit = 0
			}
			if err := in.copyUp(ctx, limit); err != nil {
				return nil, err
			}
		}
	case unix.S_IFIFO:
		if err := in.copyUp(ctx, -1); err != nil {
			return nil, err
		}
	}
	return in.layer().Open(ctx, flags)
}
