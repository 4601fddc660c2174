package vfs

import (
	"golang.org/x/sys/unix"
)

// RenameAt implements renameat2(2) (flags: RENAME_NOREPLACE,
// RENAME_EXCHANGE).
func (v *VFS) RenameAt(ctx *Context, olddir *File, oldpath string, newdir *File, newpath string, flags uint32) error {
	if flags&^(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE) != 0 ||
		flags&unix.RENAME_NOREPLACE != 0 && flags&unix.RENAME_EXCHANGE != 0 {
		return unix.EINVAL
	}
	exchange := flags&unix.RENAME_EXCHANGE != 0
	oldParent, oldName, oldSlash, err := v.resolver(ctx, 0).walkParentAt(olddir, oldpath)
	if err != nil {
		return err
	}
	newParent, newName, newSlash, err := v.resolver(ctx, 0).walkParentAt(newdir, newpath)
	if err != nil {
		return err
	}
	switch {
	case oldParent.mnt != newParent.mnt:
		return unix.EXDEV
	case !isNormal(oldName), !isNormal(newName):
		return unix.EBUSY
	case oldParent.mnt.readOnly.Load():
		return unix.EROFS
	case len(oldName) > unix.NAME_MAX, len(newName) > unix.NAME_MAX:
		return unix.ENAMETOOLONG
	}

	v.renameMu.Lock()
	defer v.renameMu.Unlock()
	oldParent.d.mu.Lock()
	defer oldParent.d.mu.Unlock()
	if newParent.d != oldParent.d {
		newParent.d.mu.Lock()
		defer newParent.d.mu.Unlock()
	}

	old, err := v.lookupLocked(ctx, oldParent.d, oldName)
	if err != nil {
		return err
	}
	target, err := v.lookupLocked(ctx, newParent.d, newName)
	switch {
	case err == unix.ENOENT:
		if exchange {
			return err
		}
		target = nil
	case err != nil:
		return err
	case flags&unix.RENAME_NOREPLACE != 0:
		return unix.EEXIST
	}
	isDir := old.typ == unix.S_IFDIR
	if !isDir && (oldSlash || !exchange && newSlash) {
		return unix.ENOTDIR
	}
	if exchange && newSlash && target.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if target != nil && old.inode == target.inode {
		return nil
	}
	if err := v.mayDelete(ctx, oldParent.d, old, isDir); err != nil {
		return err
	}
	if target != nil {
		want := isDir
		if exchange {
			want = target.typ == unix.S_IFDIR
		}
		if err := v.mayDelete(ctx, newParent.d, target, want); err != nil {
			return err
		}
	} else {
		pst, err := newParent.d.inode.Stat(ctx)
		if err != nil {
			return err
		}
		if err := ctx.Creds.permission(&pst, mayWrite|mayExec); err != nil {
			return err
		}
		if newParent.d.dead {
			return unix.ENOENT
		}
	}
	if err := v.checkRenameTree(old, target, oldParent.d, newParent.d, exchange); err != nil {
		return err
	}
	if oldParent.d != newParent.d {
		moved := []*Dentry{old}
		if exchange {
			moved = append(moved, target)
		}
		for _, d := range moved {
			if err := v.mayMoveDir(ctx, d); err != nil {
				return err
			}
		}
	}
	if target != nil && !exchange {
		v.willLoseLastLink(ctx, target)
	}
	if err := oldParent.d.inode.Rename(ctx, oldName, newParent.d.inode, newName, flags); err != nil {
		return err
	}

	delete(oldParent.d.children, oldName)
	switch {
	case exchange:
		delete(newParent.d.children, newName)
		oldParent.d.addChild(oldName, target)
	case target != nil:
		newParent.d.removeChildLocked(newName, target)
	}
	newParent.d.addChild(newName, old)
	v.treeMu.Lock()
	old.parent, old.name = newParent.d, newName
	if exchange {
		target.parent, target.name = oldParent.d, oldName
	}
	v.treeMu.Unlock()
	if exchange {
		v.notifyMove(oldParent.d, oldName, newParent.d, newName, old, nil)
		v.notifyMove(newParent.d, newName, oldParent.d, oldName, target, nil)
		return nil
	}
	v.notifyMove(oldParent.d, oldName, newParent.d, newName, old, target)
	if target != nil {
		v.maybeDeleted(target)
	}
	return nil
}

// notifyMove reports the move of moved from oldName in oldDir to newName
// in newDir: IN_MOVED_FROM and IN_MOVED_TO with one cookie, then
// IN_MOVE_SELF, in fsnotify_move's order; replaced, the object the move
// replaced if any, loses a link (IN_ATTRIB) before IN_MOVE_SELF.
func (v *VFS) notifyMove(oldDir *Dentry, oldName string, newDir *Dentry, newName string, moved, replaced *Dentry) {
	if v.watchCount.Load() == 0 {
		return
	}
	cookie := v.newCookie()
	isDir := dirFlag(moved)
	if oldDir == newDir {
		v.notifyChild(oldDir, eventRename|isDir, 0, oldName)
	}
	v.notifyChild(oldDir, unix.IN_MOVED_FROM|isDir, cookie, oldName)
	v.notifyChild(newDir, unix.IN_MOVED_TO|isDir, cookie, newName)
	if replaced != nil {
		v.notifySelf(replaced, unix.IN_ATTRIB)
	}
	v.notifySelf(moved, unix.IN_MOVE_SELF)
}

// checkRenameTree applies the directory-tree rules of rename: a directory
// cannot move below itself (EINVAL), and the target cannot be an ancestor
// of the source (ENOTEMPTY, or EINVAL for an exchange).
func (v *VFS) checkRenameTree(old, target, oldParent, newParent *Dentry, exchange bool) error {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	if isAncestorLocked(old, newParent) {
		return unix.EINVAL
	}
	if target != nil && isAncestorLocked(target, oldParent) {
		if exchange {
			return unix.EINVAL
		}
		return unix.ENOTEMPTY
	}
	return nil
}

// isAncestorLocked reports whether a is d or one of d's ancestors.
func isAncestorLocked(a, d *Dentry) bool {
	for ; d != nil; d = d.parent {
		if d == a {
			return true
		}
	}
	return false
}

// mayMoveDir checks that d may change parents: a directory's ".." entry
// changes, which needs write permission on it.
func (v *VFS) mayMoveDir(ctx *Context, d *Dentry) error {
	if d.typ != unix.S_IFDIR {
		return nil
	}
	st, err := d.inode.Stat(ctx)
	if err != nil {
		return err
	}
	return ctx.Creds.permission(&st, mayWrite)
}
