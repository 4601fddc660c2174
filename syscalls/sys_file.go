package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

var fileEntries = []entryAt{
	{unix.SYS_READ, Entry{"read", sysRead, Supported, "", []Arg{ArgInt, ArgOutBuf, ArgInt}}},
	{unix.SYS_WRITE, Entry{"write", sysWrite, Supported, "", []Arg{ArgInt, ArgInBuf, ArgInt}}},
	{unix.SYS_PREAD64, Entry{"pread64", sysPread, Supported, "", []Arg{ArgInt, ArgOutBuf, ArgInt, ArgInt}}},
	{unix.SYS_PWRITE64, Entry{"pwrite64", sysPwrite, Supported, "", []Arg{ArgInt, ArgInBuf, ArgInt, ArgInt}}},
	{unix.SYS_READV, Entry{"readv", sysReadv, Supported, "", []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_WRITEV, Entry{"writev", sysWritev, Supported, "", []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_CLOSE, Entry{"close", sysClose, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_IOCTL, Entry{"ioctl", sysIoctl, Partial, "TCGETS and TIOCGWINSZ on stdio; ENOTTY elsewhere", []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_FSTAT, Entry{"fstat", sysFstat, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_NEWFSTATAT, Entry{"newfstatat", sysNewfstatat, Partial, "AT_EMPTY_PATH on open descriptors; no file system yet", []Arg{ArgInt, ArgPath, ArgHex, ArgHex}}},
	{unix.SYS_STATX, Entry{"statx", sysStatx, Partial, "AT_EMPTY_PATH on open descriptors; no file system yet", []Arg{ArgInt, ArgPath, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_READLINK, Entry{"readlink", sysReadlink, Partial, "/proc/self/exe only", []Arg{ArgPath, ArgOutBuf, ArgInt}}},
	{unix.SYS_READLINKAT, Entry{"readlinkat", sysReadlinkat, Partial, "/proc/self/exe only", []Arg{ArgInt, ArgPath, ArgOutBuf, ArgInt}}},
	{unix.SYS_OPEN, Entry{"open", sysOpen, Partial, "the root file system is empty: ENOENT", []Arg{ArgPath, ArgHex, ArgHex}}},
	{unix.SYS_OPENAT, Entry{"openat", sysOpenat, Partial, "the root file system is empty: ENOENT", []Arg{ArgInt, ArgPath, ArgHex, ArgHex}}},
}

// atStatxSyncType is AT_STATX_SYNC_TYPE: the statx sync-mode bits.
const atStatxSyncType = 0x6000

// ioChunk bounds the host buffer one read or write step uses.
const ioChunk = 64 << 10

func getFile(t *kernel.Task, fd uint64) (*vfs.File, error) {
	return t.ThreadGroup().FDs().Get(int32(fd))
}

// checkCount applies Linux's bound: counts are clamped to MAX_RW_COUNT and
// must not be negative when read as ssize_t.
func checkCount(n uint64) (uint64, error) {
	const maxRW = 0x7ffff000
	if int64(n) < 0 {
		return 0, unix.EINVAL
	}
	return min(n, maxRW), nil
}

// transfer moves up to n bytes between the guest buffer at addr and the
// file, in chunks, stopping at a short transfer. read is true for guest reads.
func transfer(t *kernel.Task, addr, n uint64, read bool, step func(buf []byte) (int, error)) (uint64, error) {
	n, err := checkCount(n)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		_, err := step(nil)
		return 0, err
	}
	buf := t.Scratch(int(min(n, ioChunk)))
	var done uint64
	for done < n {
		chunk := buf[:min(n-done, uint64(len(buf)))]
		if !read {
			if err := copyIn(t, addr+done, chunk); err != nil {
				return done, orPartial(done, err)
			}
		}
		got, err := step(chunk)
		if read && got > 0 {
			if err := copyOut(t, addr+done, chunk[:got]); err != nil {
				return done, orPartial(done, err)
			}
		}
		done += uint64(got)
		if err != nil {
			return done, orPartial(done, err)
		}
		if got < len(chunk) {
			break
		}
	}
	return done, nil
}

// orPartial hides an error behind a partial transfer, as Linux does.
func orPartial(done uint64, err error) error {
	if done > 0 {
		return nil
	}
	return err
}

func sysRead(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return transfer(t, a[1], a[2], true, func(b []byte) (int, error) { return f.Read(t.Context(), b) })
}

func sysWrite(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return transfer(t, a[1], a[2], false, func(b []byte) (int, error) { return f.Write(t.Context(), b) })
}

func sysPread(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	off := int64(a[3])
	if off < 0 {
		return 0, unix.EINVAL
	}
	return transfer(t, a[1], a[2], true, func(b []byte) (int, error) {
		n, err := f.PRead(t.Context(), b, off)
		off += int64(n)
		return n, err
	})
}

func sysPwrite(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	off := int64(a[3])
	if off < 0 {
		return 0, unix.EINVAL
	}
	return transfer(t, a[1], a[2], false, func(b []byte) (int, error) {
		n, err := f.PWrite(t.Context(), b, off)
		off += int64(n)
		return n, err
	})
}

// readIovecs reads and validates an iovec array (UIO_MAXIOV entries at most,
// total length within ssize_t).
// iovec is struct iovec with the base kept as an integer: it is a guest
// address, never a host pointer.
type iovec struct {
	Base, Len uint64
}

func readIovecs(t *kernel.Task, addr, count uint64) ([]iovec, error) {
	const uioMaxIov = 1024
	if count > uioMaxIov {
		return nil, unix.EINVAL
	}
	iovs := make([]iovec, count)
	if count == 0 {
		return iovs, nil
	}
	if err := copyIn(t, addr, sliceBytes(iovs)); err != nil {
		return nil, err
	}
	var total uint64
	for _, v := range iovs {
		if int64(v.Len) < 0 || total+v.Len < total || int64(total+v.Len) < 0 {
			return nil, unix.EINVAL
		}
		total += v.Len
	}
	return iovs, nil
}

func vectorIO(t *kernel.Task, a *kernel.SyscallArgs, read bool) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	iovs, err := readIovecs(t, a[1], a[2])
	if err != nil {
		return 0, err
	}
	var done uint64
	for _, v := range iovs {
		if v.Len == 0 {
			continue
		}
		n, err := transfer(t, v.Base, v.Len, read, func(b []byte) (int, error) {
			if read {
				return f.Read(t.Context(), b)
			}
			return f.Write(t.Context(), b)
		})
		done += n
		if err != nil {
			return done, orPartial(done, err)
		}
		if n < v.Len {
			break
		}
	}
	return done, nil
}

func sysReadv(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error)  { return vectorIO(t, a, true) }
func sysWritev(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return vectorIO(t, a, false) }

func sysClose(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().FDs().Close(int32(a[0]))
}

func sysIoctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	tty, ok := f.Impl().(kernel.TTY)
	if !ok {
		return 0, unix.ENOTTY
	}
	switch a[1] {
	case unix.TCGETS:
		tio, err := tty.Termios()
		if err != nil {
			return 0, err
		}
		// The kernel's struct termios is 36 bytes: no speed fields.
		return 0, copyOut(t, a[2], bytesOf(tio)[:36])
	case unix.TIOCGWINSZ:
		ws, err := tty.WindowSize()
		if err != nil {
			return 0, err
		}
		return 0, copyOutStruct(t, a[2], ws)
	}
	return 0, unix.ENOTTY
}

func statOf(t *kernel.Task, fd uint64) (unix.Statx_t, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return unix.Statx_t{}, err
	}
	defer f.DecRef()
	return f.Stat(t.Context())
}

func statxToStat(x *unix.Statx_t) unix.Stat_t {
	return unix.Stat_t{
		Dev:     unix.Mkdev(x.Dev_major, x.Dev_minor),
		Ino:     x.Ino,
		Nlink:   uint64(x.Nlink),
		Mode:    uint32(x.Mode),
		Uid:     x.Uid,
		Gid:     x.Gid,
		Rdev:    unix.Mkdev(x.Rdev_major, x.Rdev_minor),
		Size:    int64(x.Size),
		Blksize: int64(x.Blksize),
		Blocks:  int64(x.Blocks),
		Atim:    unix.Timespec{Sec: x.Atime.Sec, Nsec: int64(x.Atime.Nsec)},
		Mtim:    unix.Timespec{Sec: x.Mtime.Sec, Nsec: int64(x.Mtime.Nsec)},
		Ctim:    unix.Timespec{Sec: x.Ctime.Sec, Nsec: int64(x.Ctime.Nsec)},
	}
}

func sysFstat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	x, err := statOf(t, a[0])
	if err != nil {
		return 0, err
	}
	st := statxToStat(&x)
	return 0, copyOutStruct(t, a[1], &st)
}

// emptyPathFD resolves the (dirfd, path, flags) of the *at calls for the
// one case there is without a file system: AT_EMPTY_PATH on a descriptor.
func emptyPathFD(t *kernel.Task, dirfd, pathAddr, flags, known uint64) (uint64, error) {
	if flags&^known != 0 {
		return 0, unix.EINVAL
	}
	path, err := t.ThreadGroup().MM().ReadString(pathAddr, unix.PathMax)
	if err != nil {
		return 0, err
	}
	if path == "" && flags&unix.AT_EMPTY_PATH != 0 {
		return dirfd, nil
	}
	if path == "" {
		return 0, unix.ENOENT
	}
	if path[0] != '/' && int32(dirfd) != unix.AT_FDCWD {
		if _, err := statOf(t, dirfd); err != nil {
			return 0, err
		}
		return 0, unix.ENOTDIR
	}
	return 0, unix.ENOENT
}

func sysNewfstatat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	fd, err := emptyPathFD(t, a[0], a[1], a[3], unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT)
	if err != nil {
		return 0, err
	}
	return sysFstat(t, &kernel.SyscallArgs{fd, a[2]})
}

func sysStatx(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const known = unix.AT_EMPTY_PATH | unix.AT_SYMLINK_NOFOLLOW | unix.AT_NO_AUTOMOUNT | atStatxSyncType
	if a[3]&unix.STATX__RESERVED != 0 {
		return 0, unix.EINVAL
	}
	fd, err := emptyPathFD(t, a[0], a[1], a[2], known)
	if err != nil {
		return 0, err
	}
	x, err := statOf(t, fd)
	if err != nil {
		return 0, err
	}
	return 0, copyOutStruct(t, a[4], &x)
}

func readlinkPath(t *kernel.Task, pathAddr, buf, size uint64) (uint64, error) {
	if int64(size) <= 0 {
		return 0, unix.EINVAL
	}
	path, err := readPath(t, pathAddr)
	if err != nil {
		return 0, err
	}
	if path != "/proc/self/exe" {
		return 0, unix.ENOENT
	}
	target := []byte(t.ThreadGroup().Path())
	target = target[:min(uint64(len(target)), size)]
	return uint64(len(target)), copyOut(t, buf, target)
}

func sysReadlink(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return readlinkPath(t, a[0], a[1], a[2])
}

func sysReadlinkat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return readlinkPath(t, a[1], a[2], a[3])
}

func openPath(t *kernel.Task, pathAddr uint64) (uint64, error) {
	if _, err := readPath(t, pathAddr); err != nil {
		return 0, err
	}
	return 0, unix.ENOENT
}

func sysOpen(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return openPath(t, a[0]) }

func sysOpenat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return openPath(t, a[1]) }
