package vfs

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// direntHeader is the size of linux_dirent64 before its name.
const direntHeader = 19

// Getdents64 implements getdents64(2): it fills buf with linux_dirent64
// records from the file's offset and returns the number of bytes used,
// 0 at the end of the directory.
func (f *File) Getdents64(ctx context.Context, buf []byte) (int, error) {
	if f.isPath() {
		return 0, unix.EBADF
	}
	dr, ok := f.impl.(DirReader)
	if !ok || f.vd.d == nil {
		return 0, unix.ENOTDIR
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, full := 0, false
	emit := func(d Dirent) bool {
		reclen := (direntHeader + len(d.Name) + 1 + 7) &^ 7
		if n+reclen > len(buf) {
			full = true
			return false
		}
		rec := buf[n : n+reclen]
		binary.LittleEndian.PutUint64(rec[0:], d.Ino)
		binary.LittleEndian.PutUint64(rec[8:], uint64(d.Next))
		binary.LittleEndian.PutUint16(rec[16:], uint16(reclen))
		rec[18] = d.Type
		clear(rec[direntHeader+copy(rec[direntHeader:], d.Name):])
		n += reclen
		f.off = d.Next
		return true
	}
	if f.off == 0 {
		st, err := f.vd.stat(ctx)
		if err != nil {
			return 0, err
		}
		emit(Dirent{Name: ".", Ino: st.Ino, Type: unix.DT_DIR, Next: 1})
	}
	if f.off == 1 && !full {
		st, err := f.vd.mnt.vfs.parentOf(f.vd).stat(ctx)
		if err != nil {
			return 0, err
		}
		emit(Dirent{Name: "..", Ino: st.Ino, Type: unix.DT_DIR, Next: 2})
	}
	var err error
	if !full {
		err = dr.ReadDir(ctx, max(f.off, 2), emit)
	}
	f.notifyIO(unix.IN_ACCESS)
	switch {
	case n > 0:
		return n, nil
	case full:
		return 0, unix.EINVAL
	}
	return 0, err
}

// parentOf returns the parent directory of vd in the whole namespace,
// crossing mount points up.
func (v *VFS) parentOf(vd VirtualDentry) VirtualDentry {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	for vd.d == vd.mnt.root && vd.mnt.parent != nil {
		vd = VirtualDentry{vd.mnt.parent, vd.mnt.point}
	}
	if vd.d.parent != nil {
		vd.d = vd.d.parent
	}
	return vd
}

// PathOf returns the absolute path of vd as seen from root, and whether
// vd is reachable from root at all; an unreachable location gets the
// path from the namespace's root.
func (v *VFS) PathOf(root, vd VirtualDentry) (string, bool) {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	return v.pathOfLocked(root, vd)
}

func (v *VFS) pathOfLocked(root, vd VirtualDentry) (string, bool) {
	var names []string
	for vd != root {
		if vd.d == vd.mnt.root {
			if vd.mnt.parent == nil {
				return join(names), false
			}
			vd = VirtualDentry{vd.mnt.parent, vd.mnt.point}
			continue
		}
		names = append(names, vd.d.name)
		vd.d = vd.d.parent
	}
	return join(names), true
}

func join(reversed []string) string {
	slices.Reverse(reversed)
	return "/" + strings.Join(reversed, "/")
}

// Getcwd implements getcwd(2): ENOENT once the working directory has
// been removed, and an "(unreachable)" prefix when it is outside the
// task's root.
func (v *VFS) Getcwd(ctx *Context) (string, error) {
	d := ctx.Cwd.d
	d.mu.Lock()
	dead := d.dead
	d.mu.Unlock()
	if dead {
		return "", unix.ENOENT
	}
	p, ok := v.PathOf(ctx.Root, ctx.Cwd)
	if !ok {
		p = "(unreachable)" + p
	}
	return p, nil
}

// Chdir resolves the new working directory for chdir(2), or for
// fchdir(2) when path is empty and dir is given. The caller stores the
// result in its Context.Cwd.
func (v *VFS) Chdir(ctx *Context, dir *File, path string) (VirtualDentry, error) {
	vd, f, err := v.lookupAt(ctx, dir, path, true, dir != nil)
	if err != nil {
		return vd, err
	}
	if f != nil || vd.d.typ != unix.S_IFDIR {
		return vd, unix.ENOTDIR
	}
	st, err := vd.stat(ctx)
	if err != nil {
		return vd, err
	}
	if err := ctx.Creds.permission(&st, mayExec); err != nil {
		return vd, err
	}
	return vd, nil
}
