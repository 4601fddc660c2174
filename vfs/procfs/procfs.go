// Package procfs is /proc: the kernel's processes and state rendered
// as Linux 6.x renders them. procfs does not know the kernel; it reads
// everything through a Source that the kernel implements, and learns
// the calling task from the context (WithCaller).
//
// Files are generated when they are opened and read from that
// snapshot. Write behaviour follows Linux: /proc/<pid> files open for
// writing (for uid 0) and fail writes with EINVAL, /proc's own files
// fail them with EIO, read-only /proc/sys files refuse to open for
// writing (EACCES) and writable ones parse and validate what is written
// as Linux's sysctl handlers do, and nothing can be created, removed or
// renamed.
//
// /proc/<pid>/fd/N are "magic" links, as on Linux: following one reaches
// the open file itself (vfs.MagicLink), so that /dev/fd/N opens a pipe
// and a deleted file. Other links such as /proc/<pid>/exe are plain
// symbolic links to the path strings the Source gives.
package procfs

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// blockSize is what Linux's procfs reports as st_blksize.
const blockSize = 1024

// FS is a procfs instance.
type FS struct {
	src  Source
	root *node
}

// New returns a procfs that shows src.
func New(src Source) *FS {
	fs := &FS{src: src}
	fs.root = &node{fs: fs, e: rootEntry(), ino: 1, time: now()}
	return fs
}

// Root implements vfs.FileSystem.
func (fs *FS) Root() vfs.Inode {
	return fs.root
}

// Statfs implements vfs.FileSystem.
func (fs *FS) Statfs(context.Context) (unix.Statfs_t, error) {
	return unix.Statfs_t{Type: unix.PROC_SUPER_MAGIC, Bsize: 4096, Frsize: 4096, Namelen: unix.NAME_MAX}, nil
}

// Release implements vfs.FileSystem.
func (fs *FS) Release() {}

func now() unix.StatxTimestamp {
	t := time.Now()
	return unix.StatxTimestamp{Sec: t.Unix(), Nsec: uint32(t.Nanosecond())}
}

// entry describes a name under /proc: a file, a link or a directory.
// The tree of entries is fixed; nodes instantiate it for a process, a
// thread or a file descriptor.
type entry struct {
	name string
	mode uint32 // type and permission bits

	// sysctl marks the /proc/sys tree, whose files refuse to open for
	// writing and whose attributes cannot change.
	sysctl bool
	// seq marks files with seq_file seeks (SEEK_SET and SEEK_CUR only);
	// the others seek like a file of size 0.
	seq bool
	// writeErr is what writes return, unless write is set: a writable
	// /proc/sys file's handler, given the data and the file offset.
	writeErr unix.Errno
	write    func(c *call, data []byte, off int64) (int, error)

	// read renders a regular file.
	read func(c *call) ([]byte, error)
	// target renders a symbolic link.
	target func(c *call) (string, error)
	// size and perm override st_size (0) and the permission bits.
	size func(c *call) int64
	perm func(c *call) uint32

	// fixed are a directory's named children.
	fixed []*entry
	// ids lists a directory's numbered children (processes, threads or
	// file descriptors), instances of child whose identity is the number.
	ids   func(c *call) []int32
	child *entry
	num   numKind
}

// numKind says what the number of a numbered child is.
type numKind uint8

const (
	numPID numKind = iota + 1
	numTID
	numFD
)

func (e *entry) typ() uint32 {
	return e.mode & unix.S_IFMT
}

// node is an entry instantiated for a process (pid), a thread (tid) and
// a file descriptor (fd, with hasFD). Nodes are what the VFS caches:
// every operation first checks that what the node shows still exists.
type node struct {
	fs    *FS
	e     *entry
	pid   int32 // 0 outside /proc/<pid>
	tid   int32 // 0 outside /proc/<pid>/task/<tid>
	fd    int32
	hasFD bool
	ino   uint64
	time  unix.StatxTimestamp
}

// call is the state one operation on a node works with.
type call struct {
	context.Context
	fs   *FS
	n    *node
	proc Process // nil outside /proc/<pid>
	fd   FD      // the node's file descriptor, when it has one
}

// check checks that n still exists and returns what its operations need.
func (n *node) check(ctx context.Context) (*call, error) {
	c := &call{Context: ctx, fs: n.fs, n: n}
	if n.pid == 0 {
		return c, nil
	}
	p, ok := n.fs.src.Process(n.pid)
	if !ok {
		return nil, unix.ENOENT
	}
	c.proc = p
	if n.tid != 0 && !slices.ContainsFunc(p.Threads(), func(t ThreadInfo) bool { return t.TID == n.tid }) {
		return nil, unix.ENOENT
	}
	if n.hasFD {
		fds := p.FDs()
		i := slices.IndexFunc(fds, func(f FD) bool { return f.Num == n.fd })
		if i < 0 {
			return nil, unix.ENOENT
		}
		c.fd = fds[i]
	}
	return c, nil
}

// childNode instantiates e, a child of n.
func (n *node) childNode(e *entry) *node {
	c := *n
	c.e = e
	c.ino = childIno(n.ino, e.name)
	c.time = now()
	return &c
}

// numbered instantiates n's numbered child id.
func (n *node) numbered(id int32) *node {
	name := strconv.Itoa(int(id))
	c := n.childNode(n.e.child)
	c.ino = childIno(n.ino, name)
	switch n.e.num {
	case numPID:
		c.pid = id
	case numTID:
		c.tid = id
	case numFD:
		c.fd, c.hasFD = id, true
	}
	return c
}

// childIno derives a stable inode number from the parent's and the name.
func childIno(parent uint64, name string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], parent)
	h.Write(b[:])
	h.Write([]byte(name))
	return max(h.Sum64(), 2)
}

// ids returns the sorted numbers of n's numbered children.
func (c *call) ids() []int32 {
	ids := slices.Clone(c.n.e.ids(c))
	slices.Sort(ids)
	return ids
}

// parseID parses a decimal number as Linux's name_to_int does: no sign,
// no leading zeros.
func parseID(name string) (int32, bool) {
	if len(name) > 1 && name[0] == '0' {
		return 0, false
	}
	for _, ch := range []byte(name) {
		if ch < '0' || ch > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(name, 10, 32)
	return int32(id), err == nil
}

// Stat implements vfs.Inode.
func (n *node) Stat(ctx context.Context) (unix.Statx_t, error) {
	c, err := n.check(ctx)
	if err != nil {
		return unix.Statx_t{}, err
	}
	e := n.e
	mode := e.mode
	if e.perm != nil {
		mode = mode&unix.S_IFMT | e.perm(c)
	}
	st := unix.Statx_t{
		Mask:    unix.STATX_BASIC_STATS,
		Blksize: blockSize,
		Nlink:   1,
		Mode:    uint16(mode),
		Ino:     n.ino,
		Atime:   n.time,
		Mtime:   n.time,
		Ctime:   n.time,
	}
	if e.size != nil {
		st.Size = uint64(e.size(c))
	}
	if e.typ() == unix.S_IFDIR && !e.sysctl {
		st.Nlink = 2
		for _, ch := range e.fixed {
			if ch.typ() == unix.S_IFDIR {
				st.Nlink++
			}
		}
		if e.ids != nil && e.child.typ() == unix.S_IFDIR {
			st.Nlink += uint32(len(e.ids(c)))
		}
	}
	if c.proc != nil {
		info := c.proc.Info()
		st.Uid, st.Gid = info.UID.Effective, info.GID.Effective
	}
	return st, nil
}

// SetStat implements vfs.Inode. As on Linux, /proc/<pid> entries refuse
// mode changes and take ownership changes without effect (their owner
// is the process's), and /proc/sys entries refuse both; /proc's own
// entries, which Linux lets change, refuse both too. Truncation and
// time changes are accepted and have no effect.
func (n *node) SetStat(ctx context.Context, s *vfs.SetStat) error {
	if _, err := n.check(ctx); err != nil {
		return err
	}
	refused := uint32(unix.STATX_MODE)
	if n.pid == 0 {
		refused |= unix.STATX_UID | unix.STATX_GID
	}
	if s.Mask&refused != 0 {
		return unix.EPERM
	}
	return nil
}

// Lookup implements vfs.Inode.
func (n *node) Lookup(ctx context.Context, name string) (vfs.Inode, error) {
	if n.e.typ() != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	c, err := n.check(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range n.e.fixed {
		if e.name == name {
			return n.childNode(e), nil
		}
	}
	if n.e.ids != nil {
		if id, ok := parseID(name); ok && slices.Contains(n.e.ids(c), id) {
			return n.numbered(id), nil
		}
	}
	return nil, unix.ENOENT
}

// Create implements vfs.Inode: procfs directories have no negative
// entries, so Linux fails the lookup that precedes creation.
func (n *node) Create(context.Context, string, *vfs.CreateOptions) (vfs.Inode, error) {
	return nil, unix.ENOENT
}

// Link implements vfs.Inode, failing as Create does.
func (n *node) Link(context.Context, string, vfs.Inode) error {
	return unix.ENOENT
}

// Unlink implements vfs.Inode: EPERM as for any directory without an
// unlink operation, EACCES under /proc/sys, whose directories refuse
// writes even to uid 0.
func (n *node) Unlink(context.Context, string, bool) error {
	if n.e.sysctl {
		return unix.EACCES
	}
	return unix.EPERM
}

// Rename implements vfs.Inode: ENOENT when the new name does not exist
// (its lookup fails), EPERM when it does.
func (n *node) Rename(ctx context.Context, _ string, newDir vfs.Inode, newName string, _ uint32) error {
	if n.e.sysctl {
		return unix.EACCES
	}
	if _, err := newDir.Lookup(ctx, newName); err != nil {
		return err
	}
	return unix.EPERM
}

// Readlink implements vfs.Inode.
func (n *node) Readlink(ctx context.Context) (string, error) {
	if n.e.typ() != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	c, err := n.check(ctx)
	if err != nil {
		return "", err
	}
	return n.e.target(c)
}

// LinkedFile implements vfs.MagicLink: an fd link leads to its file, for
// a caller who may inspect the process (EACCES otherwise, as Linux).
func (n *node) LinkedFile(ctx context.Context) (*vfs.File, error) {
	if !n.hasFD || n.e.typ() != unix.S_IFLNK {
		return nil, nil
	}
	c, err := n.check(ctx)
	if err != nil {
		return nil, err
	}
	if !c.permitted(c.proc.Info()) {
		return nil, unix.EACCES
	}
	if c.fd.File == nil {
		return nil, nil
	}
	return c.fd.File, nil
}

// Open implements vfs.Inode.
func (n *node) Open(ctx context.Context, flags int) (vfs.FileImpl, error) {
	c, err := n.check(ctx)
	if err != nil {
		return nil, err
	}
	switch n.e.typ() {
	case unix.S_IFDIR:
		return &dirFile{n: n}, nil
	case unix.S_IFREG:
	default:
		return nil, unix.ENXIO
	}
	acc := flags & unix.O_ACCMODE
	if n.e.sysctl && acc != unix.O_RDONLY && n.e.mode&0o200 == 0 {
		return nil, unix.EACCES
	}
	f := &file{n: n}
	if acc != unix.O_WRONLY {
		if f.data, err = n.e.read(c); err != nil {
			return nil, err
		}
	}
	return f, nil
}
