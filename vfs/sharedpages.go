package vfs

import (
	"context"

	"golang.org/x/sys/unix"
)

// PageAllocator gives files guest memory pages for MAP_SHARED mappings:
// pages the kernel can map into guests, so that every mapping and every
// read and write of the file see the same bytes.
type PageAllocator interface {
	// Alloc returns a new zeroed page: its id (the kernel maps it by id)
	// and its bytes, with one reference held by the caller.
	Alloc() (id uint64, mem []byte, err error)
	// Unref drops a reference taken by Alloc.
	Unref(id uint64)
	// Mapped reports whether anyone besides the file holds a reference
	// to the page: a mapping of it.
	Mapped(id uint64) bool
}

// Sharer is implemented by files that can be mapped MAP_SHARED (tmpfs and
// memfd files). Share moves the pages of [off, off+length) into pages from
// pages, if they are not there yet, and returns their ids in order. From
// then on those pages hold the file's bytes; the file keeps its references
// until it is deleted and closed.
type Sharer interface {
	Share(ctx context.Context, off, length int64, pages PageAllocator) ([]uint64, error)
}

// Sealer is implemented by files that keep seals (F_ADD_SEALS and
// F_GET_SEALS): tmpfs files, and so memfd files.
type Sealer interface {
	Seals() uint32
	// AddSeals adds seals the caller has checked against F_ALL_SEALS:
	// EPERM once F_SEAL_SEAL is set, EBUSY for F_SEAL_WRITE while the
	// file is mapped shared.
	AddSeals(seals uint32) error
}

// Namer is implemented by files that have no path but a name /proc shows
// for them (memfd files: "/memfd:NAME (deleted)"); ok is false for the
// others.
type Namer interface {
	ProcName() (name string, ok bool)
}

// SharedPages are the pages of a host file that MAP_SHARED mappings map,
// in guest memory: they hold the mappings' writes until the kernel writes
// them back to the host. While a file's name has them, reads and writes
// of the file through that name see them and update them, so that the
// file and its mappings agree, as Linux's page cache makes them.
type SharedPages interface {
	// Overlay replaces the bytes of dst, which a read of the host file
	// just filled from off, by those of the pages the mappings map.
	Overlay(dst []byte, off int64)
	// Write runs write, which writes src to the host file and returns how
	// many bytes it wrote and where, and copies those bytes into the
	// pages that hold them: one step, which no writeback of the pages
	// sees half done.
	Write(src []byte, write func() (n int, off int64, err error)) (int, error)
	// Truncate runs truncate, which cuts or extends the host file to
	// size, and zeroes what the pages hold past it, as one step.
	Truncate(size int64, truncate func() error) error
}

// sharedPagesBox lets an interface value live in an atomic.Pointer.
type sharedPagesBox struct{ pages SharedPages }

// SetSharedPages makes reads and writes of the file through the name it
// was opened at go through pages as well, or no longer when pages is nil.
// It reports false for a file opened at no name.
func (f *File) SetSharedPages(pages SharedPages) bool {
	if f.vd.d == nil {
		return false
	}
	if pages == nil {
		f.vd.d.shared.Store(nil)
	} else {
		f.vd.d.shared.Store(&sharedPagesBox{pages})
	}
	return true
}

// SharedPages returns the pages set by SetSharedPages, or nil.
func (f *File) SharedPages() SharedPages { return f.sharedPages() }

func (f *File) sharedPages() SharedPages {
	if f.vd.d == nil {
		return nil
	}
	if b := f.vd.d.shared.Load(); b != nil {
		return b.pages
	}
	return nil
}

// truncate sets the size of the regular file d names, through the pages
// of its shared mappings if it has any.
func (d *Dentry) truncate(ctx context.Context, size int64) error {
	truncate := func() error {
		return d.inode.SetStat(ctx, &SetStat{Mask: unix.STATX_SIZE, Size: uint64(size)})
	}
	if b := d.shared.Load(); b != nil {
		return b.pages.Truncate(size, truncate)
	}
	return truncate()
}
