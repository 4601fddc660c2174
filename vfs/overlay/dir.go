package overlay

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// lookup returns the child name of a layer's directory and its
// attributes.
func lookup(ctx context.Context, dir vfs.Inode, name string) (vfs.Inode, unix.Statx_t, error) {
	c, err := dir.Lookup(ctx, name)
	if err != nil {
		return nil, unix.Statx_t{}, err
	}
	st, err := c.Stat(ctx)
	if err != nil {
		return nil, st, err
	}
	return c, st, nil
}

// list calls fn for the entries of a layer's directory until it returns
// false.
func list(ctx context.Context, dir vfs.Inode, fn func(vfs.Dirent) bool) error {
	impl, err := dir.Open(ctx, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer impl.Release()
	dr, ok := impl.(vfs.DirReader)
	if !ok {
		return unix.ENOTDIR
	}
	return dr.ReadDir(ctx, 2, fn)
}

// childLocked returns the child name of the directory in the merged
// view.
func (in *inode) childLocked(ctx context.Context, name string) (*inode, error) {
	if in.typ != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	if c := in.children[name]; c != nil {
		return c, nil
	}
	c := &inode{fs: in.fs, parent: in, name: name}
	var ust unix.Statx_t
	if in.upper != nil {
		var err error
		if c.upper, ust, err = lookup(ctx, in.upper, name); err != nil && err != unix.ENOENT {
			return nil, err
		}
		c.typ, c.ino = uint32(ust.Mode)&unix.S_IFMT, upperIno(ust.Ino)
	}
	if c.upper == nil || c.typ == unix.S_IFDIR {
		lower, lst, err := in.lowerChildLocked(ctx, name)
		ltyp := uint32(lst.Mode) & unix.S_IFMT
		switch {
		case err != nil && (err != unix.ENOENT || c.upper == nil):
			return nil, err
		case err == nil && c.upper == nil:
			c.lower, c.typ, c.ino = lower, ltyp, lowerIno(lst.Ino)
		case err == nil && ltyp == unix.S_IFDIR:
			// Both are directories: merged.
			c.lower, c.ino = lower, lowerIno(lst.Ino)
		}
	}
	if c.upper != nil && c.typ != unix.S_IFDIR && ust.Nlink > 1 {
		if l := in.fs.links[c.upper]; l != nil {
			c = l
		} else {
			in.fs.links[c.upper] = c
		}
	}
	in.addChildLocked(name, c)
	return c, nil
}

// lowerChildLocked returns the lower child name of the directory in, if
// it shows.
func (in *inode) lowerChildLocked(ctx context.Context, name string) (vfs.Inode, unix.Statx_t, error) {
	if in.lower == nil || in.whiteouts[name] {
		return nil, unix.Statx_t{}, unix.ENOENT
	}
	return lookup(ctx, in.lower, name)
}

// hidesLocked reports whether removing or replacing name in the
// directory in must leave a whiteout: whether a lower entry shows there.
func (in *inode) hidesLocked(ctx context.Context, name string) (bool, error) {
	if in.lower == nil || in.whiteouts[name] {
		return false, nil
	}
	_, err := in.lower.Lookup(ctx, name)
	switch err {
	case nil:
		return true, nil
	case unix.ENOENT:
		return false, nil
	}
	return false, err
}

func (in *inode) whiteoutLocked(name string) {
	if in.whiteouts == nil {
		in.whiteouts = make(map[string]bool)
	}
	in.whiteouts[name] = true
}

func (in *inode) addChildLocked(name string, c *inode) {
	if in.children == nil {
		in.children = make(map[string]*inode)
	}
	in.children[name] = c
}

// lowerShowsLocked reports whether the directory in shows lower entries.
func (in *inode) lowerShowsLocked(ctx context.Context) (bool, error) {
	if in.lower == nil {
		return false, nil
	}
	shows := false
	err := list(ctx, in.lower, func(d vfs.Dirent) bool {
		shows = !in.whiteouts[d.Name]
		return !shows
	})
	return shows, err
}

// emptyLocked reports whether the directory in is empty in the merged
// view.
func (in *inode) emptyLocked(ctx context.Context) (bool, error) {
	if in.upper != nil {
		empty := true
		if err := list(ctx, in.upper, func(vfs.Dirent) bool {
			empty = false
			return false
		}); err != nil || !empty {
			return false, err
		}
	}
	shows, err := in.lowerShowsLocked(ctx)
	return !shows, err
}

// removedLocked records that the child c lost its name name in in.
func (in *inode) removedLocked(ctx context.Context, name string, c *inode) {
	delete(in.children, name)
	if c.parent == in && c.name == name {
		c.parent = nil
	}
	if c.upper == nil || in.fs.links[c.upper] != c {
		return
	}
	if st, err := c.upper.Stat(ctx); err != nil || st.Nlink <= 1 {
		delete(in.fs.links, c.upper)
	}
}

// Lookup implements vfs.Inode.
func (in *inode) Lookup(ctx context.Context, name string) (vfs.Inode, error) {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	c, err := in.childLocked(ctx, name)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// mustNotExistLocked returns EEXIST if name shows in the directory in.
func (in *inode) mustNotExistLocked(ctx context.Context, name string) error {
	switch _, err := in.childLocked(ctx, name); err {
	case nil:
		return unix.EEXIST
	case unix.ENOENT:
		return nil
	default:
		return err
	}
}

// Create implements vfs.Inode. An object made over a whiteout keeps the
// lower entry hidden: a directory made there is opaque.
func (in *inode) Create(ctx context.Context, name string, opts *vfs.CreateOptions) (vfs.Inode, error) {
	if in.typ != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	if err := in.copyUp(ctx, -1); err != nil {
		return nil, err
	}
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if err := in.mustNotExistLocked(ctx, name); err != nil {
		return nil, err
	}
	upper, err := in.upper.Create(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	st, err := upper.Stat(ctx)
	if err != nil {
		return nil, err
	}
	c := &inode{fs: in.fs, ino: upperIno(st.Ino), typ: opts.Mode & unix.S_IFMT, upper: upper, parent: in, name: name}
	in.addChildLocked(name, c)
	return c, nil
}

// Link implements vfs.Inode: the target is copied up and linked in the
// upper layer.
func (in *inode) Link(ctx context.Context, name string, target vfs.Inode) error {
	t, ok := target.(*inode)
	if !ok || t.fs != in.fs {
		return unix.EXDEV
	}
	if in.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if err := t.copyUp(ctx, -1); err != nil {
		return err
	}
	if err := in.copyUp(ctx, -1); err != nil {
		return err
	}
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	if err := in.mustNotExistLocked(ctx, name); err != nil {
		return err
	}
	if err := in.upper.Link(ctx, name, t.upper); err != nil {
		return err
	}
	in.fs.links[t.upper] = t
	in.addChildLocked(name, t)
	return nil
}

// Unlink implements vfs.Inode. A directory must be empty in the merged
// view; a lower name leaves a whiteout.
func (in *inode) Unlink(ctx context.Context, name string, dir bool) error {
	if in.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if err := in.copyUp(ctx, -1); err != nil {
		return err
	}
	fs := in.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	c, err := in.childLocked(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case dir && c.typ != unix.S_IFDIR:
		return unix.ENOTDIR
	case !dir && c.typ == unix.S_IFDIR:
		return unix.EISDIR
	}
	if dir {
		switch empty, err := c.emptyLocked(ctx); {
		case err != nil:
			return err
		case !empty:
			return unix.ENOTEMPTY
		}
	}
	hide, err := in.hidesLocked(ctx, name)
	if err != nil {
		return err
	}
	_, err = in.upper.Lookup(ctx, name)
	switch {
	case err == nil:
		err = in.upper.Unlink(ctx, name, dir)
	case err == unix.ENOENT:
		// Only a whiteout changes: the directory still changes.
		t := unix.NsecToTimespec(time.Now().UnixNano())
		err = in.upper.SetStat(ctx, &vfs.SetStat{Mask: unix.STATX_MTIME, Mtime: t})
	}
	if err != nil {
		return err
	}
	if hide {
		in.whiteoutLocked(name)
	}
	in.removedLocked(ctx, name, c)
	return nil
}

// Rename implements vfs.Inode. The objects that move are copied up
// first; a directory that shows lower entries cannot move (EXDEV). Lower
// names moved away or replaced leave whiteouts, so a directory that
// moves is opaque at its new place.
func (in *inode) Rename(ctx context.Context, oldName string, newDir vfs.Inode, newName string, flags uint32) error {
	nd, ok := newDir.(*inode)
	if !ok || nd.fs != in.fs {
		return unix.EXDEV
	}
	if in.typ != unix.S_IFDIR || nd.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	fs := in.fs
	fs.mu.Lock()
	old, target, err := in.checkRenameLocked(ctx, oldName, nd, newName, flags)
	fs.mu.Unlock()
	if err != nil || old == nil {
		return err
	}
	moved := []*inode{old}
	if flags&unix.RENAME_EXCHANGE != 0 {
		moved = append(moved, target)
	}
	for _, c := range append(moved, in, nd) {
		if err := c.copyUp(ctx, -1); err != nil {
			return err
		}
	}

	fs.mu.Lock()
	defer fs.mu.Unlock()
	if in.children[oldName] != old || nd.children[newName] != target {
		return unix.ENOENT
	}
	hideOld, err := in.hidesLocked(ctx, oldName)
	if err != nil {
		return err
	}
	hideNew, err := nd.hidesLocked(ctx, newName)
	if err != nil {
		return err
	}
	if err := in.upper.Rename(ctx, oldName, nd.upper, newName, flags); err != nil {
		return err
	}
	if hideOld {
		in.whiteoutLocked(oldName)
	}
	if hideNew {
		nd.whiteoutLocked(newName)
	}
	delete(in.children, oldName)
	delete(nd.children, newName)
	old.moveLocked(nd, newName)
	switch {
	case flags&unix.RENAME_EXCHANGE != 0:
		target.moveLocked(in, oldName)
	case target != nil:
		nd.removedLocked(ctx, newName, target)
	}
	return nil
}

// checkRenameLocked returns the objects a rename moves and replaces, and
// applies the rules that depend on the merged view. old is nil when
// there is nothing to do.
func (in *inode) checkRenameLocked(ctx context.Context, oldName string, nd *inode, newName string, flags uint32) (old, target *inode, err error) {
	exchange := flags&unix.RENAME_EXCHANGE != 0
	if old, err = in.childLocked(ctx, oldName); err != nil {
		return nil, nil, err
	}
	target, err = nd.childLocked(ctx, newName)
	switch {
	case err == unix.ENOENT && !exchange:
		target = nil
	case err != nil:
		return nil, nil, err
	case flags&unix.RENAME_NOREPLACE != 0:
		return nil, nil, unix.EEXIST
	}
	if target == old {
		return nil, nil, nil
	}
	if target != nil && !exchange {
		switch {
		case old.typ == unix.S_IFDIR && target.typ != unix.S_IFDIR:
			return nil, nil, unix.ENOTDIR
		case old.typ != unix.S_IFDIR && target.typ == unix.S_IFDIR:
			return nil, nil, unix.EISDIR
		case target.typ == unix.S_IFDIR:
			switch empty, err := target.emptyLocked(ctx); {
			case err != nil:
				return nil, nil, err
			case !empty:
				return nil, nil, unix.ENOTEMPTY
			}
		}
	}
	moved := []*inode{old}
	if exchange {
		moved = append(moved, target)
	}
	for _, c := range moved {
		if c.typ != unix.S_IFDIR {
			continue
		}
		switch shows, err := c.lowerShowsLocked(ctx); {
		case err != nil:
			return nil, nil, err
		case shows:
			return nil, nil, unix.EXDEV
		}
	}
	return old, target, nil
}

// moveLocked gives the copied-up object c its new place. A directory
// that moves leaves its lower directory behind.
func (in *inode) moveLocked(parent *inode, name string) {
	in.parent, in.name = parent, name
	in.lower, in.whiteouts = nil, nil
	parent.addChildLocked(name, in)
}

// readDir lists the merged directory: upper entries, then the lower
// entries that show and that the upper layer does not hide.
func (in *inode) readDir(ctx context.Context) ([]vfs.Dirent, error) {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	var lower []vfs.Dirent
	lowerIdx := make(map[string]int)
	if in.lower != nil {
		if err := list(ctx, in.lower, func(d vfs.Dirent) bool {
			if !in.whiteouts[d.Name] {
				lowerIdx[d.Name] = len(lower)
				lower = append(lower, d)
			}
			return true
		}); err != nil {
			return nil, err
		}
	}
	var out []vfs.Dirent
	add := func(d vfs.Dirent) {
		if c := in.children[d.Name]; c != nil {
			d.Ino = c.ino
		}
		d.Next = int64(len(out)) + 3
		out = append(out, d)
	}
	if in.upper != nil {
		if err := list(ctx, in.upper, func(d vfs.Dirent) bool {
			d.Ino = upperIno(d.Ino)
			if i, ok := lowerIdx[d.Name]; ok {
				if d.Type == unix.DT_DIR && lower[i].Type == unix.DT_DIR {
					d.Ino = lowerIno(lower[i].Ino)
				}
				lower[i].Name = ""
			}
			add(d)
			return true
		}); err != nil {
			return nil, err
		}
	}
	for _, d := range lower {
		if d.Name != "" {
			d.Ino = lowerIno(d.Ino)
			add(d)
		}
	}
	return out, nil
}

// dirFile is an open merged directory. It lists a snapshot of the merged
// view taken when the listing starts, so offsets stay stable however the
// directory changes.
type dirFile struct {
	vfs.DirFileBase
	in *inode

	mu       sync.Mutex
	snapshot []vfs.Dirent
}

// Sync implements vfs.Syncer.
func (d *dirFile) Sync(context.Context) error {
	return nil
}

// ReadDir implements vfs.DirReader.
func (d *dirFile) ReadDir(ctx context.Context, off int64, emit func(vfs.Dirent) bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 2 || d.snapshot == nil {
		s, err := d.in.readDir(ctx)
		if err != nil {
			return err
		}
		d.snapshot = s
	}
	for i := off - 2; i >= 0 && i < int64(len(d.snapshot)); i++ {
		if !emit(d.snapshot[i]) {
			break
		}
	}
	return nil
}
