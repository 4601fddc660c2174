package tmpfs

import (
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var (
	_ vfs.Sealer = (*regFile)(nil)
	_ vfs.Namer  = (*regFile)(nil)
)

// MakeMemfd turns f, a regular file of a tmpfs, into a file of
// memfd_create: /proc shows it as "/memfd:NAME (deleted)", and its seals
// start as seals.
func MakeMemfd(f *vfs.File, name string, seals uint32) error {
	r, ok := f.Impl().(*regFile)
	if !ok {
		return unix.EINVAL
	}
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	in.memfd, in.memfdName, in.seals = true, name, seals
	return nil
}

// ProcName implements vfs.Namer.
func (r *regFile) ProcName() (string, bool) {
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	return "/memfd:" + in.memfdName + " (deleted)", in.memfd
}

// Seals implements vfs.Sealer.
func (r *regFile) Seals() uint32 {
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	return r.in.seals
}

// AddSeals implements vfs.Sealer as Linux's memfd_add_seals does.
func (r *regFile) AddSeals(seals uint32) error {
	in := r.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.seals&unix.F_SEAL_SEAL != 0 {
		return unix.EPERM
	}
	if seals&unix.F_SEAL_WRITE != 0 && in.seals&unix.F_SEAL_WRITE == 0 && in.data.shared.mapped() {
		return unix.EBUSY
	}
	// F_SEAL_EXEC on an executable file makes it W^X for good.
	if seals&unix.F_SEAL_EXEC != 0 && in.mode&0o111 != 0 {
		seals |= unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE
	}
	in.seals |= seals
	return nil
}

// checkWriteLocked applies the seals to a write of n bytes at off:
// F_SEAL_WRITE and F_SEAL_FUTURE_WRITE forbid writes, F_SEAL_GROW those
// that would make the file longer.
func (in *inode) checkWriteLocked(off int64, n int) error {
	switch {
	case n == 0:
		return nil
	case in.seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0:
		return unix.EPERM
	case in.seals&unix.F_SEAL_GROW != 0 && off+int64(n) > in.data.size:
		return unix.EPERM
	}
	return nil
}

// checkResizeLocked applies F_SEAL_SHRINK and F_SEAL_GROW to a change of
// the file's size.
func (in *inode) checkResizeLocked(size int64) error {
	if size < in.data.size && in.seals&unix.F_SEAL_SHRINK != 0 ||
		size > in.data.size && in.seals&unix.F_SEAL_GROW != 0 {
		return unix.EPERM
	}
	return nil
}

// mapped reports whether a mapping holds any of the shared pages.
func (s *sharedPages) mapped() bool {
	for _, sp := range s.pages {
		if s.alloc.Mapped(sp.id) {
			return true
		}
	}
	return false
}
