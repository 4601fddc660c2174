package tmpfs

import (
	"context"

	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// sharedPage is a page of a file that is mapped MAP_SHARED: it lives in a
// page from the kernel's allocator, which the mappings map, and it holds
// the page's bytes, overriding the chunk.
type sharedPage struct {
	id  uint64
	mem []byte
}

// sharedPages are a file's pages in guest memory. Guarded by inode.mu.
type sharedPages struct {
	alloc vfs.PageAllocator
	pages map[int64]sharedPage // by page index
}

// Share implements vfs.Sharer.
func (r *regFile) Share(_ context.Context, off, length int64, pages vfs.PageAllocator) ([]uint64, error) {
	if off < 0 || length <= 0 || off%blockSize != 0 || off > 1<<62 || length > 1<<40 {
		return nil, unix.EINVAL
	}
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	d := &in.data
	if d.shared.alloc != nil && d.shared.alloc != pages {
		return nil, unix.ENODEV
	}
	d.shared.alloc = pages
	if d.shared.pages == nil {
		d.shared.pages = map[int64]sharedPage{}
	}
	first, n := off/blockSize, (length+blockSize-1)/blockSize
	var ids []uint64
	for p := first; p < first+n; p++ {
		sp, ok := d.shared.pages[p]
		if !ok {
			id, mem, err := pages.Alloc()
			if err != nil {
				return nil, unix.ENOMEM
			}
			sp = sharedPage{id: id, mem: mem[:blockSize]}
			d.readChunks(sp.mem, p*blockSize)
			d.shared.pages[p] = sp
		}
		ids = append(ids, sp.id)
	}
	return ids, nil
}

// overlay copies the shared pages' bytes that [off, off+len(dst)) covers
// into dst.
func (s *sharedPages) overlay(dst []byte, off int64) {
	s.each(off, len(dst), func(page []byte, at int) { copy(dst[at:], page) })
}

// writeThrough copies src, written at off, into the shared pages it covers.
func (s *sharedPages) writeThrough(src []byte, off int64) {
	s.each(off, len(src), func(page []byte, at int) { copy(page, src[at:]) })
}

// each calls fn for every shared page that [off, off+n) touches, with the
// touched part of the page and where it starts in the range.
func (s *sharedPages) each(off int64, n int, fn func(page []byte, at int)) {
	if len(s.pages) == 0 || n == 0 {
		return
	}
	for p := off / blockSize; p*blockSize < off+int64(n); p++ {
		sp, ok := s.pages[p]
		if !ok {
			continue
		}
		start := max(off, p*blockSize)
		end := min(off+int64(n), (p+1)*blockSize)
		fn(sp.mem[start-p*blockSize:end-p*blockSize], int(start-off))
	}
}

// truncate zeroes what lies beyond size in the shared pages, as a file
// that shrinks and grows again reads zeros there.
func (s *sharedPages) truncate(size int64) {
	for p, sp := range s.pages {
		if end := (p + 1) * blockSize; end > size {
			clear(sp.mem[max(0, size-p*blockSize):])
		}
	}
}

// release drops the file's references to its shared pages.
func (s *sharedPages) release() {
	for _, sp := range s.pages {
		s.alloc.Unref(sp.id)
	}
	s.pages = nil
}
