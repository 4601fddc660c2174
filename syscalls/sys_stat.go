package syscalls

import (
	"encoding/binary"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

var statEntries = []entryAt{
	{unix.SYS_STAT, Entry{"stat", sysStat, Supported, "", []Arg{ArgPath, ArgHex}}},
	{unix.SYS_LSTAT, Entry{"lstat", sysLstat, Supported, "", []Arg{ArgPath, ArgHex}}},
	{unix.SYS_NEWFSTATAT, Entry{"newfstatat", sysNewfstatat, Supported, "", []Arg{ArgDirFD, ArgPath, ArgHex, ArgHex}}},
	{unix.SYS_STATX, Entry{"statx", sysStatx, Partial, "no STATX_MNT_ID, STATX_DIOALIGN or the newer fields", []Arg{ArgDirFD, ArgPath, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_GETDENTS64, Entry{"getdents64", sysGetdents64, Supported, "", []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_GETDENTS, Entry{"getdents", sysGetdents, Supported, "", []Arg{ArgInt, ArgHex, ArgInt}}},
}

// atStatxSyncType is AT_STATX_SYNC_TYPE: the statx sync-mode bits.
const atStatxSyncType = 0x6000

// statPath reads the path of a stat call; with AT_EMPTY_PATH a NULL
// pointer is an empty path, as Linux 6.11 allows.
func statPath(t *kernel.Task, addr uint64, flags int) (string, error) {
	if addr == 0 && flags&unix.AT_EMPTY_PATH != 0 {
		return "", nil
	}
	return readPathArg(t, addr, flags&unix.AT_EMPTY_PATH != 0)
}

func fstatat(t *kernel.Task, dirfd, pathAddr, buf uint64, flags int) (uint64, error) {
	path, err := statPath(t, pathAddr, flags)
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	err = atResolved(t, dirfd, path, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		return v.StatAt(ctx, dir, path, flags, &st)
	})
	if err != nil {
		return 0, err
	}
	return 0, copyOutStruct(t, buf, &st)
}

func sysStat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return fstatat(t, atFDCWD, a[0], a[1], 0)
}

func sysLstat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return fstatat(t, atFDCWD, a[0], a[1], unix.AT_SYMLINK_NOFOLLOW)
}

func sysNewfstatat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return fstatat(t, a[0], a[1], a[2], int(int32(a[3])))
}

func sysStatx(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags, mask := int(int32(a[2])), uint32(a[3])
	if flags&atStatxSyncType == atStatxSyncType || mask&unix.STATX__RESERVED != 0 {
		return 0, unix.EINVAL
	}
	path, err := statPath(t, a[1], flags)
	if err != nil {
		return 0, err
	}
	var st unix.Statx_t
	err = atResolved(t, a[0], path, func(v *vfs.VFS, ctx *vfs.Context, dir *vfs.File, path string) error {
		var err error
		st, err = v.StatxAt(ctx, dir, path, flags, mask)
		return err
	})
	if err != nil {
		return 0, err
	}
	return 0, copyOutStruct(t, a[4], &st)
}

// getdents fills the guest buffer with linux_dirent64 records and
// returns the bytes used; convert rewrites the records in place first.
func getdents(t *kernel.Task, a *kernel.SyscallArgs, convert func([]byte)) (uint64, error) {
	f, err := getFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	// Linux keeps the count in an int: a count above INT_MAX fits no
	// entry (EINVAL, as a buffer too small for one does).
	buf := t.Scratch(int(min(uint64(max(int32(a[2]), 0)), ioChunk)))
	pos, _ := f.Seek(t.Context(), 0, unix.SEEK_CUR)
	n, err := f.Getdents64(t.Context(), buf)
	if err != nil {
		return 0, err
	}
	if convert != nil {
		convert(buf[:n])
	}
	// Entries that did not reach the guest stay to be read, as on
	// Linux's tmpfs.
	if err := copyOut(t, a[1], buf[:n]); err != nil {
		f.Seek(t.Context(), pos, unix.SEEK_SET)
		return 0, err
	}
	return uint64(n), nil
}

func sysGetdents64(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return getdents(t, a, nil)
}

// toLinuxDirents rewrites linux_dirent64 records as the old linux_dirent
// ones of getdents(2). Both have the same length: the name moves down one
// byte and the type moves to the record's last byte.
func toLinuxDirents(b []byte) {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.LittleEndian.Uint16(b[16:]))
		typ := b[18]
		copy(b[18:reclen], b[nameOff:reclen])
		b[reclen-1] = typ
		b = b[reclen:]
	}
}

func sysGetdents(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return getdents(t, a, toLinuxDirents)
}
