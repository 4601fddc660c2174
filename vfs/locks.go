package vfs

import "github.com/kvmbox/kvmbox/vfs/lock"

// Locks returns the advisory-lock table that holds the locks on f's file:
// the table of the namespace f was opened in, or v's for a file reached
// through no path (a pipe, a socket), which stays tied to it. The locks f
// owns (flock, OFD) leave the table with f's last reference.
func (v *VFS) Locks(f *File) *lock.Table {
	if f.vd.d != nil {
		return f.vd.mnt.vfs.locks
	}
	f.locks.CompareAndSwap(nil, v.locks)
	return f.locks.Load()
}

// lockTable is the table that may hold locks on f's file, nil for a file
// reached through no path that was never locked.
func (f *File) lockTable() *lock.Table {
	if f.vd.d != nil {
		return f.vd.mnt.vfs.locks
	}
	return f.locks.Load()
}

// LockKey is what the locks on f's file are kept under: the location it
// was opened at (hard links to one file do not share locks), or f itself
// for a file reached through no path.
func (f *File) LockKey() any {
	if f.vd.d != nil {
		return f.vd
	}
	return f
}

// ReleaseLocks drops the record locks owner (a process) holds on f's
// file: a process's POSIX locks on a file go when it closes any
// descriptor of it.
func (f *File) ReleaseLocks(owner any) {
	if t := f.lockTable(); t != nil {
		t.Release(f.LockKey(), owner)
	}
}
