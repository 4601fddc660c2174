package syscalls

import (
	"encoding/binary"
	"math"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/netstack"
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
	{unix.SYS_PREADV, Entry{"preadv", sysPreadv, Supported, "", []Arg{ArgInt, ArgHex, ArgInt, ArgInt}}},
	{unix.SYS_PWRITEV, Entry{"pwritev", sysPwritev, Supported, "", []Arg{ArgInt, ArgHex, ArgInt, ArgInt}}},
	{unix.SYS_PREADV2, Entry{"preadv2", sysPreadv2, Partial, rwfNote, []Arg{ArgInt, ArgHex, ArgInt, ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_PWRITEV2, Entry{"pwritev2", sysPwritev2, Partial, rwfNote, []Arg{ArgInt, ArgHex, ArgInt, ArgInt, ArgInt, ArgHex}}},
	{unix.SYS_LSEEK, Entry{"lseek", sysLseek, Supported, "", []Arg{ArgInt, ArgInt, ArgInt}}},
	{unix.SYS_IOCTL, Entry{"ioctl", sysIoctl, Partial, "FIONREAD, FIOCLEX, FIONCLEX, FIONBIO, FIOASYNC (O_ASYNC as F_SETFL sets it; changing it on a file poll cannot wait on, such as a regular file, is ENOTTY as on Linux); TCGETS and TIOCGWINSZ on stdio; " + ttyIoctlNote + "; on sockets SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFTXQLEN, SIOCGIFMETRIC, SIOCGIFMAP, on AF_INET sockets SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFBRDADDR, SIOCGIFDSTADDR, on TCP and UDP SIOCINQ and SIOCOUTQ; interface setters EPERM; ENOTTY elsewhere", []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_FSTAT, Entry{"fstat", sysFstat, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_FTRUNCATE, Entry{"ftruncate", sysFtruncate, Supported, "", []Arg{ArgInt, ArgInt}}},
	{unix.SYS_FALLOCATE, Entry{"fallocate", sysFallocate, Partial, "modes 0 and FALLOC_FL_KEEP_SIZE; others EOPNOTSUPP", []Arg{ArgInt, ArgHex, ArgInt, ArgInt}}},
	{unix.SYS_FSYNC, Entry{"fsync", sysFsync, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_FDATASYNC, Entry{"fdatasync", sysFsync, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_SYNC, Entry{"sync", sysSync, Supported, "", nil}},
	{unix.SYS_SYNCFS, Entry{"syncfs", sysSyncfs, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_READAHEAD, Entry{"readahead", sysReadahead, Supported, "", []Arg{ArgInt, ArgInt, ArgInt}}},
	{unix.SYS_FADVISE64, Entry{"fadvise64", sysFadvise64, Supported, "advice is checked and has no effect", []Arg{ArgInt, ArgInt, ArgInt, ArgInt}}},
}

// The generic file ioctls, which x/sys/unix lacks on x86-64 but for
// FIONREAD (TIOCINQ).
const (
	fionbio  = 0x5421
	fionclex = 0x5450
	fioclex  = 0x5451
	fioasync = 0x5452
)

// rwfNote is the note of preadv2 and pwritev2.
const rwfNote = "RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT, RWF_APPEND, RWF_NOSIGNAL; others EOPNOTSUPP"

// rwfKnown are the RWF_* flags preadv2 and pwritev2 accept.
const rwfKnown = unix.RWF_HIPRI | unix.RWF_DSYNC | unix.RWF_SYNC | unix.RWF_NOWAIT | unix.RWF_APPEND | unix.RWF_NOSIGNAL

// ioChunk bounds the host buffer one read or write step uses.
const ioChunk = 64 << 10

func getFile(t *kernel.Task, fd uint64) (*vfs.File, error) {
	return t.ThreadGroup().FDs().Get(int32(fd))
}

// maxRW is MAX_RW_COUNT (INT_MAX & PAGE_MASK): Linux moves at most this
// many bytes in one read or write call.
const maxRW = 0x7ffff000

// checkCount applies Linux's bound: counts are clamped to MAX_RW_COUNT and
// must not be negative when read as ssize_t.
func checkCount(n uint64) (uint64, error) {
	if int64(n) < 0 {
		return 0, unix.EINVAL
	}
	return min(n, maxRW), nil
}

// transfer moves up to n bytes between the guest buffer at addr and the
// file, in chunks, stopping at a short transfer. read is true for guest reads.
func transfer(t *kernel.Task, addr, n uint64, read bool, step func(buf []byte) (int, error)) (uint64, error) {
	return transferUndo(t, addr, n, read, step, nil)
}

// startTransfer checks a transfer's count; an empty transfer still asks
// step once, for the errors Linux gives then (EBADF, EISDIR, ...).
func startTransfer(n uint64, step func(buf []byte) (int, error)) (uint64, bool, error) {
	n, err := checkCount(n)
	if err != nil || n > 0 {
		return n, false, err
	}
	_, err = step(nil)
	return 0, true, err
}

// transferUndo is transfer for reads at a file's offset: when the guest
// buffer faults after a read, unread gives the bytes back (moves the
// offset back), so that the offset moves only by what reached the guest,
// as on Linux.
func transferUndo(t *kernel.Task, addr, n uint64, read bool, step func(buf []byte) (int, error), unread func(int)) (uint64, error) {
	n, empty, err := startTransfer(n, step)
	if empty || err != nil {
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
				if unread != nil {
					unread(got)
				}
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

// directChunk bounds the guest memory pinned at once by transferDirect.
const directChunk = 1 << 20

// transferDirect is transferUndo for regular files: the file reads into or
// writes from guest memory itself, pinned for the duration, with no copy
// through a host buffer. A buffer that starts at a page the guest cannot
// access goes through transferUndo, which gives Linux's answer (a read at
// the end of the file returns 0 before it ever touches the buffer).
func transferDirect(t *kernel.Task, addr, n uint64, read bool, step func(buf []byte) (int, error), unread func(int)) (uint64, error) {
	n, empty, err := startTransfer(n, step)
	if empty || err != nil {
		return 0, err
	}
	pin := t.Pinned()
	var done uint64
	for done < n {
		want := min(n-done, directChunk)
		pinErr := t.ThreadGroup().MM().Pin(pin, addr+done, want, read)
		short := false
		for _, s := range pin.Slices {
			got, err := step(s)
			done += uint64(got)
			if err != nil {
				pin.Release()
				return done, orPartial(done, err)
			}
			if got < len(s) {
				short = true
				break
			}
		}
		pinned := uint64(pin.Len())
		pin.Release()
		if pinErr != nil && pinned == 0 {
			rest, err := transferUndo(t, addr+done, n-done, read, step, unread)
			return done + rest, orPartial(done+rest, err)
		}
		if pinErr != nil {
			return done, nil
		}
		if short || pinned < want {
			break
		}
	}
	return done, nil
}

// transferFile picks the direct path for regular files. A read of
// anything else (a pipe, a terminal) takes one step: it returns what is
// there rather than wait for more.
//
// As Linux's access_ok, a buffer that reaches beyond the user address
// range is EFAULT before any I/O, once the file has had its say (EBADF,
// EISDIR, ...); a write to a sink moves nothing and succeeds.
func transferFile(t *kernel.Task, f *vfs.File, addr, n uint64, read bool, step func(buf []byte) (int, error), unread func(int)) (uint64, error) {
	inRange := inUserRange(addr, n)
	if _, sink := f.Impl().(vfs.Sink); !inRange || sink && !read {
		if _, err := step(nil); err != nil {
			return 0, err
		}
		if !inRange {
			return 0, unix.EFAULT
		}
		return checkCount(n)
	}
	if f.IsRegular() {
		return transferDirect(t, addr, n, read, step, unread)
	}
	if read {
		n = min(n, ioChunk)
	}
	return transferUndo(t, addr, n, read, step, unread)
}

// inUserRange says whether the n bytes at addr lie in the user address
// range (Linux's access_ok).
func inUserRange(addr, n uint64) bool {
	return addr+n >= addr && addr+n <= mm.MaxUserTop
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
	if s, ok := netstack.SockOf(f); ok {
		n, err := checkCount(a[2])
		if err != nil {
			return 0, err
		}
		return socketRead(t, s, f, []iovec{{Base: a[1], Len: n}})
	}
	step, undo := fileStep(t, f, true, nil)
	return transferFile(t, f, a[1], a[2], true, step, undo)
}

func sysWrite(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if s, ok := netstack.SockOf(f); ok {
		n, err := checkCount(a[2])
		if err != nil {
			return 0, err
		}
		return socketWrite(t, s, f, []iovec{{Base: a[1], Len: n}})
	}
	n := a[2]
	// A buffer outside the user range is EFAULT before RLIMIT_FSIZE has
	// a say, as Linux checks it first; transferFile reports it.
	if inUserRange(a[1], n) {
		if n, err = limitWrite(t, f, -1, n); err != nil {
			return 0, err
		}
	}
	step, undo := fileStep(t, f, false, nil)
	return transferFile(t, f, a[1], n, false, step, undo)
}

func sysPread(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return positionalIO(t, a, true) }
func sysPwrite(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return positionalIO(t, a, false)
}

// positionalIO implements pread64 and pwrite64: I/O at an offset that
// leaves the file's own offset alone.
func positionalIO(t *kernel.Task, a *kernel.SyscallArgs, read bool) (uint64, error) {
	off := int64(a[3])
	if off < 0 {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	n := a[2]
	if !read && inUserRange(a[1], n) {
		if n, err = limitWrite(t, f, off, n); err != nil {
			return 0, err
		}
	}
	step, undo := fileStep(t, f, read, &off)
	return transferFile(t, f, a[1], n, read, step, undo)
}

// fileIO reads (read true) or writes b at *off and advances *off by what
// moved, or at the file's own offset when off is nil.
func fileIO(t *kernel.Task, f *vfs.File, read bool, off *int64, b []byte) (int, error) {
	switch {
	case off == nil && read:
		return f.Read(t.Context(), b)
	case off == nil:
		return f.Write(t.Context(), b)
	}
	var n int
	var err error
	if read {
		n, err = f.PRead(t.Context(), b, *off)
	} else {
		n, err = f.PWrite(t.Context(), b, *off)
	}
	*off += int64(n)
	return n, err
}

// fileStep returns the step and undo functions of transferFile and
// vectorIO for I/O on f as fileIO does it. undo, which gives back bytes
// read that did not reach the guest, is set only for reads at the
// file's own offset.
func fileStep(t *kernel.Task, f *vfs.File, read bool, off *int64) (step func([]byte) (int, error), undo func(int)) {
	step = func(b []byte) (int, error) { return fileIO(t, f, read, off, b) }
	if read && off == nil {
		undo = func(n int) { unread(t, f, n) }
	}
	return step, undo
}

// iovec is struct iovec with the base kept as an integer: it is a guest
// address, never a host pointer.
type iovec struct {
	Base, Len uint64
}

// uioMaxIov is UIO_MAXIOV, the most iovecs one call takes.
const uioMaxIov = 1024

// readIovecs reads and checks an iovec array as Linux's import_iovec
// does, before any I/O: at most UIO_MAXIOV entries, no length negative
// as ssize_t (EINVAL), every buffer within the user address range
// (EFAULT), and lengths cut so that the total is at most MAX_RW_COUNT.
func readIovecs(t *kernel.Task, addr, count uint64) ([]iovec, error) {
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
	for _, v := range iovs {
		if int64(v.Len) < 0 {
			return nil, unix.EINVAL
		}
	}
	var total uint64
	for i := range iovs {
		v := &iovs[i]
		if end := v.Base + v.Len; end < v.Base || end > mm.MaxUserTop {
			return nil, unix.EFAULT
		}
		v.Len = min(v.Len, maxRW-total)
		total += v.Len
	}
	return iovs, nil
}

// vectorIO moves data between the guest buffers of an iovec array and
// step, stopping at a short transfer.
func vectorIO(t *kernel.Task, f *vfs.File, iovs []iovec, read bool, step func([]byte) (int, error), undo func(int)) (uint64, error) {
	var done uint64
	for _, v := range iovs {
		if v.Len == 0 {
			continue
		}
		n, err := transferFile(t, f, v.Base, v.Len, read, step, undo)
		done += n
		if err != nil {
			return done, orPartial(done, err)
		}
		// A stream read that got data returns it rather than wait for more.
		if n < v.Len || read && n > 0 && !f.IsRegular() {
			break
		}
	}
	return done, nil
}

// vectorFile implements readv, writev and their positional and flagged
// forms: off -1 is the file's offset, a lower one is EINVAL, and flags
// are RWF_* flags.
func vectorFile(t *kernel.Task, a *kernel.SyscallArgs, read bool, off int64, flags uint64) (uint64, error) {
	if off < -1 {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	iovs, err := readIovecs(t, a[1], a[2])
	if err != nil {
		return 0, err
	}
	if s, ok := netstack.SockOf(f); ok && off == -1 && flags == 0 {
		if read {
			return socketRead(t, s, f, iovs)
		}
		return socketWrite(t, s, f, iovs)
	}
	if flags != 0 && totalLen(iovs) > 0 {
		if off, err = applyRWF(t, f, read, off, flags); err != nil {
			return 0, err
		}
	}
	if !read {
		if iovs, err = limitVector(t, f, off, iovs); err != nil {
			return 0, err
		}
	}
	if off == appendAtEnd {
		return appendVector(t, f, iovs)
	}
	at := &off
	if off == -1 {
		at = nil
	}
	step, undo := fileStep(t, f, read, at)
	return vectorIO(t, f, iovs, read, step, undo)
}

// unread moves f's offset back over n bytes read that did not reach the
// guest; streams cannot give data back.
func unread(t *kernel.Task, f *vfs.File, n int) {
	f.Seek(t.Context(), -int64(n), unix.SEEK_CUR)
}

func totalLen(iovs []iovec) uint64 {
	var n uint64
	for _, v := range iovs {
		n += v.Len
	}
	return n
}

// appendAtEnd is what applyRWF returns for an RWF_APPEND write at the
// file's offset.
const appendAtEnd = -2

// applyRWF checks preadv2/pwritev2 flags against f and returns the offset
// to use: RWF_APPEND writes at the end of the file.
func applyRWF(t *kernel.Task, f *vfs.File, read bool, off int64, flags uint64) (int64, error) {
	if flags&^rwfKnown != 0 {
		return 0, unix.EOPNOTSUPP
	}
	_, seekErr := f.Seek(t.Context(), 0, unix.SEEK_CUR)
	if off != -1 && seekErr != nil {
		return 0, unix.ESPIPE
	}
	if flags&unix.RWF_NOWAIT != 0 && seekErr != nil {
		st, err := f.Stat(t.Context())
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			return 0, unix.EOPNOTSUPP
		}
		want := uint32(unix.POLLOUT)
		if read {
			want = unix.POLLIN | unix.POLLHUP
		}
		if f.Readiness(want)&(want|unix.POLLERR) == 0 {
			return 0, unix.EAGAIN
		}
	}
	if read || flags&unix.RWF_APPEND == 0 || seekErr != nil {
		return off, nil
	}
	if off == -1 {
		return appendAtEnd, nil
	}
	st, err := f.Stat(t.Context())
	if err != nil {
		return 0, err
	}
	return int64(st.Size), nil
}

// appendVector writes iovs at the end of f and leaves the file's offset
// after them, as RWF_APPEND does.
func appendVector(t *kernel.Task, f *vfs.File, iovs []iovec) (uint64, error) {
	st, err := f.Stat(t.Context())
	if err != nil {
		return 0, err
	}
	off := int64(st.Size)
	step, _ := fileStep(t, f, false, &off)
	n, err := vectorIO(t, f, iovs, false, step, nil)
	if n > 0 {
		f.Seek(t.Context(), off, unix.SEEK_SET)
	}
	return n, err
}

func sysReadv(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return vectorFile(t, a, true, -1, 0)
}

func sysWritev(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return vectorFile(t, a, false, -1, 0)
}

// position is the offset argument of preadv and pwritev: any negative
// one is EINVAL.
func position(off uint64) int64 {
	if int64(off) < 0 {
		return -2
	}
	return int64(off)
}

// position2 is the offset argument of preadv2 and pwritev2, where -1
// means the file's offset.
func position2(off uint64) int64 {
	return max(int64(off), -2)
}

func sysPreadv(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return vectorFile(t, a, true, position(a[3]), 0)
}

func sysPwritev(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return vectorFile(t, a, false, position(a[3]), 0)
}

func sysPreadv2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return vectorFile(t, a, true, position2(a[3]), a[5])
}

func sysPwritev2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return vectorFile(t, a, false, position2(a[3]), a[5])
}

func sysLseek(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if uint32(a[2]) > unix.SEEK_HOLE {
		return 0, unix.EINVAL
	}
	off, err := f.Seek(t.Context(), int64(a[1]), int(uint32(a[2])))
	return uint64(off), err
}

func sysIoctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if s, ok := netstack.SockOf(f); ok {
		if handled, err := socketIoctl(t, s, uint32(a[1]), a[2]); handled {
			return 0, err
		}
	}
	switch uint32(a[1]) {
	case fioclex:
		return 0, t.ThreadGroup().FDs().SetCloseOnExec(int32(a[0]), true)
	case fionclex:
		return 0, t.ThreadGroup().FDs().SetCloseOnExec(int32(a[0]), false)
	case fionbio:
		var on [4]byte
		if err := copyIn(t, a[2], on[:]); err != nil {
			return 0, err
		}
		flags := f.StatusFlags() &^ unix.O_NONBLOCK
		if on != [4]byte{} {
			flags |= unix.O_NONBLOCK
		}
		return 0, f.SetStatusFlags(flags)
	case fioasync:
		return 0, ioctlAsync(t, f, a[0], a[2])
	case unix.TIOCINQ:
		n, err := f.Queued(t.Context())
		if err != nil {
			return 0, err
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(min(n, math.MaxInt32)))
		return 0, copyOut(t, a[2], b[:])
	}
	if pty, master, ok := ptyOf(f); ok {
		return ptyIoctl(t, f, pty, master, uint64(uint32(a[1])), a[2])
	}
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

func sysFtruncate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if int64(a[1]) < 0 {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if err := limitGrowth(t, f, int64(a[1])); err != nil {
		return 0, err
	}
	return 0, f.Truncate(t.Context(), int64(a[1]))
}

func sysFallocate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	off, length := int64(a[2]), int64(a[3])
	if a[1] == 0 && off >= 0 && length > 0 && off+length > off {
		if err := limitGrowth(t, f, off+length); err != nil {
			return 0, err
		}
	}
	return 0, f.Allocate(t.Context(), uint32(a[1]), off, length)
}

func sysFsync(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return 0, f.Sync(t.Context())
}

// sysSync has nothing to write back: file systems write through.
func sysSync(*kernel.Task, *kernel.SyscallArgs) (uint64, error) { return 0, nil }

func sysSyncfs(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	f.DecRef()
	return 0, nil
}

// sysReadahead implements readahead(2). File data is in memory or read
// on demand, so only Linux's checks remain: a file open for reading
// (EBADF), a regular one (EINVAL), a count not negative as loff_t.
func sysReadahead(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	switch {
	case isPath(f) || f.StatusFlags()&unix.O_ACCMODE == unix.O_WRONLY:
		return 0, unix.EBADF
	case !f.IsRegular() || int64(a[2]) < 0:
		return 0, unix.EINVAL
	}
	return 0, nil
}

// sysFadvise64 checks its arguments as Linux does and takes no action:
// the advice only tunes caching.
func sysFadvise64(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	st, err := f.Stat(t.Context())
	if err != nil {
		return 0, err
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFIFO:
		return 0, unix.ESPIPE
	case int64(a[2]) < 0, a[3] > unix.FADV_NOREUSE:
		return 0, unix.EINVAL
	}
	return 0, nil
}

func statOf(t *kernel.Task, fd uint64) (unix.Statx_t, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return unix.Statx_t{}, err
	}
	defer f.DecRef()
	return f.Stat(t.Context())
}

func sysFstat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	x, err := statOf(t, a[0])
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	vfs.StatFromStatx(&st, &x)
	return 0, copyOutStruct(t, a[1], &st)
}
