package vfs

import "golang.org/x/sys/unix"

// IsRegular reports whether f is a regular file opened through a path: its
// reads and writes never wait for another party, and it has no atomicity
// rules across a write, so the kernel may serve them in pieces straight
// from guest memory.
func (f *File) IsRegular() bool {
	return f.impl != nil && f.vd.Valid() && f.vd.d.typ == unix.S_IFREG
}

// IsDirectory reports whether f is a directory opened through a path.
func (f *File) IsDirectory() bool {
	return f.impl != nil && f.vd.Valid() && f.vd.d.typ == unix.S_IFDIR
}
