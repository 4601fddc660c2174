package syscalls

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
)

// fcntlNote is fcntl's entry note.
const fcntlNote = "F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK, F_SETLKW, the F_OFD_ locks (no deadlock detection), F_GETPIPE_SZ, F_SETPIPE_SZ (never above the sandbox's memory limit), F_ADD_SEALS, F_GET_SEALS, F_NOTIFY (dnotify), F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX, F_SETSIG and F_GETSIG (I/O signals reach the owner only where the user IDs of the process that set it allow, as on Linux). O_ASYNC sends SIGIO for pipes, FIFOs, sockets, terminals and the other files poll can wait on: POLL_IN when a file open for reading may have become readable (POLL_HUP when a socket's peer hangs up), POLL_OUT when one open only for writing may have become writable; Leases are EINVAL"

// fcntlSetfl implements F_SETFL: turning O_ASYNC on registers for the
// file's readiness changes, which send its I/O signal.
func fcntlSetfl(t *kernel.Task, fd uint64, flags int) error {
	f, err := getFile(t, fd)
	if err != nil {
		return err
	}
	defer f.DecRef()
	wasAsync := f.StatusFlags()&unix.O_ASYNC != 0
	if err := f.SetStatusFlags(flags&^unix.O_ASYNC | f.StatusFlags()&unix.O_ASYNC); err != nil {
		return err
	}
	switch async := flags&unix.O_ASYNC != 0; {
	case async && !wasAsync:
		return f.SetAsync(asyncSender(t, f, int32(fd)))
	case !async && wasAsync:
		return f.SetAsync(nil)
	}
	return nil
}

// ioctlAsync implements FIOASYNC, which turns O_ASYNC on or off as
// F_SETFL does; Linux refuses to change it (ENOTTY) on files without I/O
// signals, where F_SETFL keeps the flag.
func ioctlAsync(t *kernel.Task, f *vfs.File, fd, arg uint64) error {
	var on [4]byte
	if err := copyIn(t, arg, on[:]); err != nil {
		return err
	}
	flags := f.StatusFlags() &^ unix.O_ASYNC
	if on != [4]byte{} {
		flags |= unix.O_ASYNC
	}
	if (flags^f.StatusFlags())&unix.O_ASYNC == 0 {
		return nil
	}
	if !f.CanPoll() {
		return unix.ENOTTY
	}
	return fcntlSetfl(t, fd, flags)
}

// asyncSender returns what sends f's I/O signals for O_ASYNC, with si_fd
// fd: POLL_IN when a file open for reading may have become readable
// (POLL_HUP for a socket whose peer hung up), POLL_OUT when a file open
// only for writing may have become writable.
func asyncSender(t *kernel.Task, f *vfs.File, fd int32) func(events uint32) {
	k := t.Kernel()
	acc := f.StatusFlags() & unix.O_ACCMODE
	st, err := f.Stat(t.Context())
	socket := err == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
	return func(events uint32) {
		switch {
		case socket && events&(unix.POLLHUP|unix.POLLRDHUP) != 0:
			k.SendIOSignal(f, fd, kernel.PollHup)
		case acc != unix.O_WRONLY && events&(unix.POLLIN|unix.EPOLLRDNORM) != 0:
			k.SendIOSignal(f, fd, kernel.PollIn)
		case acc == unix.O_WRONLY && events&(unix.POLLOUT|unix.EPOLLWRNORM) != 0:
			k.SendIOSignal(f, fd, kernel.PollOut)
		}
	}
}

// fOwnerExSize is sizeof(struct f_owner_ex).
const fOwnerExSize = 8

// fcntlOwner implements F_GETOWN, F_SETOWN, F_GETOWN_EX, F_SETOWN_EX,
// F_GETSIG and F_SETSIG.
func fcntlOwner(t *kernel.Task, fd uint64, cmd int, arg uint64) (uint64, error) {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	k := t.Kernel()
	switch cmd {
	case unix.F_GETOWN:
		o := f.Owner()
		if o.Type == vfs.OwnerGroup {
			return uint64(-int64(o.ID)), nil
		}
		return uint64(o.ID), nil
	case unix.F_SETOWN:
		who := int32(arg)
		o := vfs.Owner{Type: vfs.OwnerProcess, ID: who}
		switch {
		case who == -1<<31:
			return 0, unix.EINVAL
		case who < 0:
			o = vfs.Owner{Type: vfs.OwnerGroup, ID: -who}
		}
		o.UID, o.EUID = creds(t).UID, creds(t).EUID
		if o.ID != 0 && !k.OwnerExists(o.Type, o.ID) {
			return 0, unix.ESRCH
		}
		f.SetOwner(o)
		return 0, nil
	case unix.F_GETOWN_EX:
		o := f.Owner()
		var b [fOwnerExSize]byte
		binary.LittleEndian.PutUint32(b[0:], uint32(o.Type))
		binary.LittleEndian.PutUint32(b[4:], uint32(o.ID))
		return 0, copyOut(t, arg, b[:])
	case unix.F_SETOWN_EX:
		var b [fOwnerExSize]byte
		if err := copyIn(t, arg, b[:]); err != nil {
			return 0, err
		}
		o := vfs.Owner{Type: int32(binary.LittleEndian.Uint32(b[0:])), ID: int32(binary.LittleEndian.Uint32(b[4:])), UID: creds(t).UID, EUID: creds(t).EUID}
		if o.Type != vfs.OwnerThread && o.Type != vfs.OwnerProcess && o.Type != vfs.OwnerGroup {
			return 0, unix.EINVAL
		}
		if o.ID != 0 && !k.OwnerExists(o.Type, o.ID) {
			return 0, unix.ESRCH
		}
		f.SetOwner(o)
		return 0, nil
	case unix.F_GETSIG:
		return uint64(f.Signal()), nil
	}
	sig := int32(arg)
	if sig < 0 || sig > kernel.NumSignals {
		return 0, unix.EINVAL
	}
	f.SetSignal(int(sig))
	return 0, nil
}

// fcntlNotify implements F_NOTIFY: the file's I/O signal (POLL_MSG) goes
// to the calling process, which becomes the file's owner, when the
// directory changes.
func fcntlNotify(t *kernel.Task, fd uint64, arg uint32) error {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return err
	}
	defer f.DecRef()
	k := t.Kernel()
	send := func(fd int32) { k.SendIOSignal(f, fd, kernel.PollMsg) }
	if err := f.SetDirNotify(t.ThreadGroup(), int32(fd), arg, send); err != nil {
		return err
	}
	if arg&^vfs.DNMultishot != 0 {
		f.SetOwner(vfs.Owner{Type: vfs.OwnerProcess, ID: t.ThreadGroup().PID(), UID: creds(t).UID, EUID: creds(t).EUID})
	}
	return nil
}
