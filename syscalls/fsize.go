package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// errFileTooBig is EFBIG from a write or a size change past RLIMIT_FSIZE;
// the dispatcher follows it with SIGXFSZ to the caller, as Linux does.
var errFileTooBig error = fileTooBig{}

type fileTooBig struct{}

func (fileTooBig) Error() string { return "file size limit exceeded" }
func (fileTooBig) Unwrap() error { return unix.EFBIG }

// fileSizeLimited returns RLIMIT_FSIZE when it applies to a write to f:
// a regular file open for writing, with a limit set.
func fileSizeLimited(t *kernel.Task, f *vfs.File) (uint64, bool) {
	limit := t.ThreadGroup().FileSizeLimit()
	writable := f.StatusFlags()&unix.O_ACCMODE != unix.O_RDONLY
	return limit, limit != unix.RLIM_INFINITY && writable && f.IsRegular()
}

// limitWrite bounds an n-byte write to f at off (-1: the file's offset;
// appendAtEnd: its end) by RLIMIT_FSIZE, as Linux's
// generic_write_check_limits does: a write that starts at or past the
// limit fails with errFileTooBig, one that starts below it is shortened
// to end there. An empty write is never refused.
func limitWrite(t *kernel.Task, f *vfs.File, off int64, n uint64) (uint64, error) {
	n, err := checkCount(n)
	if err != nil || n == 0 {
		return n, err
	}
	limit, ok := fileSizeLimited(t, f)
	if !ok {
		return n, nil
	}
	pos, err := writePosition(t, f, off)
	if err != nil {
		// The write itself reports what is wrong with the file.
		return n, nil
	}
	if uint64(pos) >= limit {
		return 0, errFileTooBig
	}
	return min(n, limit-uint64(pos)), nil
}

// writePosition is where a write at off starts: the end of the file for
// O_APPEND and RWF_APPEND, else off or the file's offset.
func writePosition(t *kernel.Task, f *vfs.File, off int64) (int64, error) {
	if off == appendAtEnd || f.StatusFlags()&unix.O_APPEND != 0 {
		st, err := f.Stat(t.Context())
		return int64(st.Size), err
	}
	if off >= 0 {
		return off, nil
	}
	return f.Seek(t.Context(), 0, unix.SEEK_CUR)
}

// limitVector shortens iovs to what limitWrite allows of their total.
func limitVector(t *kernel.Task, f *vfs.File, off int64, iovs []iovec) ([]iovec, error) {
	total := totalLen(iovs)
	room, err := limitWrite(t, f, off, total)
	if err != nil || room == total {
		return iovs, err
	}
	for i := range iovs {
		if iovs[i].Len >= room {
			iovs[i].Len = room
			return iovs[:i+1], nil
		}
		room -= iovs[i].Len
	}
	return iovs, nil
}

// limitGrowth refuses to make f, a regular file, larger than
// RLIMIT_FSIZE (ftruncate, fallocate), as Linux's inode_newsize_ok does:
// a size up to the limit, or one that does not grow the file, is allowed.
func limitGrowth(t *kernel.Task, f *vfs.File, size int64) error {
	limit, ok := fileSizeLimited(t, f)
	if !ok || size < 0 || uint64(size) <= limit {
		return nil
	}
	st, err := f.Stat(t.Context())
	if err != nil || int64(st.Size) >= size {
		return nil
	}
	return errFileTooBig
}

// limitPathGrowth is limitGrowth for truncate(2), which names a path.
func limitPathGrowth(t *kernel.Task, v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string, size int64) error {
	limit := t.ThreadGroup().FileSizeLimit()
	if limit == unix.RLIM_INFINITY || size < 0 || uint64(size) <= limit {
		return nil
	}
	var st unix.Stat_t
	if err := v.StatAt(ctx, dir, path, 0, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size >= size {
		return nil
	}
	return errFileTooBig
}
