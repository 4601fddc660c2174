package tmpfs

import (
	"context"
	"math"
	"math/bits"

	"github.com/google/btree"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// chunkSize is the span of file offsets one chunk covers: pagesPerChunk
// pages of blockSize bytes.
const (
	chunkSize     = 64 << 10
	pagesPerChunk = chunkSize / blockSize
)

// chunk holds the bytes [idx*chunkSize, idx*chunkSize+len(data)) of a
// file; the rest of its span reads as zeros. Like Linux's tmpfs, it
// keeps track of pages: a page is allocated (charged to the file system)
// once written or fallocated, and holds data (for SEEK_DATA and
// SEEK_HOLE) once written; fallocated pages that were never written are
// holes. The bytes of a page that holds no data are zero.
type chunk struct {
	idx       int64
	data      []byte
	allocated uint16 // bit p: page p is charged
	written   uint16 // bit p: page p holds data; a subset of allocated
}

// fileData is a sparse regular file: chunks in a B-tree, so that large
// files grow without copying and holes cost nothing. Guarded by inode.mu.
type fileData struct {
	size      int64
	allocated int64 // bytes charged to the file system, in pages
	chunks    *btree.BTreeG[*chunk]
	shared    sharedPages
}

// pageMask returns the bits of the pages of a chunk that the bytes
// [from, to) touch.
func pageMask(from, to int) uint16 {
	if from >= to {
		return 0
	}
	first, last := from/blockSize, (to-1)/blockSize
	return uint16((1<<(last+1) - 1) &^ (1<<first - 1))
}

func (d *fileData) get(idx int64) *chunk {
	if d.chunks == nil {
		return nil
	}
	c, _ := d.chunks.Get(&chunk{idx: idx})
	return c
}

// grow allocates the pages of chunk idx that the bytes [from, to) touch,
// charging fs; write marks them as holding data and makes the chunk's
// data reach to.
func (d *fileData) grow(fs *FS, idx int64, from, to int, write bool) (*chunk, error) {
	if d.chunks == nil {
		d.chunks = btree.NewG(16, func(a, b *chunk) bool { return a.idx < b.idx })
	}
	c := d.get(idx)
	mask := pageMask(from, to)
	var added uint16
	if c != nil {
		added = mask &^ c.allocated
	} else {
		added = mask
	}
	delta := int64(bits.OnesCount16(added)) * blockSize
	if err := fs.reserve(delta); err != nil {
		return nil, err
	}
	d.allocated += delta
	if c == nil {
		c = &chunk{idx: idx}
		d.chunks.ReplaceOrInsert(c)
	}
	c.allocated |= mask
	if !write {
		return c, nil
	}
	c.written |= mask
	if old := len(c.data); old < to {
		if cap(c.data) >= to {
			c.data = c.data[:to]
			clear(c.data[old:])
		} else {
			data := make([]byte, to, min(chunkSize, max(to, 2*cap(c.data))))
			copy(data, c.data)
			c.data = data
		}
	}
	return c, nil
}

func (d *fileData) read(dst []byte, off int64) int {
	if off >= d.size {
		return 0
	}
	n := int(min(int64(len(dst)), d.size-off))
	d.readChunks(dst[:n], off)
	d.shared.overlay(dst[:n], off)
	return n
}

// readChunks reads [off, off+len(dst)) from the chunks alone.
func (d *fileData) readChunks(dst []byte, off int64) {
	n := len(dst)
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
		c, err := d.grow(fs, idx, in, in+want, true)
		if err != nil {
			break
		}
		copy(c.data[in:], src[done:done+want])
		done += want
	}
	d.shared.writeThrough(src[:done], off)
	d.size = max(d.size, off+int64(done))
	if done == 0 && len(src) > 0 {
		return 0, unix.ENOSPC
	}
	return done, nil
}

// truncate sets the size, freeing the pages beyond it.
func (d *fileData) truncate(fs *FS, size int64) {
	if size < d.size && d.chunks != nil {
		var drop []*chunk
		d.chunks.AscendGreaterOrEqual(&chunk{idx: size / chunkSize}, func(c *chunk) bool {
			drop = append(drop, c)
			return true
		})
		for _, c := range drop {
			keep := int(max(0, size-c.idx*chunkSize))
			mask := pageMask(0, keep)
			delta := -int64(bits.OnesCount16(c.allocated&^mask)) * blockSize
			fs.used.Add(delta)
			d.allocated += delta
			c.allocated &= mask
			c.written &= mask
			if c.allocated == 0 {
				d.chunks.Delete(c)
			} else if keep < len(c.data) {
				c.data = c.data[:keep]
			}
		}
	}
	d.shared.truncate(size)
	d.size = size
}

// release gives every page back to fs: the file is gone.
func (d *fileData) release(fs *FS) {
	fs.used.Add(-d.allocated)
	d.allocated = 0
	d.chunks = nil
	d.shared.release()
}

// allocate backs [off, off+length) with memory.
func (d *fileData) allocate(fs *FS, off, length int64) error {
	for pos := off; pos < off+length; {
		idx, in := pos/chunkSize, pos%chunkSize
		want := min(off+length-pos, chunkSize-in)
		if _, err := d.grow(fs, idx, int(in), int(in+want), false); err != nil {
			return err
		}
		pos += want
	}
	return nil
}

// seekData implements SEEK_DATA and SEEK_HOLE in pages, as Linux's tmpfs
// does: data is what written pages hold, whatever their bytes; a hole
// ends the file.
func (d *fileData) seekData(off int64, hole bool) (int64, error) {
	if off < 0 || off >= d.size {
		return 0, unix.ENXIO
	}
	pos := off
	found := false
	if d.chunks != nil {
		d.chunks.AscendGreaterOrEqual(&chunk{idx: off / chunkSize}, func(c *chunk) bool {
			start := c.idx * chunkSize
			if hole && start > pos {
				return false
			}
			for p := max(0, pos-start) / blockSize; p < pagesPerChunk; p++ {
				if (c.written&(1<<p) != 0) != hole {
					pos = max(pos, start+p*blockSize)
					found = true
					return false
				}
			}
			if hole {
				pos = start + chunkSize
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

func (r *regFile) writeLocked(ctx context.Context, src []byte, off int64) (int, error) {
	in := r.in
	if err := in.checkWriteLocked(off, len(src)); err != nil {
		return 0, err
	}
	n, err := in.data.write(in.fs, src, off)
	if n > 0 {
		t := now()
		in.mtime, in.ctime = t, t
		if in.mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			in.mode = unix.S_IFREG | vfs.KillSetIDOnWrite(ctx, in.mode&0o7777, in.gid)
		}
	}
	return n, err
}

func (r *regFile) Write(ctx context.Context, _ *vfs.File, src []byte, off int64) (int, error) {
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	return r.writeLocked(ctx, src, off)
}

// Append implements vfs.Appender.
func (r *regFile) Append(ctx context.Context, _ *vfs.File, src []byte) (int, int64, error) {
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	off := r.in.data.size
	n, err := r.writeLocked(ctx, src, off)
	return n, off + int64(n), err
}

func (r *regFile) Release() {
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	in.opens--
	in.freeIfGoneLocked()
}

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
	if in.seals&unix.F_SEAL_GROW != 0 && off+length > in.data.size {
		return unix.EPERM
	}
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
