package vfs

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs/lock"
)

const pageSize = 4096

// MountReadOnly makes a mount read-only (MS_RDONLY): modifications fail
// with EROFS.
const MountReadOnly = unix.MS_RDONLY

// VFS is a mount table over file systems: the file namespace of one
// sandbox.
type VFS struct {
	// treeMu guards Dentry.parent, Dentry.name, Dentry.mounts, Mount.parent,
	// Mount.point and Mount.children, and the mount table.
	treeMu   sync.Mutex
	mounts   map[mountKey]*Mount
	fss      []FileSystem
	nextDev  uint32
	nextID   int
	root     *Mount
	renameMu sync.Mutex // serializes renames (ancestry checks)

	devMu   sync.RWMutex
	devices map[uint64]DeviceOpener
	majors  map[uint32]MajorOpener

	locks *lock.Table // the sandbox's advisory locks

	// watches are the inotify and dnotify watches, by inode (see
	// notify.go); watchCount lets changes skip them when there are none.
	watchMu    sync.Mutex
	watches    map[watchKey][]*Watch
	watchCount atomic.Int32
	cookies    atomic.Uint32
}

type mountKey struct {
	mnt *Mount
	d   *Dentry
}

// Mount is a file system, or a directory of one (a bind mount),
// attached to the namespace.
type Mount struct {
	vfs      *VFS
	id       int
	fs       FileSystem
	root     *Dentry
	parent   *Mount // nil for the namespace's root and detached mounts
	point    *Dentry
	children []*Mount // the mounts attached on this one, in mount order
	dev      uint64
	readOnly atomic.Bool
	// source and flags are what /proc/mounts shows (MountInfo).
	source string
	flags  uint32
}

// Dentry is a cached name: a node of the namespace tree bound to an
// Inode. Dentries are created by lookups and stay while their name
// exists.
type Dentry struct {
	inode Inode
	typ   uint32 // S_IFMT bits; constant for the inode's lifetime
	// key identifies the inode for watches: hard links share it.
	key watchKey
	// writes counts the changes made to a regular file's contents
	// through this name (see File.Writes).
	writes atomic.Uint64
	// shared holds the pages that MAP_SHARED mappings of the file map,
	// while there are any (see File.SetSharedPages).
	shared atomic.Pointer[sharedPagesBox]
	// opens counts the files open at this name; unlinked says the name
	// is gone, lastLink that it was the inode's last; deleteNotified
	// that IN_DELETE_SELF was reported (see notify.go).
	opens          atomic.Int32
	unlinked       atomic.Bool
	lastLink       atomic.Bool
	deleteNotified atomic.Bool

	// mu serializes lookups and modifications in this directory and
	// guards children.
	mu       sync.Mutex
	children map[string]*Dentry
	dead     bool

	// Guarded by VFS.treeMu.
	parent *Dentry
	name   string
	mounts int
}

// VirtualDentry is a location in the namespace: a dentry as seen through
// a mount. The zero value is invalid. Task roots and working directories
// are VirtualDentries.
type VirtualDentry struct {
	mnt *Mount
	d   *Dentry
}

// Valid reports whether vd refers to a location.
func (vd VirtualDentry) Valid() bool {
	return vd.d != nil
}

func (vd VirtualDentry) stat(ctx context.Context) (unix.Statx_t, error) {
	st, err := vd.d.inode.Stat(ctx)
	if err != nil {
		return st, err
	}
	st.Dev_major = unix.Major(vd.mnt.dev)
	st.Dev_minor = unix.Minor(vd.mnt.dev)
	if vd.d == vd.mnt.root {
		st.Attributes |= unix.STATX_ATTR_MOUNT_ROOT
	}
	st.Attributes_mask |= unix.STATX_ATTR_MOUNT_ROOT
	return st, nil
}

// New makes a VFS whose root is the root of fs.
func New(ctx context.Context, fs FileSystem) (*VFS, error) {
	v := &VFS{mounts: make(map[mountKey]*Mount), devices: make(map[uint64]DeviceOpener), locks: lock.NewTable()}
	root, err := newDentry(ctx, fs.Root(), nil, "")
	if err != nil {
		return nil, err
	}
	v.root = v.newMount(fs, root, 0, true)
	return v, nil
}

// newMount makes a mount of a new file system, which Release releases
// when owned.
func (v *VFS) newMount(fs FileSystem, root *Dentry, flags uint32, owned bool) *Mount {
	v.nextDev++
	if owned {
		v.fss = append(v.fss, fs)
	}
	return v.mountOf(fs, root, unix.Mkdev(0, v.nextDev), flags)
}

// mountOf makes a mount of root, a directory of fs (whose device is dev).
func (v *VFS) mountOf(fs FileSystem, root *Dentry, dev uint64, flags uint32) *Mount {
	v.nextID++
	m := &Mount{vfs: v, id: v.nextID, fs: fs, root: root, dev: dev}
	m.readOnly.Store(flags&MountReadOnly != 0)
	return m
}

func newDentry(ctx context.Context, inode Inode, parent *Dentry, name string) (*Dentry, error) {
	st, err := inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	d := &Dentry{inode: inode, typ: uint32(st.Mode) & unix.S_IFMT, parent: parent, name: name}
	d.key = watchKey{fsRoot: d, dev: unix.Mkdev(st.Dev_major, st.Dev_minor), ino: st.Ino}
	if parent != nil {
		d.key.fsRoot = parent.key.fsRoot
	}
	return d, nil
}

// Root returns the root of the namespace, for the first task's root and
// working directory.
func (v *VFS) Root() VirtualDentry {
	return VirtualDentry{mnt: v.root, d: v.root.root}
}

// Release releases every mounted file system when the sandbox goes away.
// Files still open keep their own resources until their last DecRef.
func (v *VFS) Release() {
	v.treeMu.Lock()
	fss := v.fss
	v.fss = nil
	v.treeMu.Unlock()
	for _, fs := range fss {
		fs.Release()
	}
}

// mountedHere returns the mount attached at vd, if any.
func (v *VFS) mountedHere(vd VirtualDentry) *Mount {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	return v.mounts[mountKey{vd.mnt, vd.d}]
}

func (v *VFS) isMountPoint(d *Dentry) bool {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	return d.mounts > 0
}

// DeviceOpener opens a character device for the given open flags.
type DeviceOpener func(ctx context.Context, flags int) (FileImpl, error)

// RegisterCharDevice makes device nodes with the given major and minor
// numbers, on any file system, open through open. A later registration
// replaces an earlier one (the kernel uses this to plug /dev/tty in).
func (v *VFS) RegisterCharDevice(major, minor uint32, open DeviceOpener) {
	v.devMu.Lock()
	defer v.devMu.Unlock()
	v.devices[unix.Mkdev(major, minor)] = open
}

// MajorOpener opens the character device of a major number registered
// whole with the given minor number and open flags.
type MajorOpener func(ctx context.Context, minor uint32, flags int) (FileImpl, error)

// RegisterCharMajor makes the device nodes of every minor number of
// major open through open (the pseudo-terminal slaves, numbered as they
// come); a device registered with RegisterCharDevice goes first.
func (v *VFS) RegisterCharMajor(major uint32, open MajorOpener) {
	v.devMu.Lock()
	defer v.devMu.Unlock()
	if v.majors == nil {
		v.majors = make(map[uint32]MajorOpener)
	}
	v.majors[major] = open
}

func (v *VFS) openDevice(ctx context.Context, typ uint32, rdev uint64, flags int) (FileImpl, error) {
	if typ != unix.S_IFCHR {
		return nil, unix.ENXIO
	}
	v.devMu.RLock()
	open := v.devices[rdev]
	openMajor := v.majors[unix.Major(rdev)]
	v.devMu.RUnlock()
	switch {
	case open != nil:
		return open(ctx, flags)
	case openMajor != nil:
		return openMajor(ctx, unix.Minor(rdev), flags)
	}
	return nil, unix.ENXIO
}
