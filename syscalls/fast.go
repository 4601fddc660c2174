package syscalls

import "golang.org/x/sys/unix"

// fastCalls may be served by a host worker while the calling vCPU waits in
// the guest: they never block and never touch the vCPU's registers.
var fastCalls = [...]int{
	unix.SYS_GETPID, unix.SYS_GETPPID, unix.SYS_GETTID,
	unix.SYS_GETUID, unix.SYS_GETEUID, unix.SYS_GETGID, unix.SYS_GETEGID,
	unix.SYS_CLOCK_GETTIME, unix.SYS_CLOCK_GETRES, unix.SYS_GETTIMEOFDAY, unix.SYS_TIME,
	unix.SYS_GETRANDOM, unix.SYS_UNAME,
	unix.SYS_BRK, unix.SYS_MMAP, unix.SYS_MUNMAP, unix.SYS_MPROTECT, unix.SYS_MREMAP, unix.SYS_MADVISE,
	unix.SYS_RT_SIGPROCMASK, unix.SYS_RT_SIGACTION, unix.SYS_SIGALTSTACK,
	unix.SYS_PRLIMIT64, unix.SYS_GETRLIMIT, unix.SYS_SCHED_GETAFFINITY,
	unix.SYS_SET_ROBUST_LIST, unix.SYS_SET_TID_ADDRESS,
	unix.SYS_FSTAT, unix.SYS_LSEEK, unix.SYS_CLOSE, unix.SYS_DUP,
}

var fast [tableSize]bool

func init() {
	for _, nr := range fastCalls {
		fast[nr] = true
	}
}

// Fast implements kernel.Syscalls.
func (Dispatcher) Fast(nr uint64) bool { return nr < tableSize && fast[nr] && table[nr].Handler != nil }
