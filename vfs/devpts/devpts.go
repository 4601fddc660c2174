// Package devpts implements pseudo-terminals: the devpts file system
// mounted at /dev/pts, /dev/ptmx and /dev/pts/ptmx, which open a new
// master, and the slaves /dev/pts/N, joined by a line discipline written
// here (canonical line editing, echo, signal characters, output
// processing). Job control (controlling terminals, sessions, process
// groups) is the kernel's, reached through Sessions.
package devpts

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// Device numbers: /dev/ptmx is 5:2; slaves are 136:N, the next majors up
// to 143 holding N >= 256, as on Linux.
const (
	PTMXMajor      = 5
	PTMXMinor      = 2
	SlaveMajor     = 136
	slaveMajorLast = 143
)

// MaxPTYs is /proc/sys/kernel/pty/max's default: how many ptys may be
// open at once.
const MaxPTYs = 4096

// ttyGID owns the slaves, as devpts mounted with gid=5,mode=620 (the
// usual mount) gives them.
const ttyGID = 5

// Inode numbers: the root is 1, ptmx 2, slave N is N+3, as on Linux.
const (
	rootIno = 1
	ptmxIno = 2
)

// Sessions is how terminals reach the kernel's sessions and process
// groups.
type Sessions interface {
	// SignalGroup sends sig, from the kernel, to the processes of
	// group pgid.
	SignalGroup(pgid int32, sig unix.Signal)
	// Acquire is told that the caller of ctx opened t's slave without
	// O_NOCTTY: a session leader without a controlling terminal gets
	// t as its own, if t controls no session.
	Acquire(ctx context.Context, t *Terminal)
	// JobControl checks that the caller of ctx may read (SIGTTIN) or
	// write with TOSTOP (SIGTTOU) t: a background process group of the
	// session t controls gets sig and the call fails, as on Linux.
	JobControl(ctx context.Context, t *Terminal, sig unix.Signal) error
	// Hangup is told that t, the controlling terminal of session sid,
	// hung up (its master closed): the session's processes lose it and
	// the session leader gets SIGHUP and SIGCONT.
	Hangup(t *Terminal, sid int32)
}

// FS is the devpts file system of a sandbox: its ptys and the directory
// that names them.
type FS struct {
	sessions Sessions
	born     unix.StatxTimestamp

	mu sync.Mutex
	// ptys holds every pty until both sides have closed, keeping its
	// number taken; named holds those whose master is open, which
	// /dev/pts lists.
	ptys  map[uint32]*Terminal
	named map[uint32]*Terminal
	// attrs holds the permission bits and owners of the named slaves,
	// which chmod and chown change.
	attrs map[uint32]*slaveAttrs
}

type slaveAttrs struct {
	mode     uint32
	uid, gid uint32
	ctime    unix.StatxTimestamp
}

var _ vfs.FileSystem = (*FS)(nil)

// New makes the devpts file system and registers its devices, /dev/ptmx
// and the slaves, in v.
func New(v *vfs.VFS, s Sessions) *FS {
	fs := &FS{
		sessions: s, born: now(),
		ptys: map[uint32]*Terminal{}, named: map[uint32]*Terminal{}, attrs: map[uint32]*slaveAttrs{},
	}
	v.RegisterCharDevice(PTMXMajor, PTMXMinor, fs.openMaster)
	for major := uint32(SlaveMajor); major <= slaveMajorLast; major++ {
		v.RegisterCharMajor(major, func(ctx context.Context, minor uint32, flags int) (vfs.FileImpl, error) {
			return fs.openSlave(ctx, (major-SlaveMajor)*256+minor, flags)
		})
	}
	return fs
}

func now() unix.StatxTimestamp {
	t := time.Now()
	return unix.StatxTimestamp{Sec: t.Unix(), Nsec: uint32(t.Nanosecond())}
}

// Root implements vfs.FileSystem.
func (fs *FS) Root() vfs.Inode { return &node{fs: fs, kind: rootIno} }

// Statfs implements vfs.FileSystem.
func (fs *FS) Statfs(context.Context) (unix.Statfs_t, error) {
	return unix.Statfs_t{Type: unix.DEVPTS_SUPER_MAGIC, Bsize: 4096, Frsize: 4096, Namelen: unix.NAME_MAX}, nil
}

// Release implements vfs.FileSystem.
func (fs *FS) Release() {}

// openMaster opens /dev/ptmx: a new pty with the lowest free number,
// locked, named /dev/pts/N and owned by the caller. ENOSPC when MaxPTYs
// are open.
func (fs *FS) openMaster(ctx context.Context, flags int) (vfs.FileImpl, error) {
	uid, gid := uint32(0), uint32(ttyGID)
	if vc, ok := ctx.(*vfs.Context); ok && vc.Creds != nil {
		uid = vc.Creds.UID
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var index uint32
	for ; index < MaxPTYs; index++ {
		if fs.ptys[index] == nil {
			break
		}
	}
	if index == MaxPTYs {
		return nil, unix.ENOSPC
	}
	t := &Terminal{fs: fs, index: index, born: now(), ld: newDiscipline(), locked: true, changed: make(chan struct{})}
	fs.ptys[index] = t
	fs.named[index] = t
	fs.attrs[index] = &slaveAttrs{mode: 0o620, uid: uid, gid: gid, ctime: t.born}
	return &Master{t: t}, nil
}

// openSlave opens /dev/pts/N: EIO while it is locked or once its master
// has closed, ENXIO when there is no such pty.
func (fs *FS) openSlave(ctx context.Context, index uint32, flags int) (vfs.FileImpl, error) {
	fs.mu.Lock()
	t := fs.ptys[index]
	fs.mu.Unlock()
	if t == nil {
		return nil, unix.ENXIO
	}
	return t.OpenSlave(ctx, flags)
}

// OpenSlave opens the slave side of t (an open of /dev/pts/N,
// TIOCGPTPEER, /dev/tty of a process it controls). Without O_NOCTTY it
// may become the caller's controlling terminal.
func (t *Terminal) OpenSlave(ctx context.Context, flags int) (*Slave, error) {
	t.mu.Lock()
	if t.locked || t.hungUp {
		t.mu.Unlock()
		return nil, unix.EIO
	}
	t.slaves++
	t.otherClosed = false
	t.changedLocked()
	t.mu.Unlock()
	if flags&unix.O_NOCTTY == 0 {
		t.fs.sessions.Acquire(ctx, t)
	}
	return &Slave{t: t}, nil
}

// removeName takes /dev/pts/N away when t's master closes.
func (fs *FS) removeName(t *Terminal) {
	fs.mu.Lock()
	delete(fs.named, t.index)
	delete(fs.attrs, t.index)
	fs.mu.Unlock()
}

// releaseIfUnused frees t's number once both sides have closed.
func (fs *FS) releaseIfUnused(t *Terminal) {
	t.mu.Lock()
	unused := t.hungUp && t.slaves == 0
	t.mu.Unlock()
	if !unused {
		return
	}
	fs.mu.Lock()
	if fs.ptys[t.index] == t {
		delete(fs.ptys, t.index)
	}
	fs.mu.Unlock()
}

// slaveStat describes /dev/pts/N.
func (fs *FS) slaveStat(t *Terminal) unix.Statx_t {
	fs.mu.Lock()
	a := fs.attrs[t.index]
	fs.mu.Unlock()
	st := unix.Statx_t{
		Mask: unix.STATX_BASIC_STATS, Mode: unix.S_IFCHR | 0o620, Nlink: 1, Blksize: 1024,
		Uid: 0, Gid: ttyGID, Ino: uint64(t.index) + 3,
		Rdev_major: unix.Major(t.Rdev()), Rdev_minor: unix.Minor(t.Rdev()),
		Atime: t.born, Mtime: t.born, Ctime: t.born, Btime: t.born,
	}
	if a != nil {
		st.Mode = uint16(unix.S_IFCHR | a.mode)
		st.Uid, st.Gid, st.Ctime = a.uid, a.gid, a.ctime
	}
	return st
}

// node is an inode of devpts: the root, ptmx, or a slave (kind = N+3).
type node struct {
	fs   *FS
	kind uint64
}

func (n *node) slaveIndex() (uint32, bool) {
	if n.kind <= ptmxIno {
		return 0, false
	}
	return uint32(n.kind - 3), true
}

// terminal returns the named pty of a slave node, ENOENT once its master
// has closed.
func (n *node) terminal() (*Terminal, error) {
	i, _ := n.slaveIndex()
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	if t := n.fs.named[i]; t != nil {
		return t, nil
	}
	return nil, unix.ENOENT
}

// Stale implements vfs.Revalidator: a slave's name goes with its master.
func (n *node) Stale() bool {
	if _, ok := n.slaveIndex(); !ok {
		return false
	}
	_, err := n.terminal()
	return err != nil
}

// Stat implements vfs.Inode.
func (n *node) Stat(context.Context) (unix.Statx_t, error) {
	fs := n.fs
	base := unix.Statx_t{
		Mask: unix.STATX_BASIC_STATS, Nlink: 1, Blksize: 1024, Ino: n.kind,
		Atime: fs.born, Mtime: fs.born, Ctime: fs.born, Btime: fs.born,
	}
	switch n.kind {
	case rootIno:
		base.Mode, base.Nlink = unix.S_IFDIR|0o755, 2
		return base, nil
	case ptmxIno:
		base.Mode = unix.S_IFCHR | 0o666
		base.Rdev_major, base.Rdev_minor = PTMXMajor, PTMXMinor
		return base, nil
	}
	t, err := n.terminal()
	if err != nil {
		return unix.Statx_t{}, err
	}
	return fs.slaveStat(t), nil
}

// SetStat implements vfs.Inode: the slaves' mode and owners change
// (grantpt of old C libraries chowns them); the rest refuses.
func (n *node) SetStat(_ context.Context, s *vfs.SetStat) error {
	i, ok := n.slaveIndex()
	if !ok {
		return unix.EPERM
	}
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	a := n.fs.attrs[i]
	if a == nil {
		return unix.ENOENT
	}
	if s.Mask&unix.STATX_MODE != 0 {
		a.mode = s.Mode & 0o7777
	}
	if s.Mask&unix.STATX_UID != 0 {
		a.uid = s.UID
	}
	if s.Mask&unix.STATX_GID != 0 {
		a.gid = s.GID
	}
	a.ctime = now()
	return nil
}

// Lookup implements vfs.Inode.
func (n *node) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	if n.kind != rootIno {
		return nil, unix.ENOTDIR
	}
	if name == "ptmx" {
		return &node{fs: n.fs, kind: ptmxIno}, nil
	}
	i, err := strconv.ParseUint(name, 10, 32)
	if err != nil || strconv.FormatUint(i, 10) != name {
		return nil, unix.ENOENT
	}
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	if n.fs.named[uint32(i)] == nil {
		return nil, unix.ENOENT
	}
	return &node{fs: n.fs, kind: i + 3}, nil
}

// Create implements vfs.Inode: devpts makes no files on request.
func (n *node) Create(context.Context, string, *vfs.CreateOptions) (vfs.Inode, error) {
	if n.kind != rootIno {
		return nil, unix.ENOTDIR
	}
	return nil, unix.EPERM
}

// Link implements vfs.Inode.
func (n *node) Link(context.Context, string, vfs.Inode) error { return unix.EPERM }

// Unlink implements vfs.Inode.
func (n *node) Unlink(context.Context, string, bool) error { return unix.EPERM }

// Rename implements vfs.Inode.
func (n *node) Rename(context.Context, string, vfs.Inode, string, uint32) error {
	return unix.EPERM
}

// Readlink implements vfs.Inode.
func (n *node) Readlink(context.Context) (string, error) { return "", unix.EINVAL }

// Open implements vfs.Inode: only the directory opens here; the device
// nodes open through the VFS's device registry.
func (n *node) Open(context.Context, int) (vfs.FileImpl, error) {
	if n.kind != rootIno {
		return nil, unix.ENXIO
	}
	return &dirFile{fs: n.fs}, nil
}

// dirFile is an open /dev/pts.
type dirFile struct {
	vfs.DirFileBase
	fs *FS
}

// ReadDir implements vfs.DirReader: ptmx, then the slaves in order; the
// offset of slave N is N+3.
func (d *dirFile) ReadDir(_ context.Context, off int64, emit func(vfs.Dirent) bool) error {
	if off <= 2 && !emit(vfs.Dirent{Name: "ptmx", Ino: ptmxIno, Type: unix.DT_CHR, Next: 3}) {
		return nil
	}
	d.fs.mu.Lock()
	ids := make([]uint32, 0, len(d.fs.named))
	for i := range d.fs.named {
		ids = append(ids, i)
	}
	d.fs.mu.Unlock()
	slices.Sort(ids)
	for _, i := range ids {
		pos := int64(i) + 3
		if pos < off {
			continue
		}
		if !emit(vfs.Dirent{Name: strconv.FormatUint(uint64(i), 10), Ino: uint64(pos), Type: unix.DT_CHR, Next: pos + 1}) {
			return nil
		}
	}
	return nil
}
