package vfs

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"
)

// MagicLink is a symbolic-link inode that, like Linux's /proc/<pid>/fd/N,
// leads to an open file rather than to a path: following it reaches the
// file itself, wherever it lies, and opening it opens that file again,
// even one that no path names (a pipe).
type MagicLink interface {
	// LinkedFile returns the open file the link leads to, or nil when
	// this link is a plain one whose text is followed. The caller gets
	// no reference: the file may be closed concurrently, and only Stat,
	// VirtualDentry and Reopener are used on it.
	LinkedFile(ctx context.Context) (*File, error)
}

// Reopener is implemented by the FileImpl of a file that no path names
// but that a magic link can open again: Reopen returns a new open file
// description of the same object (a pipe opened as its FIFO would be).
type Reopener interface {
	Reopen(ctx context.Context, flags int) (*File, error)
}

// errUnnamedTarget reports that a magic link led to a file no path names;
// the resolver holds it in target.
var errUnnamedTarget = errors.New("vfs: magic link to an unnamed file")

// followMagic follows the magic link ml: to the file's location, or, for a
// file no path names, to errUnnamedTarget with r.target set when the
// caller can use such a file (r.unnamedOK), ENXIO otherwise. magic is
// false when ml is a plain link after all.
func (r *resolver) followMagic(link VirtualDentry, ml MagicLink) (vd VirtualDentry, magic bool, err error) {
	f, err := ml.LinkedFile(r.ctx)
	if err != nil {
		return link, true, err
	}
	if f == nil {
		return link, false, nil
	}
	if r.flags&unix.RESOLVE_NO_MAGICLINKS != 0 {
		return link, true, unix.ELOOP
	}
	if vd, ok := f.VirtualDentry(); ok {
		return vd, true, nil
	}
	if !r.unnamedOK {
		return link, true, unix.ENXIO
	}
	r.target = f
	return link, true, errUnnamedTarget
}

// reopen opens the unnamed file a magic link led to, as open(2) of
// /proc/<pid>/fd/N does: ENXIO for a file that cannot be opened again (a
// socket, an eventfd) and for O_PATH, which needs a location.
func reopen(ctx *Context, f *File, flags int) (*File, error) {
	re, ok := f.Impl().(Reopener)
	if !ok || flags&unix.O_PATH != 0 {
		return nil, unix.ENXIO
	}
	return re.Reopen(ctx, flags)
}
