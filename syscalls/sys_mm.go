package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

var memoryEntries = []entryAt{
	{unix.SYS_BRK, Entry{"brk", sysBrk, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_MMAP, Entry{"mmap", sysMmap, Partial, "anonymous mappings; MAP_PRIVATE of regular files (host files through a page cache); MAP_SHARED of tmpfs and memfd files, and of host files opened O_RDWR (written back by msync, munmap and exit); MAP_SHARED of host files opened O_RDONLY, as a snapshot", []Arg{ArgHex, ArgHex, ArgHex, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_MSYNC, Entry{"msync", sysMsync, Supported, "", []Arg{ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_MUNMAP, Entry{"munmap", sysMunmap, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_MPROTECT, Entry{"mprotect", sysMprotect, Supported, "", []Arg{ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_MREMAP, Entry{"mremap", sysMremap, Supported, "", []Arg{ArgHex, ArgHex, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_MADVISE, Entry{"madvise", sysMadvise, Partial, "DONTNEED and FREE discard; hints accepted", []Arg{ArgHex, ArgHex, ArgInt}}},
}

func sysBrk(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return t.ThreadGroup().MM().Brk(a[0]), nil
}

func sysMmap(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := int(int32(a[3]))
	if a[5]&0xfff != 0 {
		return 0, unix.EINVAL
	}
	if flags&unix.MAP_ANONYMOUS == 0 {
		return mmapFile(t, a[0], a[1], int(int32(a[2])), flags, a[4], a[5])
	}
	as := t.ThreadGroup().MM()
	if err := mayMap(as, a[0], a[1], int(int32(a[2])), flags); err != nil {
		return 0, err
	}
	return as.Mmap(a[0], a[1], int(int32(a[2])), flags)
}

// mayMap checks RLIMIT_AS and RLIMIT_DATA for a mapping that is otherwise
// valid, so that a malformed request still gets its EINVAL first.
func mayMap(as *mm.AddressSpace, addr, length uint64, prot, flags int) error {
	switch flags & unix.MAP_TYPE {
	case unix.MAP_PRIVATE, unix.MAP_SHARED, unix.MAP_SHARED_VALIDATE:
	default:
		return nil
	}
	if length == 0 {
		return nil
	}
	return as.MayMap(addr, length, prot, flags)
}

// mmapFile maps a regular file privately (and a host file shared
// read-only, as a snapshot): from the page cache where it holds the file,
// otherwise by filling the pages from the file when the mapping is made.
// Either way a private mapping behaves as on Linux except that later
// changes to the file do not show through pages not yet written.
func mmapFile(t *kernel.Task, addr, length uint64, prot, flags int, fd, off uint64) (uint64, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if length == 0 {
		return 0, unix.EINVAL
	}
	if !f.IsRegular() {
		return 0, unix.ENODEV
	}
	access := f.StatusFlags() & unix.O_ACCMODE
	shared := flags&unix.MAP_TYPE == unix.MAP_SHARED || flags&unix.MAP_TYPE == unix.MAP_SHARED_VALIDATE
	switch {
	case access == unix.O_WRONLY:
		return 0, unix.EACCES
	case shared && prot&unix.PROT_WRITE != 0 && access != unix.O_RDWR:
		return 0, unix.EACCES
	case off+length < off || int64(off+length) < 0:
		return 0, unix.EOVERFLOW
	case shared && prot&unix.PROT_WRITE != 0 && sealedForWrite(f):
		return 0, unix.EPERM
	}
	if err := mayMap(t.ThreadGroup().MM(), addr, length, prot, flags); err != nil {
		return 0, err
	}
	if sharer, ok := f.Impl().(vfs.Sharer); ok && shared {
		return mmapShared(t, f, addr, length, prot, flags, func(length uint64) ([]uint64, func(), error) {
			ids, err := sharer.Share(t.Context(), int64(off), int64(length), t.Kernel().Pages())
			return ids, func() {}, err
		})
	}
	if shared && access == unix.O_RDWR {
		if _, ok := f.Impl().(vfs.HostFile); ok {
			return mmapShared(t, f, addr, length, prot, flags, func(length uint64) ([]uint64, func(), error) {
				frames, release, ok, err := t.Kernel().ShareHostFile(t.Context(), f, off, length)
				if !ok {
					return nil, nil, unix.ENODEV
				}
				return frames, release, err
			})
		}
	}
	if shared && prot&unix.PROT_WRITE != 0 {
		return 0, unix.ENODEV
	}
	as := t.ThreadGroup().MM()
	if start, ok, err := t.Kernel().MapFile(t.Context(), as, f, addr, length, prot, flags, off); ok {
		if err != nil {
			return 0, err
		}
		nameMapping(t, f, start)
		return start, nil
	}
	anon := flags&^(unix.MAP_TYPE|unix.MAP_SHARED_VALIDATE) | unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	start, err := as.Mmap(addr, length, unix.PROT_READ|unix.PROT_WRITE, anon)
	if err != nil {
		return 0, err
	}
	// The mapping's last page shows the file's bytes past length too, as
	// on Linux: ld.so maps a segment and zeroes only past p_filesz.
	if err := fillFromFile(t, f, start, (length+0xfff)&^0xfff, int64(off)); err != nil {
		as.Munmap(start, length)
		return 0, err
	}
	if prot != unix.PROT_READ|unix.PROT_WRITE {
		if err := as.Mprotect(start, length, prot); err != nil {
			as.Munmap(start, length)
			return 0, err
		}
	}
	nameMapping(t, f, start)
	return start, nil
}

// sealedForWrite reports a file with F_SEAL_WRITE or F_SEAL_FUTURE_WRITE,
// which no new mapping may write.
func sealedForWrite(f *vfs.File) bool {
	s, ok := f.Impl().(vfs.Sealer)
	return ok && s.Seals()&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0
}

// nameMapping names the mapping at start after f's path, for /proc.
func nameMapping(t *kernel.Task, f *vfs.File, start uint64) {
	if n, ok := f.Impl().(vfs.Namer); ok {
		if name, ok := n.ProcName(); ok {
			t.ThreadGroup().MM().SetName(start, name)
			return
		}
	}
	if vd, ok := f.VirtualDentry(); ok {
		if path, ok := t.Kernel().VFS().PathOf(t.FSContext().Root, vd); ok {
			t.ThreadGroup().MM().SetName(start, path)
		}
	}
}

// mmapShared maps the file's own pages (a tmpfs file's, or a host file's
// held for its shared mappings), which share returns for the mapping's
// page-aligned length with a function that drops the references it took,
// so that the mapping, other mappings and the file's readers and writers
// all see the same bytes.
func mmapShared(t *kernel.Task, f *vfs.File, addr, length uint64, prot, flags int, share func(length uint64) ([]uint64, func(), error)) (uint64, error) {
	as := t.ThreadGroup().MM()
	length = (length + 0xfff) &^ 0xfff
	// Each page of the mapping takes a guest frame up front: no mapping
	// may be larger than the sandbox's memory.
	if length == 0 || length > t.Kernel().Config().MemoryLimit {
		return 0, unix.ENOMEM
	}
	ids, release, err := share(length)
	if err != nil {
		return 0, err
	}
	defer release()
	// Let mm pick (or check) the place, as it does for any mapping, then
	// put the file's pages there.
	anon := flags&^(unix.MAP_TYPE|unix.MAP_SHARED_VALIDATE) | unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	start, err := as.Mmap(addr, length, unix.PROT_NONE, anon)
	if err != nil {
		return 0, err
	}
	if err := as.Munmap(start, length); err != nil {
		return 0, err
	}
	if err := as.MapFrames(start, ids, prot, 0, ""); err != nil {
		return 0, err
	}
	nameMapping(t, f, start)
	return start, nil
}

func sysMsync(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const known = unix.MS_ASYNC | unix.MS_INVALIDATE | unix.MS_SYNC
	switch {
	case a[0]&0xfff != 0, a[2]&^known != 0, a[2]&unix.MS_ASYNC != 0 && a[2]&unix.MS_SYNC != 0:
		return 0, unix.EINVAL
	case !t.ThreadGroup().MM().Covered(a[0], a[1]):
		return 0, unix.ENOMEM
	}
	// Shared mappings of tmpfs files are the file's own memory; those of
	// host files are written back.
	if err := t.Kernel().MsyncShared(t.Context(), t.ThreadGroup().MM(), a[0], a[1]); err != nil {
		return 0, unix.EIO
	}
	return 0, nil
}

// fillFromFile reads the file from off into the new mapping at start, up
// to length bytes or the end of the file; the rest stays zero.
func fillFromFile(t *kernel.Task, f *vfs.File, start, length uint64, off int64) error {
	pin := t.Pinned()
	defer pin.Release()
	if err := t.ThreadGroup().MM().Pin(pin, start, length, true); err != nil {
		return err
	}
	for _, s := range pin.Slices {
		n, err := f.PRead(t.Context(), s, off)
		t.Kernel().NoteFileCopy(uint64(max(n, 0)))
		if err != nil {
			return err
		}
		if n < len(s) {
			return nil
		}
		off += int64(n)
	}
	return nil
}

func sysMunmap(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.Kernel().MunmapShared(t.Context(), t.ThreadGroup().MM(), a[0], a[1])
}

func sysMprotect(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().MM().Mprotect(a[0], a[1], int(int32(a[2])))
}

func sysMremap(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return t.ThreadGroup().MM().Mremap(a[0], a[1], a[2], int(int32(a[3])), a[4])
}

func sysMadvise(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().MM().Madvise(a[0], a[1], int(int32(a[2])))
}
