package vfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the number of symbolic links one resolution may follow
// (Linux's MAXSYMLINKS).
const maxSymlinks = 40

// resolveMask is the set of openat2 RESOLVE_* flags the resolver knows.
const resolveMask = unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_BENEATH | unix.RESOLVE_IN_ROOT

// resolver walks paths for one operation.
type resolver struct {
	v        *VFS
	ctx      *Context
	root     VirtualDentry
	flags    uint64 // RESOLVE_*
	symlinks int
	// unnamedOK says that the caller can use an unnamed file (a pipe)
	// that a final magic link leads to: it then gets errUnnamedTarget
	// and the file in target.
	unnamedOK bool
	target    *File
}

func (v *VFS) resolver(ctx *Context, flags uint64) *resolver {
	return &resolver{v: v, ctx: ctx, root: ctx.Root, flags: flags}
}

// start returns where a relative path starts: dir, or the working
// directory when dir is nil.
func (r *resolver) start(dir *File) (VirtualDentry, error) {
	vd := r.ctx.Cwd
	if dir != nil {
		vd = dir.vd
	}
	if vd.d == nil {
		return vd, unix.ENOTDIR
	}
	if r.flags&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
		r.root = vd
	}
	return vd, nil
}

// walkAt resolves path relative to dir. follow says whether a final
// symbolic link is followed.
func (r *resolver) walkAt(dir *File, path string, follow bool) (VirtualDentry, error) {
	parent, name, slash, err := r.walkParentAt(dir, path)
	if err != nil {
		return parent, err
	}
	return r.last(parent, name, follow, slash)
}

// walkParentAt resolves all components of path but the last one, which
// it returns with whether the path had trailing slashes. name is "" for
// a path made of slashes only, and may be "." or "..". The directory
// returned has been checked for search permission.
func (r *resolver) walkParentAt(dir *File, path string) (VirtualDentry, string, bool, error) {
	if len(path) == 0 {
		return VirtualDentry{}, "", false, unix.ENOENT
	}
	if len(path) >= unix.PathMax {
		return VirtualDentry{}, "", false, unix.ENAMETOOLONG
	}
	if strings.IndexByte(path, 0) >= 0 {
		return VirtualDentry{}, "", false, unix.EINVAL
	}
	start := r.root
	if path[0] != '/' || r.flags&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
		var err error
		if start, err = r.start(dir); err != nil {
			return start, "", false, err
		}
	}
	return r.walkParent(start, path)
}

func (r *resolver) walkParent(start VirtualDentry, path string) (VirtualDentry, string, bool, error) {
	cur := start
	if path[0] == '/' {
		if r.flags&unix.RESOLVE_BENEATH != 0 {
			return cur, "", false, unix.EXDEV
		}
		cur = r.root
	}
	trimmed := strings.TrimRight(path, "/")
	slash := len(trimmed) < len(path)
	if trimmed == "" {
		return cur, "", slash, nil
	}
	i := strings.LastIndexByte(trimmed, '/')
	name := trimmed[i+1:]
	for comp := range strings.SplitSeq(trimmed[:i+1], "/") {
		if comp == "" {
			continue
		}
		var err error
		if cur, err = r.stepDir(cur, comp); err != nil {
			return cur, "", false, err
		}
	}
	if err := r.mayLookup(cur); err != nil {
		return cur, "", false, err
	}
	return cur, name, slash, nil
}

// last resolves the final component name in parent.
func (r *resolver) last(parent VirtualDentry, name string, follow, slash bool) (VirtualDentry, error) {
	if name == "" {
		return parent, nil
	}
	vd, err := r.child(parent, name)
	if err != nil {
		return vd, err
	}
	if vd.d.typ == unix.S_IFLNK && (follow || slash) {
		if vd, err = r.follow(parent, vd); err == errUnnamedTarget && slash {
			r.target = nil
			return vd, unix.ENOTDIR
		} else if err != nil {
			return vd, err
		}
	}
	if slash && vd.d.typ != unix.S_IFDIR {
		return vd, unix.ENOTDIR
	}
	return vd, nil
}

// stepDir moves from cur to its child name, following a symbolic link,
// and requires a directory.
func (r *resolver) stepDir(cur VirtualDentry, name string) (VirtualDentry, error) {
	if err := r.mayLookup(cur); err != nil {
		return cur, err
	}
	next, err := r.child(cur, name)
	if err != nil {
		return next, err
	}
	if next.d.typ == unix.S_IFLNK {
		if next, err = r.follow(cur, next); err == errUnnamedTarget {
			r.target = nil
			return next, unix.ENOTDIR
		} else if err != nil {
			return next, err
		}
	}
	if next.d.typ != unix.S_IFDIR {
		return next, unix.ENOTDIR
	}
	return next, nil
}

// mayLookup checks that dir is a directory the caller may search.
func (r *resolver) mayLookup(dir VirtualDentry) error {
	if dir.d.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	st, err := dir.d.inode.Stat(r.ctx)
	if err != nil {
		return err
	}
	return r.ctx.Creds.permission(&st, mayExec)
}

// child returns the child name of dir ("." and ".." included), after
// crossing mount points. It does not check permissions.
func (r *resolver) child(dir VirtualDentry, name string) (VirtualDentry, error) {
	switch name {
	case ".":
		return dir, nil
	case "..":
		return r.dotdot(dir)
	}
	if len(name) > unix.NAME_MAX {
		return dir, unix.ENAMETOOLONG
	}
	d, err := r.v.lookup(r.ctx, dir.d, name)
	if err != nil {
		return dir, err
	}
	return r.followMounts(VirtualDentry{dir.mnt, d})
}

func (r *resolver) dotdot(cur VirtualDentry) (VirtualDentry, error) {
	for {
		if cur == r.root {
			if r.flags&unix.RESOLVE_BENEATH != 0 {
				return cur, unix.EXDEV
			}
			return cur, nil
		}
		if cur.d != cur.mnt.root {
			break
		}
		r.v.treeMu.Lock()
		parent, point := cur.mnt.parent, cur.mnt.point
		r.v.treeMu.Unlock()
		if parent == nil {
			return cur, nil
		}
		if r.flags&unix.RESOLVE_NO_XDEV != 0 {
			return cur, unix.EXDEV
		}
		cur = VirtualDentry{parent, point}
	}
	r.v.treeMu.Lock()
	parent := cur.d.parent
	r.v.treeMu.Unlock()
	return r.followMounts(VirtualDentry{cur.mnt, parent})
}

func (r *resolver) followMounts(vd VirtualDentry) (VirtualDentry, error) {
	for {
		m := r.v.mountedHere(vd)
		if m == nil {
			return vd, nil
		}
		if r.flags&unix.RESOLVE_NO_XDEV != 0 {
			return vd, unix.EXDEV
		}
		vd = VirtualDentry{m, m.root}
	}
}

// follow resolves the symbolic link found in dir.
func (r *resolver) follow(dir, link VirtualDentry) (VirtualDentry, error) {
	if r.flags&unix.RESOLVE_NO_SYMLINKS != 0 {
		return link, unix.ELOOP
	}
	r.symlinks++
	if r.symlinks > maxSymlinks {
		return link, unix.ELOOP
	}
	if ml, ok := link.d.inode.(MagicLink); ok {
		if vd, magic, err := r.followMagic(link, ml); magic {
			return vd, err
		}
	}
	target, err := link.d.inode.Readlink(r.ctx)
	if err != nil {
		return link, err
	}
	if target == "" {
		return link, unix.ENOENT
	}
	parent, name, slash, err := r.walkParent(dir, target)
	if err != nil {
		return parent, err
	}
	return r.last(parent, name, true, slash)
}

// lookup returns the cached child dentry of dir called name, asking the
// file system when it is not cached.
func (v *VFS) lookup(ctx *Context, dir *Dentry, name string) (*Dentry, error) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	return v.lookupLocked(ctx, dir, name)
}

func (v *VFS) lookupLocked(ctx *Context, dir *Dentry, name string) (*Dentry, error) {
	if dir.dead {
		return nil, unix.ENOENT
	}
	if d := dir.children[name]; d != nil {
		if r, ok := d.inode.(Revalidator); !ok || !r.Stale() || v.isMountPoint(d) {
			return d, nil
		}
		dir.removeChildLocked(name, d)
	}
	inode, err := dir.inode.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	d, err := newDentry(ctx, inode, dir, name)
	if err != nil {
		return nil, err
	}
	dir.addChild(name, d)
	return d, nil
}

func (dir *Dentry) addChild(name string, d *Dentry) {
	if dir.children == nil {
		dir.children = make(map[string]*Dentry)
	}
	dir.children[name] = d
}
