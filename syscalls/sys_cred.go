package syscalls

import (
	"encoding/binary"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

// credNote is the note of the calls that change IDs: they are the
// process's, as glibc makes them by changing every thread's.
const credNote = "per process; root (uid 0) inside the sandbox only"

var credEntries = []entryAt{
	{unix.SYS_GETUID, Entry{"getuid", sysGetuid, Supported, "", nil}},
	{unix.SYS_GETEUID, Entry{"geteuid", sysGeteuid, Supported, "", nil}},
	{unix.SYS_GETGID, Entry{"getgid", sysGetgid, Supported, "", nil}},
	{unix.SYS_GETEGID, Entry{"getegid", sysGetegid, Supported, "", nil}},
	{unix.SYS_GETRESUID, Entry{"getresuid", sysGetresuid, Supported, "", []Arg{ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_GETRESGID, Entry{"getresgid", sysGetresgid, Supported, "", []Arg{ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_SETUID, Entry{"setuid", sysSetuid, Partial, credNote, []Arg{ArgInt}}},
	{unix.SYS_SETGID, Entry{"setgid", sysSetgid, Partial, credNote, []Arg{ArgInt}}},
	{unix.SYS_SETREUID, Entry{"setreuid", sysSetreuid, Partial, credNote, []Arg{ArgInt, ArgInt}}},
	{unix.SYS_SETREGID, Entry{"setregid", sysSetregid, Partial, credNote, []Arg{ArgInt, ArgInt}}},
	{unix.SYS_SETRESUID, Entry{"setresuid", sysSetresuid, Partial, credNote, []Arg{ArgInt, ArgInt, ArgInt}}},
	{unix.SYS_SETRESGID, Entry{"setresgid", sysSetresgid, Partial, credNote, []Arg{ArgInt, ArgInt, ArgInt}}},
	{unix.SYS_SETFSUID, Entry{"setfsuid", sysSetfsuid, Partial, credNote, []Arg{ArgInt}}},
	{unix.SYS_SETFSGID, Entry{"setfsgid", sysSetfsgid, Partial, credNote, []Arg{ArgInt}}},
	{unix.SYS_GETGROUPS, Entry{"getgroups", sysGetgroups, Supported, "", []Arg{ArgInt, ArgHex}}},
	{unix.SYS_SETGROUPS, Entry{"setgroups", sysSetgroups, Partial, credNote, []Arg{ArgInt, ArgHex}}},
	{unix.SYS_CAPGET, Entry{"capget", sysCapget, Supported, "", []Arg{ArgHex, ArgHex}}},
	{unix.SYS_CAPSET, Entry{"capset", sysCapset, Partial, "the calling process only; permission checks go by capabilities as on Linux, and a dropped one is gone at once", []Arg{ArgHex, ArgHex}}},
}

func creds(t *kernel.Task) *kernel.Creds { return t.ThreadGroup().Creds() }

func sysGetuid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(creds(t).UID), nil
}

func sysGeteuid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(creds(t).EUID), nil
}

func sysGetgid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(creds(t).GID), nil
}

func sysGetegid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(creds(t).EGID), nil
}

// putIDs writes three IDs to three guest addresses, in order.
func putIDs(t *kernel.Task, a *kernel.SyscallArgs, ids [3]uint32) error {
	for i, id := range ids {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], id)
		if err := copyOut(t, a[i], b[:]); err != nil {
			return err
		}
	}
	return nil
}

func sysGetresuid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	c := creds(t)
	return 0, putIDs(t, a, [3]uint32{c.UID, c.EUID, c.SUID})
}

func sysGetresgid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	c := creds(t)
	return 0, putIDs(t, a, [3]uint32{c.GID, c.EGID, c.SGID})
}

func sysSetuid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().SetUID(uint32(a[0]))
}

func sysSetgid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().SetGID(uint32(a[0]))
}

func sysSetreuid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().SetREUID(uint32(a[0]), uint32(a[1]))
}

func sysSetregid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().SetREGID(uint32(a[0]), uint32(a[1]))
}

func sysSetresuid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().SetRESUID(uint32(a[0]), uint32(a[1]), uint32(a[2]))
}

func sysSetresgid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return 0, t.ThreadGroup().SetRESGID(uint32(a[0]), uint32(a[1]), uint32(a[2]))
}

func sysSetfsuid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().SetFSUID(uint32(a[0]))), nil
}

func sysSetfsgid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().SetFSGID(uint32(a[0]))), nil
}

func sysGetgroups(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	size := int32(a[0])
	if size < 0 {
		return 0, unix.EINVAL
	}
	groups := creds(t).Groups
	if size == 0 || len(groups) == 0 {
		return uint64(len(groups)), nil
	}
	if len(groups) > int(size) {
		return 0, unix.EINVAL
	}
	return uint64(len(groups)), copyOut(t, a[1], sliceBytes(groups))
}

func sysSetgroups(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	size := uint32(a[0])
	switch {
	case !creds(t).Capable(unix.CAP_SETGID):
		return 0, unix.EPERM
	case size > kernel.NGroupsMax:
		return 0, unix.EINVAL
	}
	groups := make([]uint32, size)
	if size > 0 {
		if err := copyIn(t, a[1], sliceBytes(groups)); err != nil {
			return 0, err
		}
	}
	return 0, t.ThreadGroup().SetGroups(groups)
}

// capHeader reads a capability header: how many capUserData structs its
// version takes, and its pid. An unknown version is answered with the
// preferred one, written into the header, and EINVAL.
func capHeader(t *kernel.Task, addr uint64) (int, int32, error) {
	var h unix.CapUserHeader
	if err := copyInStruct(t, addr, &h); err != nil {
		return 0, 0, err
	}
	switch h.Version {
	case unix.LINUX_CAPABILITY_VERSION_1:
		return 1, h.Pid, nil
	case unix.LINUX_CAPABILITY_VERSION_2, unix.LINUX_CAPABILITY_VERSION_3:
		return 2, h.Pid, nil
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], unix.LINUX_CAPABILITY_VERSION_3)
	if err := copyOut(t, addr, b[:]); err != nil {
		return 0, 0, err
	}
	return 0, 0, unix.EINVAL
}

func sysCapget(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	n, pid, err := capHeader(t, a[0])
	if a[1] == 0 && (err == nil || err == unix.EINVAL) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	c := creds(t)
	switch {
	case pid < 0:
		return 0, unix.EINVAL
	case pid != 0 && pid != t.TID():
		o := t.Kernel().Thread(pid)
		if o == nil {
			return 0, unix.ESRCH
		}
		c = o.ThreadGroup().Creds()
	}
	data := [2]unix.CapUserData{
		{Effective: uint32(c.CapEffective), Permitted: uint32(c.CapPermitted), Inheritable: uint32(c.CapInheritable)},
		{Effective: uint32(c.CapEffective >> 32), Permitted: uint32(c.CapPermitted >> 32), Inheritable: uint32(c.CapInheritable >> 32)},
	}
	return 0, copyOut(t, a[1], sliceBytes(data[:n]))
}

func sysCapset(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	n, pid, err := capHeader(t, a[0])
	if err != nil {
		return 0, err
	}
	if pid != 0 && pid != t.TID() {
		return 0, unix.EPERM
	}
	var data [2]unix.CapUserData
	if err := copyIn(t, a[1], sliceBytes(data[:n])); err != nil {
		return 0, err
	}
	join := func(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }
	return 0, t.ThreadGroup().SetCaps(
		join(data[0].Effective, data[1].Effective),
		join(data[0].Permitted, data[1].Permitted),
		join(data[0].Inheritable, data[1].Inheritable))
}
