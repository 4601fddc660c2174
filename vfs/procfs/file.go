package procfs

import (
	"context"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// file is an open regular file: the contents rendered at open.
type file struct {
	n    *node
	data []byte
}

func (f *file) Read(_ context.Context, _ *vfs.File, dst []byte, off int64) (int, error) {
	if off >= int64(len(f.data)) {
		return 0, nil
	}
	return copy(dst, f.data[off:]), nil
}

func (f *file) Write(ctx context.Context, _ *vfs.File, src []byte, off int64) (int, error) {
	if f.n.e.write == nil {
		return 0, f.n.e.writeErr
	}
	c, err := f.n.check(ctx)
	if err != nil {
		return 0, err
	}
	return f.n.e.write(c, src, off)
}

func (f *file) Release() {}

// Seek implements vfs.Seeker: seq_file's lseek for most files, a file
// of size 0 for the others, as on Linux.
func (f *file) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	if f.n.e.seq && whence != unix.SEEK_SET && whence != unix.SEEK_CUR {
		return 0, unix.EINVAL
	}
	return vfs.SeekTo(cur, off, whence, 0)
}

// dirFile is an open directory. It implements no vfs.Syncer: fsync(2)
// of a procfs directory fails with EINVAL, as on Linux.
type dirFile struct {
	vfs.DirFileBase
	n *node
}

// Seek overrides vfs.DirFileBase's: Linux's procfs directories seek
// like a file of size 0.
func (d *dirFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	return vfs.SeekTo(cur, off, whence, 0)
}

// ReadDir implements vfs.DirReader. The named entries come first, at
// offsets 2, 3, ...; a numbered entry's offset is its number past them,
// so a listing spread over several calls sees every process (thread,
// file descriptor) that stays exactly once, in ascending order.
func (d *dirFile) ReadDir(ctx context.Context, off int64, emit func(vfs.Dirent) bool) error {
	n := d.n
	c, err := n.check(ctx)
	if err != nil {
		return err
	}
	for i, e := range n.e.fixed {
		at := int64(2 + i)
		if at < off {
			continue
		}
		if !emit(vfs.Dirent{Name: e.name, Ino: childIno(n.ino, e.name), Type: uint8(e.typ() >> 12), Next: at + 1}) {
			return nil
		}
	}
	if n.e.ids == nil {
		return nil
	}
	base := int64(2 + len(n.e.fixed))
	for _, id := range c.ids() {
		at := base + int64(id)
		if at < off {
			continue
		}
		name := strconv.Itoa(int(id))
		if !emit(vfs.Dirent{Name: name, Ino: childIno(n.ino, name), Type: uint8(n.e.child.typ() >> 12), Next: at + 1}) {
			return nil
		}
	}
	return nil
}
