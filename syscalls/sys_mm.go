package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var memoryEntries = []entryAt{
	{unix.SYS_BRK, Entry{"brk", sysBrk, Supported, "", []Arg{ArgHex}}},
	{unix.SYS_MMAP, Entry{"mmap", sysMmap, Partial, "anonymous mappings only; file mappings come with the file system", []Arg{ArgHex, ArgHex, ArgHex, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_MUNMAP, Entry{"munmap", sysMunmap, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_MPROTECT, Entry{"mprotect", sysMprotect, Supported, "", []Arg{ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_MREMAP, Entry{"mremap", sysMremap, Supported, "", []Arg{ArgHex, ArgHex, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_MADVISE, Entry{"madvise", sysMadvise, Partial, "DONTNEED and FREE discard; hints accepted", []Arg{ArgHex, ArgHex, ArgInt}}},
}

func sysBrk(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return t.ThreadGroup().MM().Brk(a[0]), nil
}

func sysMmap(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := int(int32(a[3]))
	if flags&unix.MAP_ANONYMOUS == 0 {
		if _, err := getFile(t, a[4]); err != nil {
			return 0, err
		}
		return 0, unix.ENODEV
	}
	if a[5]&0xfff != 0 {
		return 0, unix.EINVAL
	}
	return t.ThreadGroup().MM().Mmap(a[0], a[1], int(int32(a[2])), flags)
}

func sysMunmap(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().MM().Munmap(a[0], a[1])
}

func sysMprotect(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().MM().Mprotect(a[0], a[1], int(int32(a[2])))
}

func sysMremap(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return t.ThreadGroup().MM().Mremap(a[0], a[1], a[2], int(int32(a[3])), a[4])
}

func sysMadvise(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().MM().Madvise(a[0], a[1], int(int32(a[2])))
}
