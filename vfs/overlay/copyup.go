package overlay

import (
	"bytes"
	"context"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// copyChunk is the size of the buffer that copy-up streams file data
// through.
const copyChunk = 128 << 10

var zeros [copyChunk]byte

// copyUp gives the object an upper copy, copying up its parent first. A
// regular file's data is copied up to limit bytes, all of it if limit is
// negative. The parent's upper timestamps are restored, so that a
// copy-up is not seen as a change of the directory.
func (in *inode) copyUp(ctx context.Context, limit int64) error {
	in.copyMu.Lock()
	defer in.copyMu.Unlock()
	fs := in.fs
	fs.mu.Lock()
	upper, lower, parent := in.upper, in.lower, in.parent
	fs.mu.Unlock()
	if upper != nil {
		return nil
	}
	if parent == nil {
		return unix.ENOENT
	}
	if err := parent.copyUp(ctx, -1); err != nil {
		return err
	}
	st, err := lower.Stat(ctx)
	if err != nil {
		return err
	}
	opts := &vfs.CreateOptions{
		Mode: in.typ | uint32(st.Mode)&0o7777,
		UID:  st.Uid,
		GID:  st.Gid,
		Rdev: unix.Mkdev(st.Rdev_major, st.Rdev_minor),
	}
	switch in.typ {
	case unix.S_IFLNK:
		if opts.Target, err = lower.Readlink(ctx); err != nil {
			return err
		}
	case unix.S_IFREG:
		// Writes clear set-id bits: the mode is set once the data is in.
		opts.Mode = unix.S_IFREG | 0o600
	}
	if upper, err = in.createUpper(ctx, opts); err != nil {
		return err
	}
	set := attrs(&st)
	if in.typ == unix.S_IFREG {
		size := int64(st.Size)
		if limit >= 0 {
			size = min(size, limit)
		}
		err = copyData(ctx, lower, upper, size)
		set.Mask |= unix.STATX_MODE | unix.STATX_SIZE
		set.Mode, set.Size = uint32(st.Mode)&0o7777, uint64(size)
	}
	if err == nil {
		err = upper.SetStat(ctx, set)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err != nil {
		in.dropUpperLocked(ctx, upper)
		return err
	}
	in.upper = upper
	if in.typ != unix.S_IFDIR {
		in.lower = nil
	}
	return nil
}

// createUpper makes the upper object of a lower one, in its parent's
// upper directory, keeping the parent's timestamps.
func (in *inode) createUpper(ctx context.Context, opts *vfs.CreateOptions) (vfs.Inode, error) {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if in.parent == nil {
		return nil, unix.ENOENT
	}
	dir := in.parent.upper
	pst, err := dir.Stat(ctx)
	if err != nil {
		return nil, err
	}
	upper, err := dir.Create(ctx, in.name, opts)
	if err != nil {
		return nil, err
	}
	set := attrs(&pst)
	set.Mask &^= unix.STATX_UID | unix.STATX_GID
	if err := dir.SetStat(ctx, set); err != nil {
		in.dropUpperLocked(ctx, upper)
		return nil, err
	}
	return upper, nil
}

// dropUpperLocked removes upper, a failed copy-up, if it is still at the
// object's name. A regular file is emptied first, which gives its space
// back even while someone holds it.
func (in *inode) dropUpperLocked(ctx context.Context, upper vfs.Inode) {
	if in.typ == unix.S_IFREG {
		_ = upper.SetStat(ctx, &vfs.SetStat{Mask: unix.STATX_SIZE})
	}
	if in.parent == nil {
		return
	}
	dir := in.parent.upper
	if u, err := dir.Lookup(ctx, in.name); err == nil && u == upper {
		_ = dir.Unlink(ctx, in.name, in.typ == unix.S_IFDIR)
	}
}

func openFile(ctx context.Context, in vfs.Inode, flags int) (*vfs.File, error) {
	impl, err := in.Open(ctx, flags)
	if err != nil {
		return nil, err
	}
	return vfs.NewFile(impl, flags), nil
}

// copyData streams the first size bytes of a lower regular file into its
// new, empty upper copy. Holes of the lower file and blocks of zeros are
// left as holes; the caller sets the final size.
func copyData(ctx context.Context, lower, upper vfs.Inode, size int64) error {
	if size == 0 {
		return nil
	}
	src, err := openFile(ctx, lower, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer src.DecRef()
	dst, err := openFile(ctx, upper, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer dst.DecRef()
	buf := make([]byte, copyChunk)
	for off := int64(0); off < size; {
		start, end := nextData(ctx, src, off, size)
		for off = start; off < end; {
			if ctx.Err() != nil {
				return unix.EINTR
			}
			n, err := src.PRead(ctx, buf[:min(copyChunk, end-off)], off)
			if err != nil {
				return err
			}
			if n == 0 {
				// The lower file shrank: the rest reads as zeros.
				return nil
			}
			if !bytes.Equal(buf[:n], zeros[:n]) {
				if err := writeAll(ctx, dst, buf[:n], off); err != nil {
					return err
				}
			}
			off += int64(n)
		}
	}
	return nil
}

// nextData returns the extent of data at or after off in f, within size;
// start == end == size when only a hole remains. A file that cannot tell
// its holes is all data.
func nextData(ctx context.Context, f *vfs.File, off, size int64) (start, end int64) {
	start, err := f.Seek(ctx, off, unix.SEEK_DATA)
	switch {
	case err == unix.ENXIO, err == nil && start >= size:
		return size, size
	case err != nil || start < off:
		return off, size
	}
	end, err = f.Seek(ctx, start, unix.SEEK_HOLE)
	if err != nil || end <= start {
		return start, size
	}
	return start, min(end, size)
}

func writeAll(ctx context.Context, f *vfs.File, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := f.PWrite(ctx, b, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
