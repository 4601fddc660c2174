package vfs

import (
	"context"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// File change notification (Linux's fsnotify): the VFS reports every
// change made through it to the watches on the inodes involved, as inotify
// events (unix.IN_*); inotify and dnotify are the two kinds of watch.
// Changes made behind the VFS's back (on the host, under a hostfs mount)
// are not seen.

// WatchTarget receives the events of a Watch.
type WatchTarget interface {
	// WatchEvent is called for an event that the watch's mask selects:
	// about the watched inode (name is empty) or, for a directory, about
	// the child called name. unix.IN_IGNORED (the watch is gone: the inode
	// was deleted or its file system unmounted) and unix.IN_UNMOUNT come
	// whatever the mask. It runs on the goroutine that made the change,
	// with no VFS lock held; it must not block.
	WatchEvent(w *Watch, mask, cookie uint32, name string)
}

// watchKey identifies an inode for its watches, as its file system's
// root and the inode's number do (with the device the file system
// reports, for host directories that span several). Every name of an
// inode has its key, whether or not the file system shares one Inode
// between them.
type watchKey struct {
	fsRoot *Dentry
	dev    uint64
	ino    uint64
}

// Watch is a watch on an inode, made by AddWatch. It follows the inode,
// whatever names the inode gets.
type Watch struct {
	v      *VFS
	key    watchKey
	dev    uint64 // the device of the mount it was added through
	fs     FileSystem
	target WatchTarget
	mask   atomic.Uint32
	gone   atomic.Bool
}

// Mask returns the events (and inotify flags) the watch selects.
func (w *Watch) Mask() uint32 { return w.mask.Load() }

// SetMask changes the events the watch selects.
func (w *Watch) SetMask(mask uint32) { w.mask.Store(mask) }

// Ino is the watched inode's number.
func (w *Watch) Ino() uint64 { return w.key.ino }

// Device is the device number (unix.Mkdev) of the file system the watch
// was added on.
func (w *Watch) Device() uint64 { return w.dev }

// Key identifies the watched inode: watches of one inode, through any of
// its names, have equal keys.
func (w *Watch) Key() any { return w.key }

// WatchPath resolves path for inotify_add_watch(2): follow says whether a
// final symbolic link is followed, onlyDir asks for a directory
// (ENOTDIR). The caller needs read permission on the object (EACCES).
func (v *VFS) WatchPath(ctx *Context, path string, follow, onlyDir bool) (VirtualDentry, error) {
	vd, err := v.resolver(ctx, 0).walkAt(nil, path, follow)
	if err != nil {
		return vd, err
	}
	if onlyDir && vd.d.typ != unix.S_IFDIR {
		return VirtualDentry{}, unix.ENOTDIR
	}
	st, err := vd.stat(ctx)
	if err != nil {
		return VirtualDentry{}, err
	}
	if err := ctx.Creds.permission(&st, mayRead); err != nil {
		return VirtualDentry{}, err
	}
	return vd, nil
}

// WatchKey identifies the inode at vd as Watch.Key does.
func (vd VirtualDentry) WatchKey() any { return vd.d.key }

// AddWatch starts a watch on the inode at vd, whose events in mask go to
// target. RemoveWatch ends it.
func (v *VFS) AddWatch(vd VirtualDentry, mask uint32, target WatchTarget) *Watch {
	w := &Watch{v: v, key: vd.d.key, dev: vd.mnt.dev, fs: vd.mnt.fs, target: target}
	w.mask.Store(mask)
	v.watchMu.Lock()
	defer v.watchMu.Unlock()
	if v.watches == nil {
		v.watches = make(map[watchKey][]*Watch)
	}
	v.watches[w.key] = append(v.watches[w.key], w)
	v.watchCount.Add(1)
	return w
}

// RemoveWatch ends w. It returns false when w had already ended (its
// target got or is about to get unix.IN_IGNORED from the VFS).
func (v *VFS) RemoveWatch(w *Watch) bool {
	if !w.gone.CompareAndSwap(false, true) {
		return false
	}
	v.watchMu.Lock()
	defer v.watchMu.Unlock()
	ws := v.watches[w.key]
	if i := slices.Index(ws, w); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
		v.watchCount.Add(-1)
	}
	if len(ws) == 0 {
		delete(v.watches, w.key)
	} else {
		v.watches[w.key] = ws
	}
	return true
}

// watchesOf returns the watches on d's inode, nil when there are none.
func (v *VFS) watchesOf(d *Dentry) []*Watch {
	if v.watchCount.Load() == 0 {
		return nil
	}
	v.watchMu.Lock()
	defer v.watchMu.Unlock()
	return slices.Clone(v.watches[d.key])
}

// deliver sends an event to the watches on d's inode that select it. name is
// the child's for an event in a directory; unlinked says that child's
// name is gone, which IN_EXCL_UNLINK watches ignore.
func (v *VFS) deliver(d *Dentry, mask, cookie uint32, name string, unlinked bool) {
	for _, w := range v.watchesOf(d) {
		m := w.mask.Load()
		if mask&m&(unix.IN_ALL_EVENTS|eventRename) == 0 || name != "" && unlinked && m&unix.IN_EXCL_UNLINK != 0 {
			continue
		}
		w.target.WatchEvent(w, mask, cookie, name)
	}
}

// dirFlag is IN_ISDIR for a directory's events.
func dirFlag(d *Dentry) uint32 {
	if d.typ == unix.S_IFDIR {
		return unix.IN_ISDIR
	}
	return 0
}

// notify reports an event about d to its parent directory's watches
// (with d's name) and then to its own, as fsnotify_parent does.
func (v *VFS) notify(d *Dentry, mask uint32) {
	if v.watchCount.Load() == 0 {
		return
	}
	mask |= dirFlag(d)
	v.treeMu.Lock()
	parent, name := d.parent, d.name
	v.treeMu.Unlock()
	if parent != nil {
		v.deliver(parent, mask, 0, name, d.unlinked.Load())
	}
	v.deliver(d, mask, 0, "", false)
}

// notifyChild reports an event in directory dir about its child called
// name (IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO).
func (v *VFS) notifyChild(dir *Dentry, mask, cookie uint32, name string) {
	if v.watchCount.Load() == 0 {
		return
	}
	v.deliver(dir, mask, cookie, name, false)
}

// notifySelf reports an event to d's own watches only (a link count
// change, IN_MOVE_SELF); as on Linux, these come without IN_ISDIR.
func (v *VFS) notifySelf(d *Dentry, mask uint32) {
	if v.watchCount.Load() == 0 {
		return
	}
	v.deliver(d, mask, 0, "", false)
}

// willLoseLastLink records, before d's name goes, whether it is the
// inode's last: maybeDeleted then reports the inode deleted. Only
// watched inodes are asked (host files know their links only while
// they have a name).
func (v *VFS) willLoseLastLink(ctx context.Context, d *Dentry) {
	if len(v.watchesOf(d)) == 0 {
		return
	}
	last := true
	if d.typ != unix.S_IFDIR {
		if st, err := d.inode.Stat(ctx); err == nil && st.Nlink > 1 {
			last = false
		}
	}
	d.lastLink.Store(last)
}

// maybeDeleted reports d's inode deleted (IN_DELETE_SELF, then the end
// of its watches) once its last name is gone and no open file refers to
// it through d, as Linux does when the inode's last dentry goes.
func (v *VFS) maybeDeleted(d *Dentry) {
	if !d.unlinked.Load() || !d.lastLink.Load() || d.opens.Load() != 0 || v.watchCount.Load() == 0 {
		return
	}
	if !d.deleteNotified.CompareAndSwap(false, true) {
		return
	}
	v.deliver(d, unix.IN_DELETE_SELF, 0, "", false)
	v.endWatches(func(w *Watch) bool { return w.key == d.key }, 0)
}

// endWatches ends the watches that match, telling each target first
// with event (IN_UNMOUNT, or nothing when zero) and then IN_IGNORED.
func (v *VFS) endWatches(match func(*Watch) bool, event uint32) {
	var ended []*Watch
	v.watchMu.Lock()
	for key, ws := range v.watches {
		kept := ws[:0]
		for _, w := range ws {
			if match(w) {
				ended = append(ended, w)
			} else {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 {
			delete(v.watches, key)
		} else {
			v.watches[key] = kept
		}
	}
	v.watchCount.Add(-int32(len(ended)))
	v.watchMu.Unlock()
	// A watch that RemoveWatch ended meanwhile has told its target.
	for _, w := range ended {
		if !w.gone.CompareAndSwap(false, true) {
			continue
		}
		if event != 0 {
			w.target.WatchEvent(w, event, 0, "")
		}
		w.target.WatchEvent(w, unix.IN_IGNORED, 0, "")
	}
}

// unmountedLocked returns those of fss that are no longer mounted
// anywhere. treeMu is held.
func (v *VFS) unmountedLocked(fss []FileSystem) []FileSystem {
	var gone []FileSystem
	for _, fs := range fss {
		if fs == v.root.fs || slices.Contains(gone, fs) {
			continue
		}
		mounted := false
		for _, m := range v.mounts {
			if m.fs == fs {
				mounted = true
				break
			}
		}
		if !mounted {
			gone = append(gone, fs)
		}
	}
	return gone
}

// notifyUnmounted ends the watches on the inodes of the file systems in
// fss, which are no longer mounted: IN_UNMOUNT, then IN_IGNORED.
func (v *VFS) notifyUnmounted(fss []FileSystem) {
	if len(fss) == 0 || v.watchCount.Load() == 0 {
		return
	}
	v.endWatches(func(w *Watch) bool { return slices.Contains(fss, w.fs) }, unix.IN_UNMOUNT)
}

// newCookie returns the cookie that ties an IN_MOVED_FROM event to its
// IN_MOVED_TO.
func (v *VFS) newCookie() uint32 {
	return v.cookies.Add(1)
}

// opened counts a file open at d and reports IN_OPEN.
func (f *File) opened() {
	d := f.vd.d
	d.opens.Add(1)
	if !f.isPath() {
		f.vd.mnt.vfs.notify(d, unix.IN_OPEN)
	}
}

// closed reports the last close of f (IN_CLOSE_WRITE or
// IN_CLOSE_NOWRITE) and, for a file whose names are all gone, the
// deletion of its inode.
func (f *File) closed() {
	d := f.vd.d
	v := f.vd.mnt.vfs
	if !f.isPath() {
		if f.writable() {
			v.notify(d, unix.IN_CLOSE_WRITE)
		} else {
			v.notify(d, unix.IN_CLOSE_NOWRITE)
		}
	}
	if d.opens.Add(-1) == 0 {
		v.maybeDeleted(d)
	}
}

// notifyIO reports a read (IN_ACCESS) or a change of contents
// (IN_MODIFY) made through f.
func (f *File) notifyIO(mask uint32) {
	if f.vd.d != nil {
		f.vd.mnt.vfs.notify(f.vd.d, mask)
	}
}

// attrEvent is the event a SetStat change makes (fsnotify_change).
func attrEvent(s *SetStat) uint32 {
	var mask uint32
	if s.Mask&(unix.STATX_UID|unix.STATX_GID|unix.STATX_MODE) != 0 {
		mask |= unix.IN_ATTRIB
	}
	if s.Mask&unix.STATX_SIZE != 0 {
		mask |= unix.IN_MODIFY
	}
	switch s.Mask & (unix.STATX_ATIME | unix.STATX_MTIME) {
	case unix.STATX_ATIME | unix.STATX_MTIME:
		mask |= unix.IN_ATTRIB
	case unix.STATX_ATIME:
		mask |= unix.IN_ACCESS
	case unix.STATX_MTIME:
		mask |= unix.IN_MODIFY
	}
	return mask
}

// setStat applies s to vd's inode and reports the change.
func (v *VFS) setStat(ctx *Context, vd VirtualDentry, s *SetStat) error {
	if err := vd.d.inode.SetStat(ctx, s); err != nil {
		return err
	}
	if mask := attrEvent(s); mask != 0 {
		v.notify(vd.d, mask)
	}
	return nil
}
