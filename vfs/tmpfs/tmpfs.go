// Package tmpfs is an in-memory file system: regular files (sparse),
// directories, symbolic links, hard links, FIFOs, sockets and device
// nodes.
package tmpfs

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

const blockSize = 4096

// maxLinks is the most hard links an inode may have (EMLINK).
const maxLinks = math.MaxUint32 - 1

// Options configure a tmpfs instance.
type Options struct {
	// MaxBytes bounds the file data held (ENOSPC beyond); 0 is unlimited.
	MaxBytes int64
	// Mode, UID and GID describe the root directory (Mode 0 means 01777).
	Mode     uint32
	UID, GID uint32
}

// FS is a tmpfs instance.
type FS struct {
	// mu guards the namespace: every directory's entries.
	mu      sync.Mutex
	max     int64
	used    atomic.Int64 // bytes of file data, in blocks
	nextIno atomic.Uint64
	inodes  atomic.Int64
	root    *inode
}

// New returns an empty tmpfs.
func New(opts Options) *FS {
	fs := &FS{max: opts.MaxBytes}
	mode := opts.Mode & 0o7777
	if mode == 0 {
		mode = 0o1777
	}
	fs.root = fs.newInode(&vfs.CreateOptions{Mode: unix.S_IFDIR | mode, UID: opts.UID, GID: opts.GID})
	fs.root.nlink = 2
	return fs
}

// Root implements vfs.FileSystem.
func (fs *FS) Root() vfs.Inode {
	return fs.root
}

// Release implements vfs.FileSystem.
func (fs *FS) Release() {}

// Statfs implements vfs.FileSystem.
func (fs *FS) Statfs(context.Context) (unix.Statfs_t, error) {
	total := uint64(math.MaxInt64 / blockSize)
	if fs.max > 0 {
		total = uint64(fs.max / blockSize)
	}
	used := uint64(fs.used.Load() / blockSize)
	free := total - min(used, total)
	return unix.Statfs_t{
		Type:    unix.TMPFS_MAGIC,
		Bsize:   blockSize,
		Frsize:  blockSize,
		Blocks:  total,
		Bfree:   free,
		Bavail:  free,
		Files:   math.MaxUint32,
		Ffree:   math.MaxUint32 - uint64(fs.inodes.Load()),
		Namelen: unix.NAME_MAX,
	}, nil
}

// reserve accounts for delta bytes of data (negative frees).
func (fs *FS) reserve(delta int64) error {
	if n := fs.used.Add(delta); delta > 0 && fs.max > 0 && n > fs.max {
		fs.used.Add(-delta)
		return unix.ENOSPC
	}
	return nil
}

func now() unix.Timespec {
	return unix.NsecToTimespec(time.Now().UnixNano())
}

// inode is a tmpfs object.
type inode struct {
	fs  *FS
	ino uint64

	// mu guards the attributes and a regular file's data.
	mu                         sync.Mutex
	mode                       uint32
	uid, gid                   uint32
	nlink                      uint32
	rdev                       uint64
	atime, mtime, ctime, btime unix.Timespec
	data                       fileData
	// opens counts a regular file's open files: its data outlives its
	// last link until the last of them is released.
	opens int
	// seals are a regular file's F_SEAL_* flags; memfd says it was made
	// by memfd_create, under memfdName.
	seals     uint32
	memfd     bool
	memfdName string

	// Directories, guarded by fs.mu.
	entries    map[string]*dirent
	order      *btree.BTreeG[*dirent]
	nextCookie int64

	target string     // symbolic links
	pipe   *pipe.Pipe // FIFOs
}

// dirent is a directory entry; cookie is its stable getdents offset.
type dirent struct {
	name   string
	inode  *inode
	cookie int64
}

func (fs *FS) newInode(opts *vfs.CreateOptions) *inode {
	t := now()
	in := &inode{
		fs: fs, ino: fs.nextIno.Add(1),
		mode: opts.Mode, uid: opts.UID, gid: opts.GID, nlink: 1, rdev: opts.Rdev,
		atime: t, mtime: t, ctime: t, btime: t,
		seals: unix.F_SEAL_SEAL, // as Linux's shmem files: never sealable
	}
	switch opts.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		in.entries = make(map[string]*dirent)
		in.order = btree.NewG(16, func(a, b *dirent) bool { return a.cookie < b.cookie })
		in.nextCookie = 2
		in.nlink = 2
	case unix.S_IFLNK:
		in.target = opts.Target
	case unix.S_IFIFO:
		in.pipe = pipe.NewFIFO()
	}
	fs.inodes.Add(1)
	return in
}

func (in *inode) typ() uint32 {
	return in.mode & unix.S_IFMT
}

// Stat implements vfs.Inode.
func (in *inode) Stat(context.Context) (unix.Statx_t, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	size := in.data.size
	switch in.typ() {
	case unix.S_IFLNK:
		size = int64(len(in.target))
	case unix.S_IFDIR:
		size = blockSize
	}
	ts := func(t unix.Timespec) unix.StatxTimestamp {
		return unix.StatxTimestamp{Sec: t.Sec, Nsec: uint32(t.Nsec)}
	}
	return unix.Statx_t{
		Mask:       unix.STATX_BASIC_STATS | unix.STATX_BTIME,
		Blksize:    blockSize,
		Nlink:      in.nlink,
		Uid:        in.uid,
		Gid:        in.gid,
		Mode:       uint16(in.mode),
		Ino:        in.ino,
		Size:       uint64(size),
		Blocks:     uint64(in.data.allocated / 512),
		Atime:      ts(in.atime),
		Btime:      ts(in.btime),
		Ctime:      ts(in.ctime),
		Mtime:      ts(in.mtime),
		Rdev_major: unix.Major(in.rdev),
		Rdev_minor: unix.Minor(in.rdev),
	}, nil
}

// SetStat implements vfs.Inode.
func (in *inode) SetStat(_ context.Context, s *vfs.SetStat) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	t := now()
	if s.Mask&unix.STATX_SIZE != 0 {
		if in.typ() != unix.S_IFREG {
			return unix.EINVAL
		}
		if s.Size > math.MaxInt64 {
			return unix.EFBIG
		}
		if err := in.checkResizeLocked(int64(s.Size)); err != nil {
			return err
		}
		in.data.truncate(in.fs, int64(s.Size))
		in.mtime = t
	}
	if s.Mask&unix.STATX_MODE != 0 {
		if in.seals&unix.F_SEAL_EXEC != 0 && (in.mode^s.Mode)&0o111 != 0 {
			return unix.EPERM
		}
		in.mode = in.mode&unix.S_IFMT | s.Mode&0o7777
	}
	if s.Mask&unix.STATX_UID != 0 {
		in.uid = s.UID
	}
	if s.Mask&unix.STATX_GID != 0 {
		in.gid = s.GID
	}
	if s.Mask&unix.STATX_ATIME != 0 {
		in.atime = s.Atime
	}
	if s.Mask&unix.STATX_MTIME != 0 {
		in.mtime = s.Mtime
	}
	in.ctime = t
	return nil
}

// freeIfGoneLocked gives a regular file's space back once it has neither
// a link nor an open file, as Linux frees an inode with its last
// reference. in.mu is held.
func (in *inode) freeIfGoneLocked() {
	if in.nlink == 0 && in.opens == 0 {
		in.data.release(in.fs)
	}
}

// Readlink implements vfs.Inode.
func (in *inode) Readlink(context.Context) (string, error) {
	if in.typ() != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	in.mu.Lock()
	in.atime = now()
	in.mu.Unlock()
	return in.target, nil
}

// Open implements vfs.Inode.
func (in *inode) Open(ctx context.Context, flags int) (vfs.FileImpl, error) {
	switch in.typ() {
	case unix.S_IFREG:
		if flags&unix.O_TRUNC != 0 {
			if err := in.SetStat(ctx, &vfs.SetStat{Mask: unix.STATX_SIZE}); err != nil {
				return nil, err
			}
		}
		in.mu.Lock()
		in.opens++
		in.mu.Unlock()
		return &regFile{in: in}, nil
	case unix.S_IFDIR:
		return &dirFile{in: in}, nil
	case unix.S_IFIFO:
		return in.pipe.Open(ctx, flags)
	}
	return nil, unix.ENXIO
}
