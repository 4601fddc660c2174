package kernel

import (
	"context"

	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// cachedFile is an open regular file as the page cache knows it: its
// identity and the version of its contents when it was looked at. It
// implements loader.CachedFile.
type cachedFile struct {
	fileReader
	k       *Kernel
	id      mm.FileID
	version mm.FileVersion
}

// cachedFile returns f as the page cache sees it now. Only host files
// opened at a name are cached (see vfs.HostFile): others may change
// without a write (a tmpfs file's pages are those its MAP_SHARED mappings
// write; a /proc file is made up as it is read). Neither is a host file
// that MAP_SHARED mappings map now (see ShareHostFile): reads of it see
// what they wrote.
func (k *Kernel) cachedFile(ctx context.Context, f *vfs.File) (cachedFile, bool) {
	host, ok := f.Impl().(vfs.HostFile)
	if !ok || !f.IsRegular() || f.SharedPages() != nil {
		return cachedFile{}, false
	}
	writes, ok := f.Writes()
	if !ok {
		return cachedFile{}, false
	}
	st, err := host.HostStat()
	if err != nil {
		return cachedFile{}, false
	}
	return cachedFile{
		fileReader: fileReader{f},
		k:          k,
		id:         mm.FileID{Dev: unix.Mkdev(st.Dev_major, st.Dev_minor), Ino: st.Ino},
		version: mm.FileVersion{
			Size:   int64(st.Size),
			Mtime:  unix.Timespec{Sec: st.Mtime.Sec, Nsec: int64(st.Mtime.Nsec)},
			Ctime:  unix.Timespec{Sec: st.Ctime.Sec, Nsec: int64(st.Ctime.Nsec)},
			Writes: writes,
		},
	}, true
}

// Pages implements loader.CachedFile.
func (c cachedFile) Pages(first, n uint64) ([]uint64, error) {
	return c.k.pages.Pages(c.id, c.version, first, n, func(dst []byte, off int64) (int, error) {
		return c.f.PRead(context.Background(), dst, off)
	})
}

// Release implements loader.CachedFile.
func (c cachedFile) Release(frames []uint64) { c.k.pages.Release(frames) }

// PageBytes implements loader.CachedFile.
func (c cachedFile) PageBytes(frame uint64) []byte { return c.k.phys.Frame(frame) }

// framePages are the pages of a file mapping: frame 0 (past the end of
// the file) reads as zeros.
type framePages []uint64

func (p framePages) Frame(i uint64) uint64 { return p[i] }

func (framePages) Fill(uint64, []byte) {}

// MapFile maps length bytes of the regular file f from off into as with
// MAP_PRIVATE semantics, from the page cache, as mmap(2) would at addr
// with prot and flags (whose mapping type is ignored). ok is false for a
// file the page cache does not hold (see cachedFile): the caller then
// copies the file itself, and counts that with NoteFileCopy.
func (k *Kernel) MapFile(ctx context.Context, as *mm.AddressSpace, f *vfs.File, addr, length uint64, prot, flags int, off uint64) (start uint64, ok bool, err error) {
	c, ok := k.cachedFile(ctx, f)
	if !ok {
		return 0, false, nil
	}
	size := (length + mm.PageSize - 1) &^ (mm.PageSize - 1)
	if size < length {
		return 0, true, unix.ENOMEM
	}
	frames, err := c.Pages(off/mm.PageSize, size/mm.PageSize)
	if err != nil {
		return 0, true, err
	}
	defer c.Release(frames)
	flags = flags&^(unix.MAP_TYPE|unix.MAP_SHARED_VALIDATE) | unix.MAP_PRIVATE
	start, err = as.MapFile(addr, length, prot, flags, framePages(frames))
	return start, true, err
}

// NoteFileCopy counts n file bytes copied into guest memory outside the
// page cache, for Stats.
func (k *Kernel) NoteFileCopy(n uint64) { k.pages.NoteCopied(n) }
