package hostfs

import (
	"context"
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// retry repeats a host call interrupted by a signal.
func retry(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// regFile is an open host regular file, read and written with
// pread/pwrite on its own descriptor.
type regFile struct {
	fs   *FS
	fd   int
	once sync.Once
}

func (f *regFile) Read(_ context.Context, _ *vfs.File, dst []byte, off int64) (int, error) {
	return retry(func() (int, error) { return unix.Pread(f.fd, dst, off) })
}

func (f *regFile) Write(_ context.Context, _ *vfs.File, src []byte, off int64) (int, error) {
	return retry(func() (int, error) { return unix.Pwrite(f.fd, src, off) })
}

// Append implements vfs.Appender with pwritev2(RWF_APPEND).
func (f *regFile) Append(_ context.Context, _ *vfs.File, src []byte) (int, int64, error) {
	n, err := retry(func() (int, error) { return unix.Pwritev2(f.fd, [][]byte{src}, -1, unix.RWF_APPEND) })
	if err != nil {
		return n, 0, err
	}
	end, err := unix.Seek(f.fd, 0, unix.SEEK_CUR)
	return n, end, err
}

// HostStat implements vfs.HostFile.
func (f *regFile) HostStat() (unix.Statx_t, error) {
	var st unix.Statx_t
	err := unix.Statx(f.fd, "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS, &st)
	return st, err
}

// Seek implements vfs.Seeker.
func (f *regFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	switch whence {
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		return unix.Seek(f.fd, off, whence)
	}
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return 0, err
	}
	return vfs.SeekTo(cur, off, whence, st.Size)
}

// Allocate implements vfs.Allocator.
func (f *regFile) Allocate(_ context.Context, mode uint32, off, length int64) error {
	return unix.Fallocate(f.fd, mode, off, length)
}

// Sync implements vfs.Syncer.
func (f *regFile) Sync(context.Context) error {
	return unix.Fsync(f.fd)
}

func (f *regFile) Release() {
	f.once.Do(func() { f.fs.close(f.fd) })
}

// dirFile is an open host directory. It lists a snapshot taken when the
// listing starts, so offsets stay stable however the directory changes.
type dirFile struct {
	vfs.DirFileBase
	fs   *FS
	fd   int
	once sync.Once

	mu       sync.Mutex
	snapshot []vfs.Dirent
}

// Sync implements vfs.Syncer.
func (d *dirFile) Sync(context.Context) error {
	return unix.Fsync(d.fd)
}

func (d *dirFile) Release() {
	d.once.Do(func() { d.fs.close(d.fd) })
}

// ReadDir implements vfs.DirReader.
func (d *dirFile) ReadDir(_ context.Context, off int64, emit func(vfs.Dirent) bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 2 || d.snapshot == nil {
		if err := d.load(); err != nil {
			return err
		}
	}
	for i := off - 2; i >= 0 && i < int64(len(d.snapshot)); i++ {
		if !emit(d.snapshot[i]) {
			break
		}
	}
	return nil
}

func (d *dirFile) load() error {
	if _, err := unix.Seek(d.fd, 0, unix.SEEK_SET); err != nil {
		return err
	}
	d.snapshot = d.snapshot[:0]
	buf := make([]byte, 32<<10)
	for {
		n, err := retry(func() (int, error) { return unix.Getdents(d.fd, buf) })
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.LittleEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return unix.EIO
			}
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if s := string(name); s != "." && s != ".." {
				d.snapshot = append(d.snapshot, vfs.Dirent{
					Name: s,
					Ino:  binary.LittleEndian.Uint64(b),
					Type: b[18],
					Next: int64(len(d.snapshot)) + 3,
				})
			}
			b = b[reclen:]
		}
	}
}
