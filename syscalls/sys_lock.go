package syscalls

import (
	"math"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/lock"
	"golang.org/x/sys/unix"
)

// Advisory locks: fcntl record locks (POSIX, owned by a process; OFD,
// owned by an open file description) and flock locks (owned by an open
// file description), kept in the sandbox's lock table (vfs.VFS.Locks).
// The VFS releases the locks a file owns with its last reference; the
// kernel's descriptor table releases a process's record locks when it
// closes a descriptor of the file, or exits.

func sysFlock(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const lockMand = 32
	op := uint32(a[1])
	if op&lockMand != 0 {
		return 0, nil
	}
	cmd := op &^ unix.LOCK_NB
	if cmd != unix.LOCK_SH && cmd != unix.LOCK_EX && cmd != unix.LOCK_UN {
		return 0, unix.EINVAL
	}
	f, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	locks := t.Kernel().VFS().Locks(f)
	if cmd == unix.LOCK_UN {
		locks.Funlock(f.LockKey(), f)
		return 0, nil
	}
	return 0, locks.Flock(t.Context(), f.LockKey(), f, cmd == unix.LOCK_EX, op&unix.LOCK_NB == 0)
}

// lockRange converts a struct flock's l_whence, l_start and l_len to an
// inclusive byte range, as flock64_to_posix_lock does.
func lockRange(t *kernel.Task, f *vfs.File, l *unix.Flock_t) (start, end int64, err error) {
	var base int64
	switch l.Whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		base, _ = f.Seek(t.Context(), 0, unix.SEEK_CUR)
	case unix.SEEK_END:
		st, err := f.Stat(t.Context())
		if err != nil {
			return 0, 0, err
		}
		base = int64(st.Size)
	default:
		return 0, 0, unix.EINVAL
	}
	if l.Start > math.MaxInt64-base {
		return 0, 0, unix.EOVERFLOW
	}
	start = base + l.Start
	if start < 0 {
		return 0, 0, unix.EINVAL
	}
	switch {
	case l.Len > 0:
		if l.Len-1 > math.MaxInt64-start {
			return 0, 0, unix.EOVERFLOW
		}
		return start, start + l.Len - 1, nil
	case l.Len < 0:
		if start+l.Len < 0 {
			return 0, 0, unix.EINVAL
		}
		return start + l.Len, start - 1, nil
	}
	return start, math.MaxInt64, nil
}

func fcntlLock(t *kernel.Task, fd uint64, cmd int, arg uint64) error {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return err
	}
	defer f.DecRef()
	var l unix.Flock_t
	if err := copyInStruct(t, arg, &l); err != nil {
		return err
	}
	ofd := cmd == unix.F_OFD_GETLK || cmd == unix.F_OFD_SETLK || cmd == unix.F_OFD_SETLKW
	var owner any = t.ThreadGroup()
	pid := t.ThreadGroup().PID()
	if ofd {
		owner, pid = f, -1
	}
	locks := t.Kernel().VFS().Locks(f)
	if cmd == unix.F_GETLK || cmd == unix.F_OFD_GETLK {
		if l.Type != unix.F_RDLCK && l.Type != unix.F_WRLCK || ofd && l.Pid != 0 {
			return unix.EINVAL
		}
		start, end, err := lockRange(t, f, &l)
		if err != nil {
			return err
		}
		c, found := locks.Conflict(f.LockKey(), owner, start, end, l.Type == unix.F_WRLCK)
		if !found {
			l.Type = unix.F_UNLCK
			return copyOutStruct(t, arg, &l)
		}
		l = unix.Flock_t{Type: unix.F_RDLCK, Whence: unix.SEEK_SET, Start: c.Start, Pid: c.PID}
		if c.Write {
			l.Type = unix.F_WRLCK
		}
		if c.End != math.MaxInt64 {
			l.Len = c.End - c.Start + 1
		}
		return copyOutStruct(t, arg, &l)
	}
	start, end, err := lockRange(t, f, &l)
	if err != nil {
		return err
	}
	acc := f.StatusFlags() & unix.O_ACCMODE
	switch l.Type {
	case unix.F_RDLCK:
		if acc == unix.O_WRONLY {
			return unix.EBADF
		}
	case unix.F_WRLCK:
		if acc == unix.O_RDONLY {
			return unix.EBADF
		}
	case unix.F_UNLCK:
	default:
		return unix.EINVAL
	}
	if ofd && l.Pid != 0 {
		return unix.EINVAL
	}
	if l.Type == unix.F_UNLCK {
		locks.Unlock(f.LockKey(), owner, start, end)
		return nil
	}
	wait := cmd == unix.F_SETLKW || cmd == unix.F_OFD_SETLKW
	return locks.SetRange(t.Context(), f.LockKey(), lock.Range{Owner: owner, PID: pid, Start: start, End: end, Write: l.Type == unix.F_WRLCK}, wait)
}
