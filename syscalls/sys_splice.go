package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"golang.org/x/sys/unix"
)

var spliceEntries = []entryAt{
	{unix.SYS_SENDFILE, Entry{"sendfile", sysSendfile, Supported, "", []Arg{ArgInt, ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_COPY_FILE_RANGE, Entry{"copy_file_range", sysCopyFileRange, Supported, "", []Arg{ArgInt, ArgHex, ArgInt, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_SPLICE, Entry{"splice", sysSplice, Partial, "copies through a buffer: SPLICE_F_MOVE and SPLICE_F_GIFT are hints", []Arg{ArgInt, ArgHex, ArgInt, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_TEE, Entry{"tee", sysTee, Supported, "", []Arg{ArgInt, ArgInt, ArgInt, ArgHex}}},
}

// endpoint is one side of a copy between files: off is an explicit
// offset (nil: the file's own), isPipe says it is a pipe or FIFO.
type endpoint struct {
	f      *vfs.File
	off    *int64
	isPipe bool
}

// unread gives back n bytes read but not written, which a pipe cannot.
func (e endpoint) unread(t *kernel.Task, n int) {
	switch {
	case e.isPipe:
	case e.off != nil:
		*e.off -= int64(n)
	default:
		e.f.Seek(t.Context(), -int64(n), unix.SEEK_CUR)
	}
}

// pipeFree returns the room left in the pipe or FIFO that f writes.
func pipeFree(t *kernel.Task, f *vfs.File) int {
	if p, ok := pipe.Of(f); ok {
		return p.Free()
	}
	queued, _ := f.Queued(t.Context())
	return pipe.DefaultCapacity - queued
}

// pump moves up to n bytes from in to out through the task's buffer, as
// splice does: once some data has moved it stops rather than wait for an
// empty input pipe or a full output pipe; nonblock makes the first wait
// EAGAIN.
func pump(t *kernel.Task, in, out endpoint, n uint64, nonblock bool) (uint64, error) {
	buf := t.Scratch(ioChunk)
	var done uint64
	for done < n {
		size := int(min(n-done, ioChunk))
		if out.isPipe {
			free := pipeFree(t, out.f)
			switch {
			case free > 0:
				size = min(size, free)
			case done > 0:
				return done, nil
			case nonblock:
				return 0, unix.EAGAIN
			default:
				size = min(size, pipe.AtomicMax)
			}
		}
		if in.isPipe {
			ready := in.f.Readiness(unix.POLLIN | unix.POLLHUP)
			if ready&unix.POLLIN == 0 {
				switch {
				case done > 0 || ready&unix.POLLHUP != 0:
					return done, nil
				case nonblock:
					return 0, unix.EAGAIN
				}
			}
		}
		got, err := pumpIn(t, in, buf[:size])
		if got == 0 {
			return done, orPartial(done, err)
		}
		put, werr := fileIO(t, out.f, false, out.off, buf[:got])
		done += uint64(put)
		if in.isPipe && put > 0 {
			// Now the bytes written leave the pipe.
			in.f.Read(t.Context(), buf[:put])
		}
		if put < got {
			in.unread(t, got-put)
			return done, orPartial(done, werr)
		}
		if err != nil || got < size {
			return done, orPartial(done, err)
		}
	}
	return done, nil
}

// pumpIn reads what pump moves next: a pipe's bytes are only peeked at,
// and consumed once written, since a pipe cannot take back what the
// output (a full socket, say) did not take.
func pumpIn(t *kernel.Task, in endpoint, buf []byte) (int, error) {
	if in.isPipe {
		if _, ok := pipe.Of(in.f); ok {
			return pipe.Peek(t.Context(), in.f, buf, true)
		}
	}
	return fileIO(t, in.f, true, in.off, buf)
}

func canRead(f *vfs.File) bool {
	acc := f.StatusFlags() & (unix.O_ACCMODE | unix.O_PATH)
	return acc == unix.O_RDONLY || acc == unix.O_RDWR
}

func canWrite(f *vfs.File) bool {
	acc := f.StatusFlags() & (unix.O_ACCMODE | unix.O_PATH)
	return acc == unix.O_WRONLY || acc == unix.O_RDWR
}

func fileType(t *kernel.Task, f *vfs.File) uint32 {
	st, err := f.Stat(t.Context())
	if err != nil {
		return 0
	}
	return uint32(st.Mode) & unix.S_IFMT
}

func seekable(t *kernel.Task, f *vfs.File) bool {
	_, err := f.Seek(t.Context(), 0, unix.SEEK_CUR)
	return err == nil
}

// readOffset reads a loff_t argument; addr 0 is none.
func readOffset(t *kernel.Task, addr uint64) (*int64, error) {
	if addr == 0 {
		return nil, nil
	}
	var off int64
	if err := copyInStruct(t, addr, &off); err != nil {
		return nil, err
	}
	return &off, nil
}

// writeOffset writes back a loff_t argument read by readOffset; nil is
// none.
func writeOffset(t *kernel.Task, addr uint64, off *int64) error {
	if off == nil {
		return nil
	}
	return copyOutUint64(t, addr, uint64(*off))
}

// getFilePair gets the files of a copy from fd in to fd out; the caller
// drops both references.
func getFilePair(t *kernel.Task, inFD, outFD uint64) (in, out *vfs.File, err error) {
	if in, err = getFile(t, inFD); err != nil {
		return nil, nil, err
	}
	if out, err = getFile(t, outFD); err != nil {
		in.DecRef()
		return nil, nil, err
	}
	return in, out, nil
}

// statPair stats the two files of a copy.
func statPair(t *kernel.Task, in, out *vfs.File) (inSt, outSt unix.Statx_t, err error) {
	if inSt, err = in.Stat(t.Context()); err != nil {
		return inSt, outSt, err
	}
	outSt, err = out.Stat(t.Context())
	return inSt, outSt, err
}

// sameInode says whether two stats are of the same file.
func sameInode(a, b *unix.Statx_t) bool {
	return a.Dev_major == b.Dev_major && a.Dev_minor == b.Dev_minor && a.Ino == b.Ino
}

func sysSendfile(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	off, err := readOffset(t, a[2])
	if err != nil {
		return 0, err
	}
	in, err := getFile(t, a[1])
	if err != nil {
		return 0, err
	}
	defer in.DecRef()
	if !canRead(in) {
		return 0, unix.EBADF
	}
	if off != nil && !seekable(t, in) {
		return 0, unix.ESPIPE
	}
	count, err := checkCount(a[3])
	if err != nil || off != nil && *off < 0 {
		return 0, unix.EINVAL
	}
	out, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer out.DecRef()
	if !canWrite(out) {
		return 0, unix.EBADF
	}
	outPipe := fileType(t, out) == unix.S_IFIFO
	if fileType(t, in) == unix.S_IFIFO || !outPipe && out.StatusFlags()&unix.O_APPEND != 0 {
		return 0, unix.EINVAL
	}
	if count, err = limitWrite(t, out, -1, count); err != nil {
		return 0, err
	}
	nonblock := in.StatusFlags()&unix.O_NONBLOCK != 0 || outPipe && out.StatusFlags()&unix.O_NONBLOCK != 0
	n, err := pump(t, endpoint{f: in, off: off}, endpoint{f: out, isPipe: outPipe}, count, nonblock)
	if err := writeOffset(t, a[2], off); err != nil {
		return 0, err
	}
	return n, err
}

func sysCopyFileRange(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a[5] != 0 {
		return 0, unix.EINVAL
	}
	in, out, err := getFilePair(t, a[0], a[2])
	if err != nil {
		return 0, err
	}
	defer in.DecRef()
	defer out.DecRef()
	if isPath(in) || isPath(out) {
		return 0, unix.EBADF
	}
	inOff, err := readOffset(t, a[1])
	if err != nil {
		return 0, err
	}
	outOff, err := readOffset(t, a[3])
	if err != nil {
		return 0, err
	}
	inSt, outSt, err := statPair(t, in, out)
	if err != nil {
		return 0, err
	}
	inType, outType := uint32(inSt.Mode)&unix.S_IFMT, uint32(outSt.Mode)&unix.S_IFMT
	switch {
	case inType == unix.S_IFDIR || outType == unix.S_IFDIR:
		return 0, unix.EISDIR
	case inType != unix.S_IFREG || outType != unix.S_IFREG:
		return 0, unix.EINVAL
	case !canRead(in) || !canWrite(out) || out.StatusFlags()&unix.O_APPEND != 0:
		return 0, unix.EBADF
	}
	posIn, posOut := filePos(t, in, inOff), filePos(t, out, outOff)
	count := a[4]
	if uint64(posIn)+count < uint64(posIn) || uint64(posOut)+count < uint64(posOut) {
		return 0, unix.EOVERFLOW
	}
	if posIn >= int64(inSt.Size) {
		count = 0
	} else {
		count = min(count, uint64(int64(inSt.Size)-posIn))
	}
	if sameInode(&inSt, &outSt) && posOut+int64(count) > posIn && posOut < posIn+int64(count) {
		return 0, unix.EINVAL
	}
	if count == 0 {
		return 0, nil
	}
	if posIn < 0 || posOut < 0 {
		return 0, unix.EINVAL
	}
	if count, err = limitWrite(t, out, posOut, count); err != nil {
		return 0, err
	}
	n, err := pump(t, endpoint{f: in, off: &posIn}, endpoint{f: out, off: &posOut}, count, false)
	if n > 0 {
		if err := storePos(t, in, inOff, a[1], posIn); err != nil {
			return 0, err
		}
		if err := storePos(t, out, outOff, a[3], posOut); err != nil {
			return 0, err
		}
	}
	return n, err
}

// filePos is an explicit offset, or the file's own.
func filePos(t *kernel.Task, f *vfs.File, off *int64) int64 {
	if off != nil {
		return *off
	}
	pos, _ := f.Seek(t.Context(), 0, unix.SEEK_CUR)
	return pos
}

// storePos writes back an explicit offset, or moves the file's own.
func storePos(t *kernel.Task, f *vfs.File, off *int64, addr uint64, pos int64) error {
	if off != nil {
		return copyOutUint64(t, addr, uint64(pos))
	}
	_, err := f.Seek(t.Context(), pos, unix.SEEK_SET)
	return err
}

func sysSplice(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const spliceAll = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MORE | unix.SPLICE_F_GIFT
	n, flags := a[4], a[5]
	if n == 0 {
		return 0, nil
	}
	if flags&^spliceAll != 0 {
		return 0, unix.EINVAL
	}
	in, out, err := getFilePair(t, a[0], a[2])
	if err != nil {
		return 0, err
	}
	defer in.DecRef()
	defer out.DecRef()
	inSt, outSt, err := statPair(t, in, out)
	if err != nil {
		return 0, err
	}
	src := endpoint{f: in, isPipe: uint32(inSt.Mode)&unix.S_IFMT == unix.S_IFIFO}
	dst := endpoint{f: out, isPipe: uint32(outSt.Mode)&unix.S_IFMT == unix.S_IFIFO}
	if src.isPipe && a[1] != 0 || dst.isPipe && a[3] != 0 {
		return 0, unix.ESPIPE
	}
	if dst.off, err = readOffset(t, a[3]); err != nil {
		return 0, err
	}
	if src.off, err = readOffset(t, a[1]); err != nil {
		return 0, err
	}
	switch {
	case !canRead(in) || !canWrite(out):
		return 0, unix.EBADF
	case !src.isPipe && !dst.isPipe:
		return 0, unix.EINVAL
	case src.isPipe && dst.isPipe && sameInode(&inSt, &outSt):
		return 0, unix.EINVAL
	case src.off != nil && !seekable(t, in), dst.off != nil && !seekable(t, out):
		return 0, unix.ESPIPE
	case !dst.isPipe && out.StatusFlags()&unix.O_APPEND != 0:
		return 0, unix.EINVAL
	case src.off != nil && *src.off < 0, dst.off != nil && *dst.off < 0:
		return 0, unix.EINVAL
	}
	at := int64(-1)
	if dst.off != nil {
		at = *dst.off
	}
	count, err := limitWrite(t, out, at, n)
	if err != nil {
		return 0, err
	}
	nonblock := flags&unix.SPLICE_F_NONBLOCK != 0 ||
		src.isPipe && in.StatusFlags()&unix.O_NONBLOCK != 0 ||
		dst.isPipe && out.StatusFlags()&unix.O_NONBLOCK != 0
	done, err := pump(t, src, dst, count, nonblock)
	if err := writeOffset(t, a[1], src.off); err != nil {
		return 0, err
	}
	if err := writeOffset(t, a[3], dst.off); err != nil {
		return 0, err
	}
	return done, err
}

// sysTee copies data from one pipe to another without consuming it.
func sysTee(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const teeFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MORE | unix.SPLICE_F_GIFT
	if a[3]&^teeFlags != 0 {
		return 0, unix.EINVAL
	}
	in, out, err := getFilePair(t, a[0], a[1])
	if err != nil {
		return 0, err
	}
	defer in.DecRef()
	defer out.DecRef()
	inPipe, inOK := pipe.Of(in)
	outPipe, outOK := pipe.Of(out)
	switch {
	case !canRead(in) || !canWrite(out):
		return 0, unix.EBADF
	case !inOK || !outOK || inPipe == outPipe:
		return 0, unix.EINVAL
	}
	count, err := checkCount(a[2])
	if err != nil || count == 0 {
		return 0, err
	}
	nonblock := a[3]&unix.SPLICE_F_NONBLOCK != 0
	buf := t.Scratch(int(min(count, pipe.DefaultCapacity)))
	n, err := pipe.Peek(t.Context(), in, buf, nonblock)
	if n == 0 {
		return 0, err
	}
	if nonblock || out.StatusFlags()&unix.O_NONBLOCK != 0 {
		written, err := pipe.WriteNow(out, buf[:n])
		return uint64(written), err
	}
	written, err := out.Write(t.Context(), buf[:n])
	return uint64(written), orPartial(uint64(written), err)
}
