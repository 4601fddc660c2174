package vfs

import "context"

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
