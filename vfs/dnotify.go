package vfs

import (
	"golang.org/x/sys/unix"
)

// Directory notification (dnotify, fcntl F_NOTIFY) arguments, which
// x/sys/unix lacks.
const (
	DNAccess    = 0x1
	DNModify    = 0x2
	DNCreate    = 0x4
	DNDelete    = 0x8
	DNRename    = 0x10
	DNAttrib    = 0x20
	DNMultishot = 0x80000000
)

// eventRename is the event a rename within one directory makes for
// dnotify's DN_RENAME (Linux's FS_RENAME); inotify never asks for it.
const eventRename = 0x10000000

// dirNotify is one F_NOTIFY registration: a directory file's watch for
// one owner (the descriptor table that asked).
type dirNotify struct {
	f         *File
	owner     any
	watch     *Watch
	fd        int32
	multishot bool
	send      func(fd int32)
}

// dnotifyEvents converts F_NOTIFY's argument to the events it selects.
// As on Linux, a move out of or into the directory is a deletion or a
// creation there, and DN_RENAME is a rename within it.
func dnotifyEvents(arg uint32) uint32 {
	var mask uint32
	if arg&DNAccess != 0 {
		mask |= unix.IN_ACCESS
	}
	if arg&DNModify != 0 {
		mask |= unix.IN_MODIFY
	}
	if arg&DNAttrib != 0 {
		mask |= unix.IN_ATTRIB
	}
	if arg&DNCreate != 0 {
		mask |= unix.IN_CREATE | unix.IN_MOVED_TO
	}
	if arg&DNDelete != 0 {
		mask |= unix.IN_DELETE | unix.IN_MOVED_FROM
	}
	if arg&DNRename != 0 {
		mask |= eventRename
	}
	return mask
}

// SetDirNotify implements fcntl(fd, F_NOTIFY, arg) on f for owner (the
// caller's descriptor table): send is called with fd when an event arg
// selects happens in the directory, until the registration ends (after
// the first event without DN_MULTISHOT, on FlushDirNotify, or when f is
// released). A second call for the same owner adds to the events. An arg
// without events removes the registration.
func (f *File) SetDirNotify(owner any, fd int32, arg uint32, send func(fd int32)) error {
	if arg&^DNMultishot == 0 {
		f.FlushDirNotify(owner)
		return nil
	}
	if f.vd.d == nil || f.vd.d.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	v := f.vd.mnt.vfs
	f.async.mu.Lock()
	defer f.async.mu.Unlock()
	if dn, ok := f.async.dnotify[owner]; ok && !dn.watch.gone.Load() {
		dn.fd, dn.send = fd, send
		dn.multishot = dn.multishot || arg&DNMultishot != 0
		dn.watch.SetMask(dn.watch.Mask() | dnotifyEvents(arg))
		return nil
	}
	if f.async.dnotify == nil {
		f.async.dnotify = make(map[any]*dirNotify)
	}
	dn := &dirNotify{f: f, owner: owner, fd: fd, multishot: arg&DNMultishot != 0, send: send}
	dn.watch = v.AddWatch(f.vd, dnotifyEvents(arg), dn)
	f.async.dnotify[owner] = dn
	return nil
}

// FlushDirNotify ends owner's F_NOTIFY registration on f, as closing
// any descriptor of f does on Linux.
func (f *File) FlushDirNotify(owner any) {
	f.async.mu.Lock()
	dn, ok := f.async.dnotify[owner]
	if ok {
		delete(f.async.dnotify, owner)
	}
	f.async.mu.Unlock()
	if ok {
		f.vd.mnt.vfs.RemoveWatch(dn.watch)
	}
}

// WatchEvent implements WatchTarget: the registration's signal goes out,
// and a registration without DN_MULTISHOT ends.
func (dn *dirNotify) WatchEvent(w *Watch, mask, _ uint32, _ string) {
	if mask&(unix.IN_IGNORED|unix.IN_UNMOUNT) != 0 {
		return
	}
	f := dn.f
	f.async.mu.Lock()
	fd, send, multishot := dn.fd, dn.send, dn.multishot
	if !multishot && f.async.dnotify[dn.owner] == dn {
		delete(f.async.dnotify, dn.owner)
	}
	f.async.mu.Unlock()
	if !multishot && !w.v.RemoveWatch(w) {
		return
	}
	send(fd)
}
