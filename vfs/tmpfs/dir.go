package tmpfs

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// touch updates a directory's mtime and ctime after a change.
func (in *inode) touch() {
	t := now()
	in.mu.Lock()
	in.mtime, in.ctime = t, t
	in.mu.Unlock()
}

func (in *inode) addLinks(delta int) {
	in.mu.Lock()
	in.nlink = uint32(int(in.nlink) + delta)
	if delta < 0 {
		in.ctime = now()
	}
	in.mu.Unlock()
}

func (in *inode) links() uint32 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.nlink
}

// checkDirLocked returns an error unless in is a directory that still
// exists.
func (in *inode) checkDirLocked() error {
	if in.typ() != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if in.links() == 0 {
		return unix.ENOENT
	}
	return nil
}

func (in *inode) insertLocked(name string, child *inode) {
	e := &dirent{name: name, inode: child, cookie: in.nextCookie}
	in.nextCookie++
	in.entries[name] = e
	in.order.ReplaceOrInsert(e)
}

func (in *inode) removeLocked(e *dirent) {
	delete(in.entries, e.name)
	in.order.Delete(e)
}

// Lookup implements vfs.Inode.
func (in *inode) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if err := in.checkDirLocked(); err != nil {
		return nil, err
	}
	e := in.entries[name]
	if e == nil {
		return nil, unix.ENOENT
	}
	return e.inode, nil
}

// Create implements vfs.Inode.
func (in *inode) Create(_ context.Context, name string, opts *vfs.CreateOptions) (vfs.Inode, error) {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if err := in.checkDirLocked(); err != nil {
		return nil, err
	}
	if in.entries[name] != nil {
		return nil, unix.EEXIST
	}
	child := in.fs.newInode(opts)
	in.insertLocked(name, child)
	if child.typ() == unix.S_IFDIR {
		in.addLinks(1)
	}
	in.touch()
	return child, nil
}

// Link implements vfs.Inode.
func (in *inode) Link(_ context.Context, name string, target vfs.Inode) error {
	t, ok := target.(*inode)
	if !ok || t.fs != in.fs {
		return unix.EXDEV
	}
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if err := in.checkDirLocked(); err != nil {
		return err
	}
	if in.entries[name] != nil {
		return unix.EEXIST
	}
	switch n := t.links(); {
	case n == 0:
		return unix.ENOENT
	case n >= maxLinks:
		return unix.EMLINK
	}
	t.addLinks(1)
	t.mu.Lock()
	t.ctime = now()
	t.mu.Unlock()
	in.insertLocked(name, t)
	in.touch()
	return nil
}

// Unlink implements vfs.Inode.
func (in *inode) Unlink(_ context.Context, name string, dir bool) error {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if err := in.checkDirLocked(); err != nil {
		return err
	}
	e := in.entries[name]
	switch {
	case e == nil:
		return unix.ENOENT
	case dir && e.inode.typ() != unix.S_IFDIR:
		return unix.ENOTDIR
	case !dir && e.inode.typ() == unix.S_IFDIR:
		return unix.EISDIR
	case dir && len(e.inode.entries) > 0:
		return unix.ENOTEMPTY
	}
	in.removeLocked(e)
	in.dropLocked(e.inode)
	in.touch()
	return nil
}

// dropLocked removes one link to child, an entry just removed from in;
// the last one frees its space unless the file is still open.
func (in *inode) dropLocked(child *inode) {
	if child.typ() == unix.S_IFDIR {
		child.addLinks(-2)
		in.addLinks(-1)
	} else {
		child.addLinks(-1)
	}
	child.mu.Lock()
	defer child.mu.Unlock()
	if child.nlink == 0 {
		child.fs.inodes.Add(-1)
		child.freeIfGoneLocked()
	}
}

// Rename implements vfs.Inode.
func (in *inode) Rename(_ context.Context, oldName string, newDir vfs.Inode, newName string, flags uint32) error {
	nd, ok := newDir.(*inode)
	if !ok || nd.fs != in.fs {
		return unix.EXDEV
	}
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if err := in.checkDirLocked(); err != nil {
		return err
	}
	if err := nd.checkDirLocked(); err != nil {
		return err
	}
	oe := in.entries[oldName]
	if oe == nil {
		return unix.ENOENT
	}
	ne := nd.entries[newName]
	exchange := flags&unix.RENAME_EXCHANGE != 0
	switch {
	case ne == nil && exchange:
		return unix.ENOENT
	case ne != nil && flags&unix.RENAME_NOREPLACE != 0:
		return unix.EEXIST
	case ne == oe, ne != nil && ne.inode == oe.inode:
		return nil
	}
	src := oe.inode
	srcDir := src.typ() == unix.S_IFDIR
	if ne != nil && !exchange {
		dst := ne.inode
		switch dstDir := dst.typ() == unix.S_IFDIR; {
		case srcDir && !dstDir:
			return unix.ENOTDIR
		case !srcDir && dstDir:
			return unix.EISDIR
		case dstDir && len(dst.entries) > 0:
			return unix.ENOTEMPTY
		}
	}
	in.removeLocked(oe)
	if ne != nil {
		nd.removeLocked(ne)
	}
	nd.insertLocked(newName, src)
	if srcDir && in != nd {
		in.addLinks(-1)
		nd.addLinks(1)
	}
	if ne != nil {
		dst := ne.inode
		if exchange {
			in.insertLocked(oldName, dst)
			if dst.typ() == unix.S_IFDIR && in != nd {
				nd.addLinks(-1)
				in.addLinks(1)
			}
		} else {
			nd.dropLocked(dst)
		}
	}
	t := now()
	for _, x := range []*inode{src, in, nd} {
		x.mu.Lock()
		x.ctime = t
		if x != src {
			x.mtime = t
		}
		x.mu.Unlock()
	}
	return nil
}

// dirFile is an open directory.
type dirFile struct {
	vfs.DirFileBase
	in *inode
}

// Sync implements vfs.Syncer.
func (d *dirFile) Sync(context.Context) error {
	return nil
}

// ReadDir implements vfs.DirReader. Entry offsets are cookies given at
// insertion, so a listing spread over several calls sees every entry
// that stays in the directory exactly once.
func (d *dirFile) ReadDir(_ context.Context, off int64, emit func(vfs.Dirent) bool) error {
	in := d.in
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	in.order.AscendGreaterOrEqual(&dirent{cookie: off}, func(e *dirent) bool {
		return emit(vfs.Dirent{
			Name: e.name,
			Ino:  e.inode.ino,
			Type: uint8(e.inode.typ() >> 12),
			Next: e.cookie + 1,
		})
	})
	in.mu.Lock()
	in.atime = now()
	in.mu.Unlock()
	return nil
}
