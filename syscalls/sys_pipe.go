package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
	"golang.org/x/sys/unix"
)

var pipeEntries = []entryAt{
	{unix.SYS_PIPE, Entry{"pipe", sysPipe, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_PIPE2, Entry{"pipe2", sysPipe2, Partial, "O_CLOEXEC and O_NONBLOCK; O_DIRECT (packet mode) is EINVAL", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_MEMFD_CREATE, Entry{"memfd_create", sysMemfdCreate, Partial, "MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_EXEC, MFD_NOEXEC_SEAL; seals enforced (write, ftruncate, fallocate, shared writable mmap; not mprotect of a shared read-only mapping); MFD_HUGETLB is EINVAL", []Arg{ArgPath, ArgHex}}},
}

func pipe2(t *kernel.Task, addr uint64, flags int) (uint64, error) {
	r, w, err := pipe.New(flags)
	if err != nil {
		return 0, err
	}
	cloexec := flags&unix.O_CLOEXEC != 0
	rfd, err := installFD(t, r, 0, cloexec)
	if err != nil {
		w.DecRef()
		return 0, err
	}
	wfd, err := installFD(t, w, 0, cloexec)
	if err != nil {
		closeFD(t, rfd)
		return 0, err
	}
	fds := [2]int32{rfd, wfd}
	if err := copyOutStruct(t, addr, &fds); err != nil {
		closeFD(t, rfd)
		closeFD(t, wfd)
		return 0, err
	}
	return 0, nil
}

func sysPipe(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return pipe2(t, a[0], 0)
}

func sysPipe2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return pipe2(t, a[0], int(int32(a[1])))
}

// memfd_create flags; MFD_NAME_MAX_LEN is NAME_MAX less "memfd:".
const (
	mfdKnown      = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING | unix.MFD_HUGETLB | unix.MFD_NOEXEC_SEAL | unix.MFD_EXEC
	mfdNameMaxLen = unix.NAME_MAX - len("memfd:")
)

// sysMemfdCreate makes an anonymous regular file: a file of a tmpfs of
// its own, unlinked at once, so that it has no name anywhere and goes
// away with its last descriptor.
func sysMemfdCreate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := uint32(a[1])
	switch {
	case flags&^mfdKnown != 0,
		flags&unix.MFD_HUGETLB != 0,
		flags&unix.MFD_EXEC != 0 && flags&unix.MFD_NOEXEC_SEAL != 0:
		return 0, unix.EINVAL
	}
	name, err := t.ThreadGroup().MM().ReadString(a[0], mfdNameMaxLen+1)
	if err == unix.ENAMETOOLONG {
		return 0, unix.EINVAL
	} else if err != nil {
		return 0, err
	}
	mode := uint32(0o777)
	seals := uint32(unix.F_SEAL_SEAL)
	switch {
	case flags&unix.MFD_NOEXEC_SEAL != 0:
		mode, seals = 0o666, unix.F_SEAL_EXEC
	case flags&unix.MFD_ALLOW_SEALING != 0:
		seals = 0
	}
	cloexec := flags&unix.MFD_CLOEXEC != 0
	fd, err := reserveFD(t, cloexec)
	if err != nil {
		return 0, err
	}
	f, err := newMemfd(t, name, mode, seals)
	if err != nil {
		closeReserved(t, fd)
		return 0, err
	}
	return fillFD(t, fd, f, cloexec), nil
}

func newMemfd(t *kernel.Task, memfdName string, mode, seals uint32) (*vfs.File, error) {
	const name = "memfd"
	v, err := vfs.New(t.Context(), tmpfs.New(tmpfs.Options{}))
	if err != nil {
		return nil, err
	}
	ctx := &vfs.Context{Context: t.Context(), Creds: t.FSContext().Creds, Root: v.Root(), Cwd: v.Root()}
	f, err := v.OpenAt(ctx, nil, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, mode)
	if err != nil {
		return nil, err
	}
	if err := v.UnlinkAt(ctx, nil, name, 0); err != nil {
		f.DecRef()
		return nil, err
	}
	if err := tmpfs.MakeMemfd(f, memfdName, seals); err != nil {
		f.DecRef()
		return nil, err
	}
	return f, nil
}
