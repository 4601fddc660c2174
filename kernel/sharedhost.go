package kernel

import (
	"context"
	"sync"

	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// sharedHostFiles are the host files that MAP_SHARED mappings map
// writably, by the host's identity of the file.
type sharedHostFiles struct {
	mu    sync.Mutex // taken before any sharedHostFile's
	files map[mm.FileID]*sharedHostFile
}

// sharedHostFile holds the pages of a host file that MAP_SHARED mappings
// map, in guest frames: every mapping of the file maps the same frames,
// reads and writes of the file through the names it was mapped at go
// through them too (vfs.SharedPages), and writeback copies them to the
// host file (msync, munmap, the end of a process). It lives while a
// mapping maps one of its frames.
type sharedHostFile struct {
	k  *Kernel
	id mm.FileID

	mu sync.Mutex
	// file is a file opened for writing, which reads of missing pages
	// and writebacks use.
	file *vfs.File
	// names are files (one reference each) whose names route reads and
	// writes through the pages.
	names []*vfs.File
	pages map[uint64]uint64 // frame by page index; one reference each
}

// ShareHostFile returns the frames holding pages [off/PageSize,
// (off+length)/PageSize) of f for a MAP_SHARED mapping, each with a
// reference for the caller, which release drops once the mapping holds
// its own. ok is false for a file that is not a host file opened for
// reading and writing.
func (k *Kernel) ShareHostFile(ctx context.Context, f *vfs.File, off, length uint64) (frames []uint64, release func(), ok bool, err error) {
	host, isHost := f.Impl().(vfs.HostFile)
	if !isHost || !f.IsRegular() || f.StatusFlags()&unix.O_ACCMODE != unix.O_RDWR {
		return nil, nil, false, nil
	}
	st, err := host.HostStat()
	if err != nil {
		return nil, nil, true, err
	}
	id := mm.FileID{Dev: unix.Mkdev(st.Dev_major, st.Dev_minor), Ino: st.Ino}
	s := &k.sharedHost
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[mm.FileID]*sharedHostFile{}
	}
	sf := s.files[id]
	if sf == nil {
		f.IncRef()
		sf = &sharedHostFile{k: k, id: id, file: f, pages: map[uint64]uint64{}}
		s.files[id] = sf
		// Private mappings read the file, not the page cache, while its
		// pages are here (see cachedFile).
		k.pages.Invalidate(id)
	}
	if f.SharedPages() != vfs.SharedPages(sf) && f.SetSharedPages(sf) {
		f.IncRef()
		sf.names = append(sf.names, f)
	}
	frames, err = sf.share(ctx, off/mm.PageSize, length/mm.PageSize)
	if err != nil {
		return nil, nil, true, err
	}
	return frames, func() { k.pages.Release(frames) }, true, nil
}

// share returns the frames of pages [first, first+n), reading those not
// here from the host file, each with a reference for the caller.
func (sf *sharedHostFile) share(ctx context.Context, first, n uint64) ([]uint64, error) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	frames := make([]uint64, 0, n)
	for page := first; page < first+n; page++ {
		gpa, ok := sf.pages[page]
		if !ok {
			var err error
			if gpa, err = sf.k.phys.AllocFrame(); err != nil {
				sf.k.phys.FreeFrames(frames)
				return nil, err
			}
			// The host file holds every byte of a page not here.
			read, err := sf.file.Impl().Read(ctx, sf.file, sf.k.phys.Frame(gpa), int64(page*mm.PageSize))
			sf.k.pages.NoteCopied(uint64(max(read, 0)))
			if err != nil {
				sf.k.phys.FreeFrames(append(frames, gpa))
				return nil, err
			}
			sf.pages[page] = gpa
			sf.k.phys.IncRef(gpa)
		} else {
			sf.k.phys.IncRef(gpa)
		}
		frames = append(frames, gpa)
	}
	return frames, nil
}

// each calls fn with each page of the file's bytes [off, off+n) that is
// here: its bytes in the frame, and where they are in [off, off+n).
func (sf *sharedHostFile) each(off int64, n int, fn func(frame []byte, at int)) {
	if off < 0 {
		return
	}
	for at := 0; at < n; {
		pos := uint64(off) + uint64(at)
		in := int(pos % mm.PageSize)
		size := min(n-at, mm.PageSize-in)
		if gpa, ok := sf.pages[pos/mm.PageSize]; ok {
			fn(sf.k.phys.Frame(gpa)[in:in+size], at)
		}
		at += size
	}
}

// Overlay implements vfs.SharedPages.
func (sf *sharedHostFile) Overlay(dst []byte, off int64) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	sf.each(off, len(dst), func(frame []byte, at int) { copy(dst[at:], frame) })
}

// Write implements vfs.SharedPages.
func (sf *sharedHostFile) Write(src []byte, write func() (int, int64, error)) (int, error) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	n, off, err := write()
	if n > 0 {
		sf.each(off, n, func(frame []byte, at int) { copy(frame, src[at:]) })
	}
	return n, err
}

// Truncate implements vfs.SharedPages.
func (sf *sharedHostFile) Truncate(size int64, truncate func() error) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if err := truncate(); err != nil {
		return err
	}
	for page, gpa := range sf.pages {
		if start := int64(page * mm.PageSize); start+mm.PageSize > size {
			clear(sf.k.phys.Frame(gpa)[max(size-start, 0):])
		}
	}
	return nil
}

// writeback copies the pages to the host file, up to its end: a mapping
// does not make a file longer.
func (sf *sharedHostFile) writeback(ctx context.Context) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	st, err := sf.file.Impl().(vfs.HostFile).HostStat()
	if err != nil {
		return err
	}
	size := st.Size
	for page, gpa := range sf.pages {
		start := page * mm.PageSize
		if start >= size {
			continue
		}
		bytes := sf.k.phys.Frame(gpa)[:min(mm.PageSize, size-start)]
		if _, err := sf.file.Impl().Write(ctx, sf.file, bytes, int64(start)); err != nil {
			return err
		}
	}
	return nil
}

// unmappedLocked reports whether no mapping maps a page any more.
func (sf *sharedHostFile) unmappedLocked() bool {
	for _, gpa := range sf.pages {
		if sf.k.phys.Shared(gpa) {
			return false
		}
	}
	return true
}

// writeBackShared writes back the shared host files whose pages are among
// frames (msync, munmap, the end of an address space), and those no
// mapping maps any more, which it then lets go of.
func (k *Kernel) writeBackShared(ctx context.Context, frames []uint64) error {
	s := &k.sharedHost
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 {
		return nil
	}
	held := make(map[uint64]bool, len(frames))
	for _, gpa := range frames {
		held[gpa] = true
	}
	var firstErr error
	for id, sf := range s.files {
		sf.mu.Lock()
		unmapped := sf.unmappedLocked()
		sf.mu.Unlock()
		if !unmapped && !sf.holdsAny(held) {
			continue
		}
		if err := sf.writeback(ctx); err != nil && firstErr == nil {
			firstErr = err
		}
		if unmapped {
			sf.release()
			delete(s.files, id)
		}
	}
	return firstErr
}

// holdsAny reports whether one of the file's frames is in frames.
func (sf *sharedHostFile) holdsAny(frames map[uint64]bool) bool {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	for _, gpa := range sf.pages {
		if frames[gpa] {
			return true
		}
	}
	return false
}

// release gives back the frames and the files of a shared host file that
// no mapping maps.
func (sf *sharedHostFile) release() {
	sf.mu.Lock()
	frames := make([]uint64, 0, len(sf.pages))
	for _, gpa := range sf.pages {
		frames = append(frames, gpa)
	}
	sf.pages = nil
	sf.mu.Unlock()
	for _, f := range sf.names {
		// The name may lead to another host file by now.
		if f.SharedPages() == vfs.SharedPages(sf) {
			f.SetSharedPages(nil)
		}
		f.DecRef()
	}
	sf.file.DecRef()
	if len(frames) > 0 {
		sf.k.phys.FreeFrames(frames)
	}
	// The host file changed under the page cache's version of it.
	sf.k.pages.Invalidate(sf.id)
}

// MsyncShared writes back the host files that MAP_SHARED mappings in
// [addr, addr+length) of as map (msync).
func (k *Kernel) MsyncShared(ctx context.Context, as *mm.AddressSpace, addr, length uint64) error {
	frames := as.SharedFrames(addr, length)
	if len(frames) == 0 {
		return nil
	}
	return k.writeBackShared(ctx, frames)
}

// MunmapShared unmaps [addr, addr+length) of as (munmap) and writes back
// the host files that MAP_SHARED mappings there mapped.
func (k *Kernel) MunmapShared(ctx context.Context, as *mm.AddressSpace, addr, length uint64) error {
	frames := as.SharedFrames(addr, length)
	if err := as.Munmap(addr, length); err != nil {
		return err
	}
	if len(frames) == 0 {
		return nil
	}
	// Writeback errors do not undo the munmap; Linux reports them at
	// fsync.
	_ = k.writeBackShared(ctx, frames)
	return nil
}

// releaseSpace releases an address space that no thread runs any more and
// writes back the host files its MAP_SHARED mappings mapped.
func (k *Kernel) releaseSpace(as *mm.AddressSpace) {
	frames := as.SharedFrames(0, mm.MaxUserTop)
	as.Release()
	if len(frames) > 0 {
		_ = k.writeBackShared(context.Background(), frames)
	}
}
