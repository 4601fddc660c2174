package syscalls

import (
	"encoding/binary"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

var cloneEntries = []entryAt{
	{unix.SYS_CLONE, Entry{"clone", sysClone, Partial, "threads and processes; CLONE_VM without CLONE_THREAD copies the address space; no namespaces or pidfds", []Arg{ArgHex, ArgHex, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_CLONE3, Entry{"clone3", sysClone3, Partial, "as clone; set_tid and cgroups are refused", []Arg{ArgHex, ArgInt}}},
	{unix.SYS_FORK, Entry{"fork", sysFork, Supported, "", nil}},
	{unix.SYS_VFORK, Entry{"vfork", sysVfork, Partial, "the child gets a copy of the address space; the parent waits for its exec or exit", nil}},
	{unix.SYS_EXECVE, Entry{"execve", sysExecve, Partial, "ELF programs, static or dynamically linked (the PT_INTERP interpreter is opened inside the sandbox), and #! scripts; set-user-ID bits are ignored", []Arg{ArgPath, ArgHex, ArgHex}}},
	{unix.SYS_EXECVEAT, Entry{"execveat", sysExecveat, Partial, "as execve", []Arg{ArgInt, ArgPath, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_WAIT4, Entry{"wait4", sysWait4, Partial, "rusage has CPU times and maxrss", []Arg{ArgInt, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_WAITID, Entry{"waitid", sysWaitid, Partial, "P_PIDFD is refused; rusage has CPU times and maxrss", []Arg{ArgInt, ArgInt, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_GETPGID, Entry{"getpgid", sysGetpgid, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_SETPGID, Entry{"setpgid", sysSetpgid, Supported, "", []Arg{ArgInt, ArgInt}}},
	{unix.SYS_GETPGRP, Entry{"getpgrp", sysGetpgrp, Supported, "", nil}},
	{unix.SYS_GETSID, Entry{"getsid", sysGetsid, Supported, "", []Arg{ArgInt}}},
	{unix.SYS_SETSID, Entry{"setsid", sysSetsid, Supported, "", nil}},
}

// maxArgStrings bounds argv and envp, and maxArgBytes their total size, as
// Linux's MAX_ARG_STRINGS and the default 2 MiB limit do (E2BIG past them).
const (
	maxArgStrings = 0x7fffffff
	maxArgBytes   = 2 << 20
	maxArgLen     = 32 * 4096 // MAX_ARG_STRLEN
)

func sysClone(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	// x86-64 passes clone(flags, newsp, parent_tid, child_tid, tls).
	flags := a[0]
	tid, err := t.Clone(kernel.CloneArgs{
		Flags: flags &^ 0xff, Stack: a[1], ParentTID: a[2], ChildTID: a[3], TLS: a[4],
		ExitSignal: int(flags & 0xff),
	})
	return uint64(tid), err
}

// cloneArgs is struct clone_args (linux/sched.h), version 2.
type cloneArgs struct {
	Flags, PidFD, ChildTID, ParentTID, ExitSignal, Stack, StackSize, TLS, SetTID, SetTIDSize, Cgroup uint64
}

func sysClone3(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const minSize = 64 // CLONE_ARGS_SIZE_VER0
	size := a[1]
	if size < minSize || size > 4096 {
		return 0, unix.EINVAL
	}
	buf := make([]byte, size)
	if err := copyIn(t, a[0], buf); err != nil {
		return 0, err
	}
	var ca cloneArgs
	n := copy(bytesOf(&ca), buf)
	for _, b := range buf[n:] {
		if b != 0 {
			return 0, unix.E2BIG
		}
	}
	const cloneIntoCgroup = 0x200000000
	switch {
	case ca.SetTID != 0 || ca.SetTIDSize != 0 || ca.Flags&cloneIntoCgroup != 0:
		return 0, unix.EINVAL
	case ca.ExitSignal > kernel.NumSignals || ca.Flags&0xff != 0:
		return 0, unix.EINVAL
	case (ca.Stack == 0) != (ca.StackSize == 0):
		return 0, unix.EINVAL
	}
	tid, err := t.Clone(kernel.CloneArgs{
		Flags: ca.Flags, Stack: ca.Stack + ca.StackSize, ParentTID: ca.ParentTID, ChildTID: ca.ChildTID,
		TLS: ca.TLS, ExitSignal: int(ca.ExitSignal),
	})
	return uint64(tid), err
}

func sysFork(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	tid, err := t.Clone(kernel.CloneArgs{ExitSignal: int(unix.SIGCHLD)})
	return uint64(tid), err
}

func sysVfork(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	tid, err := t.Clone(kernel.CloneArgs{Flags: unix.CLONE_VM | unix.CLONE_VFORK, ExitSignal: int(unix.SIGCHLD)})
	return uint64(tid), err
}

// readStrings reads a NULL-terminated array of string pointers (argv,
// envp), charging each string against *budget.
func readStrings(t *kernel.Task, addr uint64, budget *int) ([]string, error) {
	var out []string
	if addr == 0 {
		return nil, nil
	}
	var ptr [8]byte
	for i := 0; ; i++ {
		if i >= maxArgStrings {
			return nil, unix.E2BIG
		}
		if err := copyIn(t, addr+uint64(i)*8, ptr[:]); err != nil {
			return nil, err
		}
		p := binary.LittleEndian.Uint64(ptr[:])
		if p == 0 {
			return out, nil
		}
		s, err := t.ThreadGroup().MM().ReadString(p, maxArgLen)
		if err != nil {
			return nil, unix.EFAULT
		}
		if len(s) >= maxArgLen {
			return nil, unix.E2BIG
		}
		if *budget -= len(s) + 1 + 8; *budget < 0 {
			return nil, unix.E2BIG
		}
		out = append(out, s)
	}
}

func execve(t *kernel.Task, dirfd, pathAddr, argvAddr, envpAddr uint64, flags int) (uint64, error) {
	if flags&^(unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW) != 0 {
		return 0, unix.EINVAL
	}
	path, err := readPathArg(t, pathAddr, flags&unix.AT_EMPTY_PATH != 0)
	if err != nil {
		return 0, err
	}
	budget := maxArgBytes
	argv, err := readStrings(t, argvAddr, &budget)
	if err != nil {
		return 0, err
	}
	envv, err := readStrings(t, envpAddr, &budget)
	if err != nil {
		return 0, err
	}
	var dir *vfs.File
	if path == "" || path[0] != '/' && int32(dirfd) != unix.AT_FDCWD {
		if dir, err = getFile(t, dirfd); err != nil {
			return 0, err
		}
		defer dir.DecRef()
	}
	openFlags := 0
	if flags&unix.AT_SYMLINK_NOFOLLOW != 0 {
		openFlags = unix.O_NOFOLLOW
	}
	return 0, t.Execve(dir, path, argv, envv, openFlags)
}

func sysExecve(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return execve(t, uint64(unix.AT_FDCWD&0xffffffff), a[0], a[1], a[2], 0)
}

func sysExecveat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return execve(t, a[0], a[1], a[2], a[3], int(a[4]))
}

// waitChildren selects children as wait4's pid argument does.
func waitChildren(t *kernel.Task, pid int32) kernel.WaitSelector {
	switch {
	case pid > 0:
		return func(c *kernel.ThreadGroup) bool { return c.PID() == pid }
	case pid == 0:
		pgid := t.ThreadGroup().ProcessGroup()
		return func(c *kernel.ThreadGroup) bool { return c.ProcessGroup() == pgid }
	case pid == -1:
		return func(*kernel.ThreadGroup) bool { return true }
	}
	return func(c *kernel.ThreadGroup) bool { return c.ProcessGroup() == -pid }
}

func sysWait4(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const known = kernel.WNoHang | kernel.WUntraced | kernel.WContinued | kernel.WNoThread | kernel.WAll | kernel.WClone
	options := int(uint32(a[2]))
	if options&^known != 0 {
		return 0, unix.EINVAL
	}
	res, err := t.Wait(waitChildren(t, int32(a[0])), options|kernel.WExited)
	if err != nil || res.PID == 0 {
		return 0, err
	}
	if a[1] != 0 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], res.Status)
		if err := copyOut(t, a[1], b[:]); err != nil {
			return 0, err
		}
	}
	if a[3] != 0 {
		if err := copyOutRusage(t, a[3], res.Usage); err != nil {
			return 0, err
		}
	}
	return uint64(res.PID), nil
}

func sysWaitid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const (
		pAll  = 0
		pPID  = 1
		pPGID = 2
		known = kernel.WNoHang | kernel.WStopped | kernel.WExited | kernel.WContinued | kernel.WNoWait |
			kernel.WNoThread | kernel.WAll | kernel.WClone
	)
	idtype, id, options := a[0], int32(a[1]), int(uint32(a[3]))
	if options&^known != 0 || options&(kernel.WExited|kernel.WStopped|kernel.WContinued) == 0 {
		return 0, unix.EINVAL
	}
	var sel kernel.WaitSelector
	switch idtype {
	case pAll:
		sel = waitChildren(t, -1)
	case pPID:
		if id <= 0 {
			return 0, unix.EINVAL
		}
		sel = waitChildren(t, id)
	case pPGID:
		if id < 0 {
			return 0, unix.EINVAL
		}
		sel = waitChildren(t, -id)
		if id == 0 {
			sel = waitChildren(t, 0)
		}
	default:
		return 0, unix.EINVAL
	}
	res, err := t.Wait(sel, options)
	if err != nil {
		return 0, err
	}
	if a[2] != 0 {
		var info kernel.SigInfo
		if res.PID != 0 {
			info = kernel.NewSigInfo(int(unix.SIGCHLD), res.Code)
			info.SetSender(res.PID, 0)
			binary.LittleEndian.PutUint32(info[24:], uint32(res.Value))
		}
		if err := copyOut(t, a[2], info[:]); err != nil {
			return 0, err
		}
	}
	if a[4] != 0 {
		if err := copyOutRusage(t, a[4], res.Usage); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// processArg resolves a pid argument where 0 means the caller; a thread's
// id names its process.
func processArg(t *kernel.Task, pid int32) (*kernel.ThreadGroup, error) {
	if pid == 0 {
		return t.ThreadGroup(), nil
	}
	if pid < 0 {
		return nil, unix.EINVAL
	}
	tg := t.Kernel().ProcessOf(pid)
	if tg == nil {
		return nil, unix.ESRCH
	}
	return tg, nil
}

func sysGetpgid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	tg, err := processArg(t, int32(a[0]))
	if err != nil {
		return 0, unix.ESRCH
	}
	return uint64(tg.ProcessGroup()), nil
}

func sysGetpgrp(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	return uint64(t.ThreadGroup().ProcessGroup()), nil
}

func sysSetpgid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	pgid := int32(a[1])
	if pgid < 0 {
		return 0, unix.EINVAL
	}
	pid := int32(a[0])
	tg, err := processArg(t, pid)
	if err != nil {
		return 0, err
	}
	if pid != 0 && tg.PID() != pid {
		return 0, unix.EINVAL // a thread other than the leader
	}
	return 0, t.ThreadGroup().SetProcessGroup(tg, pgid)
}

func sysGetsid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	tg, err := processArg(t, int32(a[0]))
	if err != nil {
		return 0, unix.ESRCH
	}
	return uint64(tg.Session()), nil
}

func sysSetsid(t *kernel.Task, _ *kernel.SyscallArgs) (uint64, error) {
	sid, err := t.ThreadGroup().SetSession()
	return uint64(sid), err
}
