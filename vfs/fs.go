// Package vfs is kvmbox's virtual file system: the mount table, path
// resolution, the dentry cache, permission checks and open file
// descriptions (*File). File systems live in sub-packages (tmpfs, hostfs,
// overlay, devfs) and plug in through the FileSystem and Inode interfaces;
// special files (pipes, the sandbox's stdio, sockets) plug in through
// FileImpl.
//
// Errors are unix.Errno values, the errno Linux returns for the same
// operation.
package vfs

import (
	"context"

	"golang.org/x/sys/unix"
)

// FileSystem is a file system instance that can be mounted.
type FileSystem interface {
	// Root returns the root directory of the file system.
	Root() Inode
	// Statfs describes the file system for statfs(2).
	Statfs(ctx context.Context) (unix.Statfs_t, error)
	// Release frees the file system's resources (host file descriptors).
	// It is called once, by VFS.Release.
	Release()
}

// CreateOptions describe a new file system object.
type CreateOptions struct {
	// Mode is the file type (unix.S_IF*) and the permission bits, with the
	// umask already applied.
	Mode uint32
	// UID and GID own the new object.
	UID, GID uint32
	// Rdev is the device number of character and block devices.
	Rdev uint64
	// Target is the content of a new symbolic link.
	Target string
}

// SetStat describes an attribute change. Mask selects the fields that
// apply, from unix.STATX_MODE, STATX_UID, STATX_GID, STATX_SIZE,
// STATX_ATIME and STATX_MTIME. Timestamps are absolute (the VFS resolves
// UTIME_NOW). Every change also updates the inode's ctime.
type SetStat struct {
	Mask         uint32
	Mode         uint32 // permission bits only (07777)
	UID, GID     uint32
	Size         uint64
	Atime, Mtime unix.Timespec
}

// Revalidator is implemented by inodes whose name can go away without an
// unlink through the VFS (a pty's /dev/pts/N goes when its master
// closes): a cached name whose inode is Stale is looked up anew.
type Revalidator interface {
	Stale() bool
}

// Inode is a file system object; implementations must be comparable
// (pointer types), as the VFS compares Inodes. The VFS checks permissions, read-only
// mounts, and the name rules (NAME_MAX, ".", "..") before it calls an
// Inode; the Inode checks the rules that depend on its own state (EEXIST,
// ENOENT, ENOTEMPTY, ENOSPC, EXDEV between file systems). Directory
// methods return unix.ENOTDIR on other inodes.
type Inode interface {
	// Stat returns the inode's attributes. Dev_major/Dev_minor are filled
	// in by the VFS.
	Stat(ctx context.Context) (unix.Statx_t, error)
	// SetStat changes attributes.
	SetStat(ctx context.Context, s *SetStat) error
	// Lookup returns the child called name.
	Lookup(ctx context.Context, name string) (Inode, error)
	// Create makes a new child: a regular file, directory, symbolic link,
	// FIFO, socket or device node, depending on opts.Mode.
	Create(ctx context.Context, name string, opts *CreateOptions) (Inode, error)
	// Link makes name a new hard link to target.
	Link(ctx context.Context, name string, target Inode) error
	// Unlink removes the child called name; dir selects rmdir semantics.
	Unlink(ctx context.Context, name string, dir bool) error
	// Rename moves oldName in this directory to newName in newDir, with
	// renameat2 flags (unix.RENAME_NOREPLACE, unix.RENAME_EXCHANGE).
	Rename(ctx context.Context, oldName string, newDir Inode, newName string, flags uint32) error
	// Readlink returns a symbolic link's target (EINVAL on other inodes).
	Readlink(ctx context.Context) (string, error)
	// Open opens the inode with the given open(2) flags. O_TRUNC has been
	// checked by the VFS and must be applied here. Device nodes are opened
	// by the VFS through its device registry and never reach Open.
	Open(ctx context.Context, flags int) (FileImpl, error)
}
