package mm

import (
	"cmp"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// FileID identifies a file to the page cache: the host's device and
// inode numbers of it.
type FileID struct{ Dev, Ino uint64 }

// FileVersion tells one state of a file's contents from another: what
// stat reports that a change of the contents changes, and a count of the
// writes made through the sandbox, which changes even where the
// timestamps are too coarse to.
type FileVersion struct {
	Size         int64
	Mtime, Ctime unix.Timespec
	Writes       uint64
}

// ReadAtFunc reads a file's bytes at off into dst, as pread(2) does: a
// short read (with io.EOF or no error) means the end of the file.
type ReadAtFunc func(dst []byte, off int64) (int, error)

// PageCache holds the pages of files in guest frames, so that every
// private mapping of an unchanged file (and every exec of it) maps the
// same frames read-only instead of reading the file again. A page is read
// once, into a frame the cache holds a reference to; each mapping holds
// one more. A mapping that makes a page writable gets a copy of its own
// (see MapFile and Mprotect), so the guest never writes a cached frame.
//
// A file's pages are dropped when it is looked up with another
// FileVersion, and, least recently used first, when PhysMem runs short of
// frames: the cache gives back every page no mapping holds.
//
// All methods are safe for concurrent use.
type PageCache struct {
	phys *PhysMem

	mu     sync.Mutex
	files  map[FileID]*cachedFile
	clock  uint64 // counts lookups, to order files by their last use
	frames uint64 // frames the cache holds

	copied, hits atomic.Uint64
}

type cachedFile struct {
	version FileVersion
	pages   map[uint64]uint64 // frame by page index
	used    uint64            // PageCache.clock at the last lookup
}

// maxReadRun bounds the pages a fill reads with one call.
const maxReadRun = 16

// NewPageCache makes an empty cache whose pages live in p's frames, and
// lets p reclaim them when it runs short.
func NewPageCache(p *PhysMem) *PageCache {
	c := &PageCache{phys: p, files: map[FileID]*cachedFile{}}
	p.mu.Lock()
	p.reclaimer = c.reclaim
	p.mu.Unlock()
	return c
}

// PageCacheStats counts what a PageCache did.
type PageCacheStats struct {
	// CopiedBytes counts the file bytes read into guest frames: by the
	// cache, and by mappings that could not use it (NoteCopied).
	CopiedBytes uint64
	// HitPages counts the pages found in the cache.
	HitPages uint64
	// CachedBytes is the size of the pages the cache holds now.
	CachedBytes uint64
}

// Stats returns the cache's counters.
func (c *PageCache) Stats() PageCacheStats {
	c.mu.Lock()
	cached := c.frames * PageSize
	c.mu.Unlock()
	return PageCacheStats{CopiedBytes: c.copied.Load(), HitPages: c.hits.Load(), CachedBytes: cached}
}

// NoteCopied counts n file bytes copied into guest memory outside the
// cache.
func (c *PageCache) NoteCopied(n uint64) { c.copied.Add(n) }

// Pages returns the frames that hold pages [first, first+n) of the file
// id in version v, reading with read those the cache lacks. A page that
// lies wholly past the end of the file has frame 0. Each frame returned
// carries a reference for the caller, given back with Release. A file
// cached in another version is dropped first.
func (c *PageCache) Pages(id FileID, v FileVersion, first, n uint64, read ReadAtFunc) ([]uint64, error) {
	if v.Size < 0 || n > c.phys.frameCount() {
		return nil, unix.ENOMEM
	}
	filePages := pageAlign(uint64(v.Size)) / PageSize
	frames := make([]uint64, n)
	if first >= filePages {
		return frames, nil
	}
	var missing []uint64 // indexes into frames

	c.mu.Lock()
	f := c.fileLocked(id, v)
	for i := range n {
		page := first + i
		if page >= filePages {
			continue
		}
		if gpa, ok := f.pages[page]; ok {
			c.phys.IncRef(gpa)
			frames[i] = gpa
			c.hits.Add(1)
		} else {
			missing = append(missing, i)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return frames, nil
	}

	if err := c.fill(frames, missing, first, read); err != nil {
		c.Release(frames)
		return nil, err
	}

	// Keep what was read, unless the file changed meanwhile or another
	// caller cached the same pages first.
	var spare []uint64
	c.mu.Lock()
	if f := c.files[id]; f != nil && f.version == v {
		for _, i := range missing {
			page := first + i
			if gpa, ok := f.pages[page]; ok {
				spare = append(spare, frames[i])
				c.phys.IncRef(gpa)
				frames[i] = gpa
				continue
			}
			c.phys.IncRef(frames[i])
			f.pages[page] = frames[i]
			c.frames++
		}
	}
	c.mu.Unlock()
	c.Release(spare)
	return frames, nil
}

// fileLocked returns the entry of id in version v, dropping one of
// another version.
func (c *PageCache) fileLocked(id FileID, v FileVersion) *cachedFile {
	c.clock++
	f := c.files[id]
	if f != nil && f.version != v {
		c.dropLocked(id, f)
		f = nil
	}
	if f == nil {
		f = &cachedFile{version: v, pages: map[uint64]uint64{}}
		c.files[id] = f
	}
	f.used = c.clock
	return f
}

// dropLocked takes the file out of the cache. Frames that mappings still
// hold stay theirs: no entry changes, so nothing needs revoking.
func (c *PageCache) dropLocked(id FileID, f *cachedFile) {
	gpas := make([]uint64, 0, len(f.pages))
	for _, gpa := range f.pages {
		gpas = append(gpas, gpa)
	}
	c.frames -= uint64(len(gpas))
	delete(c.files, id)
	c.phys.dropFrames(gpas, false)
}

// fill reads the pages frames[i] for i in missing (sorted) into new
// frames, a run of consecutive pages per read.
func (c *PageCache) fill(frames, missing []uint64, first uint64, read ReadAtFunc) error {
	buf := make([]byte, maxReadRun*PageSize)
	for len(missing) > 0 {
		run := 1
		for run < len(missing) && run < maxReadRun && missing[run] == missing[run-1]+1 {
			run++
		}
		off := (first + missing[0]) * PageSize
		n, err := readFull(read, buf[:run*PageSize], int64(off))
		if err != nil {
			return err
		}
		c.copied.Add(uint64(n))
		for k, i := range missing[:run] {
			gpa, err := c.phys.AllocFrame()
			if err != nil {
				return err
			}
			frames[i] = gpa
			if start := k * PageSize; start < n {
				copy(c.phys.Frame(gpa), buf[start:min(n, start+PageSize)])
			}
		}
		missing = missing[run:]
	}
	return nil
}

// readFull reads up to len(dst) bytes at off. A short read is the end of
// the file, as it is for pread(2) of a regular file.
func readFull(read ReadAtFunc, dst []byte, off int64) (int, error) {
	n, err := read(dst, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return max(n, 0), err
}

// Release gives back the references Pages returned.
func (c *PageCache) Release(frames []uint64) {
	held := make([]uint64, 0, len(frames))
	for _, gpa := range frames {
		if gpa != 0 {
			held = append(held, gpa)
		}
	}
	if len(held) > 0 {
		c.phys.dropFrames(held, false)
	}
}

// Invalidate drops the pages of the file id.
func (c *PageCache) Invalidate(id FileID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.files[id]; f != nil {
		c.dropLocked(id, f)
	}
}

// reclaim frees at least n frames if it can: the pages no mapping holds,
// of the least recently used files first.
func (c *PageCache) reclaim(n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type entry struct {
		id FileID
		f  *cachedFile
	}
	lru := make([]entry, 0, len(c.files))
	for id, f := range c.files {
		lru = append(lru, entry{id, f})
	}
	slices.SortFunc(lru, func(a, b entry) int { return cmp.Compare(a.f.used, b.f.used) })
	var unused []uint64
	for _, e := range lru {
		// Nobody can take a new reference to a cached frame without
		// c.mu, so a frame the cache alone holds stays unused.
		for page, gpa := range e.f.pages {
			if c.phys.refCount(gpa) == 1 {
				unused = append(unused, gpa)
				delete(e.f.pages, page)
			}
		}
		if len(e.f.pages) == 0 {
			delete(c.files, e.id)
		}
		if uint64(len(unused)) >= n {
			break
		}
	}
	c.frames -= uint64(len(unused))
	if len(unused) > 0 {
		c.phys.dropFrames(unused, false)
	}
}
