package vfs

import (
	"context"

	"golang.org/x/sys/unix"
)

// DirFileBase is embedded by a file system's open directory (the
// FileImpl its Inode.Open returns for a directory) for what directories
// share on Linux: read(2) and write(2) fail with EISDIR, lseek(2) takes
// SEEK_SET and SEEK_CUR only (as on tmpfs and ext4), and releasing holds
// nothing. The embedding type adds ReadDir (DirReader) and Sync (Syncer)
// where fsync(2) of the directory succeeds, and overrides what differs:
// a Release that closes a host descriptor, or a Seek of its own.
type DirFileBase struct{}

// Read implements FileImpl.Read: directories are not read as files.
func (DirFileBase) Read(context.Context, *File, []byte, int64) (int, error) {
	return 0, unix.EISDIR
}

// Write implements FileImpl.Write: directories are not written as files.
func (DirFileBase) Write(context.Context, *File, []byte, int64) (int, error) {
	return 0, unix.EISDIR
}

// Release implements FileImpl.Release; there is nothing to release.
func (DirFileBase) Release() {}

// Seek implements Seeker: SEEK_SET and SEEK_CUR move the directory
// offset, other whences fail with EINVAL.
func (DirFileBase) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	if whence != unix.SEEK_SET && whence != unix.SEEK_CUR {
		return 0, unix.EINVAL
	}
	return SeekTo(cur, off, whence, 0)
}
