package tmpfs

import (
	"context"
	"math"

	"github.com/google/btree"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// chunkSize is the span of file offsets one chunk covers.
const chunkSize = 64 << 10

// chunk holds the bytes [idx*chunkSize, idx*chunkSize+len(data)) of a
// file; the rest of its span is a hole.
type chunk struct {
	idx  int64
	data []byte
}

// fileData is a sparse regular file: chunks in a B-tree, so that large
// files grow without copying and holes cost nothing. Guarded by inode.mu.
type fileData struct {
	size      int64
	allocated int64 // bytes charged to the file system, in blocks
	chunks    *btree.BTreeG[*chunk]
}

func blocks(n int) int64 {
	return (int64(n) + blockSize - 1) / blockSize * blockSize
}

func (d *fileData) get(idx int64) *chunk {
	if d.chunks == nil {
		return nil
	}
	c, _ := d.chunks.Get(&chunk{idx: idx})
	return c
}

// grow returns the chunk idx with at least n bytes of data, charging fs.
func (d *fileData) grow(fs *FS, idx int64, n int) (*chunk, error) {
	if d.chunks == nil {
		d.chunks = btree.NewG(16, func(a, b *chunk) bool { return a.idx < b.idx })
	}
	c := d.get(idx)
	if c != nil && len(c.data) >= n {
		return c, nil
	}
	old := 0
	if c != nil {
		old = len(c.data)
	}
	delta := blocks(n) - blocks(old)
	if err := fs.reserve(delta); err != nil {
		return nil, err
	}
	d.allocated += delta
	if c == nil {
		c = &chunk{idx: idx}
		d.chunks.ReplaceOrInsert(c)
	}
	if cap(c.data) >= n {
		c.data = c.data[:n]
		clear(c.data[old:])
		return c, nil
	}
	data := make([]byte, n, min(chunkSize, max(n, 2*cap(c.data))))
	copy(data, c.data)
	c.data = data
	return c, nil
}

func (d *fileData) read(dst []byte, off int64) int {
	if off >= d.size {
		return 0
	}
	n := int(min(int64(len(dst)), d.size-off))
	for done := 0; done < n; {
		pos := off + int64(done)
		idx, in := pos/chunkSize, int(pos%chunkSize)
		want := min(n-done, chunkSize-in)
		out := dst[done : done+want]
		copied := 0
		if c := d.get(idx); c != nil && in < len(c.data) {
			copied = copy(out, c.data[in:])
		}
		clear(out[copied:])
		done += want
	}
	return n
}

func (d *fileData) write(fs *FS, src []byte, off int64) (int, error) {
	if off > math.MaxInt64-int64(len(src)) {
		return 0, unix.EFBIG
	}
	done := 0
	for done < len(src) {
		pos := off + int64(done)
		idx, in := pos/chunkSize, int(pos%chunkSize)
		want := min(len(src)-done, chunkSize-in)
		c, err := d.grow(fs, idx, in+want)
		if err != nil {
			break
		}
		copy(c.data[in:], src[done:done+want])
		done += want
	}
	d.size = max(d.size, off+int64(done))
	if done == 0 && len(src) > 0 {
		return 0, unix.ENOSPC
	}
	return done, nil
}

// truncate sets the size, freeing the data beyond it.
func (d *fileData) truncate(fs *FS, size int64) {
	if size < d.size && d.chunks != nil {
		var drop []*chunk
		d.chunks.AscendGreaterOrEqual(&chunk{idx: size / chunkSize}, func(c *chunk) bool {
			drop = append(drop, c)
			return true
		})
		for _, c := range drop {
			keep := int(max(0, min(int64(len(c.data)), size-c.idx*chunkSize)))
			delta := blocks(keep) - blocks(len(c.data))
			fs.used.Add(delta)
			d.allocated += delta
			if keep == 0 {
				d.chunks.Delete(c)
			} else {
				c.data = c.data[:keep]
			}
		}
	}
	d.size = size
}

// allocate backs [off, off+length) with memory.
func (d *fileData) allocate(fs *FS, off, length int64) error {
	for pos := off; pos < off+length; {
		idx, in := pos/chunkSize, pos%chunkSize
		want := min(off+length-pos, chunkSize-in)
		if _, err := d.grow(fs, idx, int(in+want)); err != nil {
			return err
		}
		pos += want
	}
	return nil
}

// seekData implements SEEK_DATA and SEEK_HOLE.
func (d *fileData) seekData(off int64, hole bool) (int64, error) {
	if off < 0 || off >= d.size {
		return 0, unix.ENXIO
	}
	pos := off
	found := false
	if d.chunks != nil {
		d.chunks.AscendGreaterOrEqual(&chunk{idx: off / chunkSize}, func(c *chunk) bool {
			start, end := c.idx*chunkSize, c.idx*chunkSize+int64(len(c.data))
			if hole {
				if start > pos {
					return false
				}
				pos = max(pos, end)
				return len(c.data) == chunkSize
			}
			if end > pos {
				pos = max(pos, start)
				found = true
				return false
			}
			return true
		})
	}
	if hole {
		return min(pos, d.size), nil
	}
	if !found || pos >= d.size {
		return 0, unix.ENXIO
	}
	return pos, nil
}

// regFile is an open regular file.
type regFile struct {
	in *inode
}

func (r *regFile) Read(_ context.Context, _ *vfs.File, dst []byte, off int64) (int, error) {
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	n := in.data.read(dst, off)
	in.atime = now()
	return n, nil
}

func (r *regFile) writeLocked(src []byte, off int64) (int, error) {
	in := r.in
	n, err := in.data.write(in.fs, src, off)
	if n > 0 {
		t := now()
		in.mtime, in.ctime = t, t
		if in.mode&unix.S_ISUID != 0 || in.mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP {
			in.mode &^= unix.S_ISUID | unix.S_ISGID
		}
	}
	return n, err
}

func (r *regFile) Write(_ context.Context, _ *vfs.File, src []byte, off int64) (int, error) {
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	return r.writeLocked(src, off)
}

// Append implements vfs.Appender.
func (r *regFile) Append(_ context.Context, _ *vfs.File, src []byte) (int, int64, error) {
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	off := r.in.data.size
	n, err := r.writeLocked(src, off)
	return n, off + int64(n), err
}

func (r *regFile) Release() {}

// Seek implements vfs.Seeker, with holes for SEEK_DATA and SEEK_HOLE.
func (r *regFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	switch whence {
	case unix.SEEK_DATA:
		return r.in.data.seekData(off, false)
	case unix.SEEK_HOLE:
		return r.in.data.seekData(off, true)
	}
	return vfs.SeekTo(cur, off, whence, r.in.data.size)
}

// Allocate implements vfs.Allocator.
func (r *regFile) Allocate(_ context.Context, mode uint32, off, length int64) error {
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.data.allocate(in.fs, off, length); err != nil {
		return err
	}
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 && off+length > in.data.size {
		in.data.size = off + length
	}
	in.ctime = now()
	return nil
}

func (r *regFile) Sync(context.Context) error {
	return nil
}
