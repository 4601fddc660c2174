package syscalls

import (
	"math"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"golang.org/x/sys/unix"
)

var fdEntries = []entryAt{
	{unix.SYS_DUP, Entry{"dup", sysDup, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_DUP2, Entry{"dup2", sysDup2, Supported, "", []Arg{ArgInt, ArgInt}}},
	{unix.SYS_DUP3, Entry{"dup3", sysDup3, Supported, "", []Arg{ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_FCNTL, Entry{"fcntl", sysFcntl, Partial, fcntlNote, []Arg{ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_CLOSE, Entry{"close", sysClose, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_CLOSE_RANGE, Entry{"close_range", sysCloseRange, Supported, "", []Arg{ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_FLOCK, Entry{"flock", sysFlock, Supported, "", []Arg{ArgInt, ArgHex}}},
}

// installFD puts f at the lowest free descriptor >= min below
// RLIMIT_NOFILE and takes over the caller's reference, which is dropped
// on failure (EMFILE).
func installFD(t *kernel.Task, f *vfs.File, min int32, cloexec bool) (int32, error) {
	fd, err := t.ThreadGroup().FDs().Install(f, min, cloexec)
	if err != nil {
		f.DecRef()
		return -1, err
	}
	return fd, nil
}

// reserveFD takes the descriptor a new file will get before the file
// exists, as Linux does: a full table gives EMFILE whatever else would go
// wrong. The placeholder is an O_PATH file with nothing behind it, on
// which every operation fails; fillFD or closeReserved replaces it.
func reserveFD(t *kernel.Task, cloexec bool) (int32, error) {
	return installFD(t, vfs.NewFile(nil, unix.O_PATH), 0, cloexec)
}

// fillFD puts f at the reserved descriptor fd.
func fillFD(t *kernel.Task, fd int32, f *vfs.File, cloexec bool) uint64 {
	t.ThreadGroup().FDs().InstallAt(fd, f, cloexec)
	return uint64(fd)
}

// closeReserved gives back a descriptor reserveFD took.
func closeReserved(t *kernel.Task, fd int32) {
	t.ThreadGroup().FDs().Close(fd)
}

// closeFD closes fd, which releases the process's record locks on its
// file.
func closeFD(t *kernel.Task, fd int32) error {
	return t.ThreadGroup().FDs().Close(fd)
}

func sysClose(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, closeFD(t, int32(a[0]))
}

func sysCloseRange(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	first, last, flags := uint32(a[0]), uint32(a[1]), uint32(a[2])
	if flags&^(unix.CLOSE_RANGE_UNSHARE|unix.CLOSE_RANGE_CLOEXEC) != 0 || first > last {
		return 0, unix.EINVAL
	}
	fds := t.ThreadGroup().FDs()
	end := min(uint64(last)+1, uint64(fds.Len()))
	for fd := uint64(first); fd < end; fd++ {
		if flags&unix.CLOSE_RANGE_CLOEXEC != 0 {
			fds.SetCloseOnExec(int32(fd), true)
			continue
		}
		closeFD(t, int32(fd))
	}
	return 0, nil
}

func sysDup(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return dupFrom(t, a[0], 0, false)
}

// dupFrom installs a new descriptor for fd at the lowest free number >= min.
func dupFrom(t *kernel.Task, fd, min uint64, cloexec bool) (uint64, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	if min >= uint64(t.ThreadGroup().FDs().Limit()) {
		f.DecRef()
		return 0, unix.EINVAL
	}
	nfd, err := installFD(t, f, int32(min), cloexec)
	if err != nil {
		return 0, err
	}
	return uint64(nfd), nil
}

func sysDup2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if uint32(a[0]) == uint32(a[1]) {
		f, err := getFile(t, a[0])
		if err != nil {
			return 0, err
		}
		f.DecRef()
		return uint64(uint32(a[1])), nil
	}
	return dupTo(t, a[0], a[1], false)
}

func sysDup3(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[2]&^unix.O_CLOEXEC != 0 || uint32(a[0]) == uint32(a[1]) {
		return 0, unix.EINVAL
	}
	return dupTo(t, a[0], a[1], a[2]&unix.O_CLOEXEC != 0)
}

func dupTo(t *kernel.Task, oldfd, newfd uint64, cloexec bool) (uint64, error) {
	f, err := getFile(t, oldfd)
	if err != nil {
		return 0, err
	}
	// A newfd past int32's range is above any limit: EBADF, as Linux.
	newfd = uint64(uint32(newfd))
	if err := t.ThreadGroup().FDs().InstallAt(int32(min(newfd, math.MaxInt32)), f, cloexec); err != nil {
		f.DecRef()
		return 0, err
	}
	return newfd, nil
}

func sysFcntl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	fds := t.ThreadGroup().FDs()
	fd := int32(a[0])
	switch cmd := int(int32(a[1])); cmd {
	case unix.F_DUPFD:
		return dupFrom(t, a[0], uint64(int32(a[2])), false)
	case unix.F_DUPFD_CLOEXEC:
		return dupFrom(t, a[0], uint64(int32(a[2])), true)
	case unix.F_GETFD:
		on, err := fds.CloseOnExec(fd)
		if err != nil || !on {
			return 0, err
		}
		return unix.FD_CLOEXEC, nil
	case unix.F_SETFD:
		return 0, fds.SetCloseOnExec(fd, a[2]&unix.FD_CLOEXEC != 0)
	case unix.F_GETFL:
		f, err := getFile(t, a[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef()
		return uint64(f.StatusFlags()), nil
	case unix.F_SETFL:
		return 0, fcntlSetfl(t, a[0], int(int32(a[2])))
	case unix.F_GETOWN, unix.F_SETOWN, unix.F_GETOWN_EX, unix.F_SETOWN_EX, unix.F_GETSIG, unix.F_SETSIG:
		return fcntlOwner(t, a[0], cmd, a[2])
	case unix.F_NOTIFY:
		return 0, fcntlNotify(t, a[0], uint32(a[2]))
	case unix.F_GETLK, unix.F_SETLK, unix.F_SETLKW, unix.F_OFD_GETLK, unix.F_OFD_SETLK, unix.F_OFD_SETLKW:
		return 0, fcntlLock(t, a[0], cmd, a[2])
	case unix.F_GETPIPE_SZ, unix.F_SETPIPE_SZ:
		return fcntlPipe(t, a[0], cmd, uint32(a[2]))
	case unix.F_ADD_SEALS, unix.F_GET_SEALS:
		return fcntlSeals(t, a[0], cmd, uint32(a[2]))
	}
	f, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	f.DecRef()
	return 0, unix.EINVAL
}

// fcntlPipe implements F_GETPIPE_SZ and F_SETPIPE_SZ: a pipe's capacity
// is a power of two number of pages, above pipe-max-size only with
// CAP_SYS_RESOURCE (and never above the sandbox's memory limit), and
// never below the bytes it holds (EBUSY).
func fcntlPipe(t *kernel.Task, fd uint64, cmd int, arg uint32) (uint64, error) {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	p, ok := pipe.Of(f)
	if !ok {
		return 0, unix.EBADF
	}
	if cmd == unix.F_GETPIPE_SZ {
		return uint64(p.Capacity()), nil
	}
	size := pipe.RoundSize(uint64(arg))
	if size == 0 {
		return 0, unix.EINVAL
	}
	// The queued bytes live in host memory: even CAP_SYS_RESOURCE gets no
	// pipe larger than the sandbox's memory.
	grows := size > p.Capacity()
	if grows && (size > t.Kernel().Sysctl().PipeMaxSize() && !creds(t).Capable(unix.CAP_SYS_RESOURCE) ||
		uint64(size) > t.Kernel().Config().MemoryLimit) {
		return 0, unix.EPERM
	}
	return uint64(size), p.SetCapacity(size)
}

// allSeals is F_ALL_SEALS.
const allSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE | unix.F_SEAL_EXEC

// fcntlSeals implements F_ADD_SEALS and F_GET_SEALS, on the files that
// keep seals (tmpfs and memfd files); others are EINVAL. As on Linux, a
// file not open for writing gets EPERM from F_ADD_SEALS before anything
// else is checked.
func fcntlSeals(t *kernel.Task, fd uint64, cmd int, seals uint32) (uint64, error) {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	s, ok := f.Impl().(vfs.Sealer)
	switch {
	case cmd == unix.F_GET_SEALS && ok:
		return uint64(s.Seals()), nil
	case cmd == unix.F_GET_SEALS:
		return 0, unix.EINVAL
	case f.StatusFlags()&unix.O_ACCMODE == unix.O_RDONLY:
		return 0, unix.EPERM
	case seals&^allSeals != 0 || !ok:
		return 0, unix.EINVAL
	}
	return 0, s.AddSeals(seals)
}

// isPath reports an O_PATH file, which most calls refuse with EBADF.
func isPath(f *vfs.File) bool {
	return f.StatusFlags()&unix.O_PATH != 0
}

// getNonPathFile is getFile for calls that refuse an O_PATH file with
// EBADF; the caller drops the reference.
func getNonPathFile(t *kernel.Task, fd uint64) (*vfs.File, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return nil, err
	}
	if isPath(f) {
		f.DecRef()
		return nil, unix.EBADF
	}
	return f, nil
}
