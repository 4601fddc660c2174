package vfs

import (
	"context"
	"sync"

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
	// treeMu guards Dentry.parent, Dentry.name, Dentry.mounts and the
	// mount table.
	treeMu   sync.Mutex
	mounts   map[mountKey]*Mount
	fss      []FileSystem
	nextDev  uint32
	root     *Mount
	renameMu sync.Mutex // serializes renames (ancestry checks)

	devMu   sync.RWMutex
	devices map[uint64]DeviceOpener

	locks *lock.Table // the sandbox's advisory locks
}

type mountKey struct {
	mnt *Mount
	d   *Dentry
}

// Mount is a file system attached to the namespace.
type Mount struct {
	vfs      *VFS
	fs       FileSystem
	root     *Dentry
	parent   *Mount
	point    *Dentry
	dev      uint64
	readOnly bool
}

// Dentry is a cached name: a node of the namespace tree bound to an
// Inode. Dentries are created by lookups and stay while their name
// exists.
type Dentry struct {
	inode Inode
	typ   uint32 // S_IFMT bits; constant for the inode's lifetime

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
	v.root = v.newMount(fs, root, 0)
	return v, nil
}

func (v *VFS) newMount(fs FileSystem, root *Dentry, flags uint32) *Mount {
	v.nextDev++
	v.fss = append(v.fss, fs)
	return &Mount{vfs: v, fs: fs, root: root, dev: unix.Mkdev(0, v.nextDev), readOnly: flags&MountReadOnly != 0}
}

func newDentry(ctx context.Context, inode Inode, parent *Dentry, name string) (*Dentry, error) {
	st, err := inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	return &Dentry{inode: inode, typ: uint32(st.Mode) & unix.S_IFMT, parent: parent, name: name}, nil
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

// Mount attaches fs at path (flags: MountReadOnly). A mount on top of a
// mount point hides the mount below it. As with Linux bind mounts, a
// file system whose root is a directory mounts on a directory, and one
// whose root is a file (hostfs.NewFile) on a non-directory (ENOTDIR
// otherwise).
func (v *VFS) Mount(ctx *Context, dir *File, path string, fs FileSystem, flags uint32) error {
	if !ctx.Creds.Capable(unix.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	r := v.resolver(ctx, 0)
	vd, err := r.walkAt(dir, path, true)
	if err != nil {
		return err
	}
	root, err := newDentry(ctx, fs.Root(), nil, "")
	if err != nil {
		return err
	}
	if (vd.d.typ == unix.S_IFDIR) != (root.typ == unix.S_IFDIR) {
		return unix.ENOTDIR
	}
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	m := v.newMount(fs, root, flags)
	m.parent, m.point = vd.mnt, vd.d
	v.mounts[mountKey{vd.mnt, vd.d}] = m
	vd.d.mounts++
	return nil
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

func (v *VFS) openDevice(ctx context.Context, typ uint32, rdev uint64, flags int) (FileImpl, error) {
	if typ != unix.S_IFCHR {
		return nil, unix.ENXIO
	}
	v.devMu.RLock()
	open := v.devices[rdev]
	v.devMu.RUnlock()
	if open == nil {
		return nil, unix.ENXIO
	}
	return open(ctx, flags)
}
