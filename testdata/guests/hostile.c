// A hostile guest: system calls with garbage numbers, pointers, lengths and
// flags, seeded by argv[1]. It must only ever hurt itself.
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t state;
static uint64_t next(void) {
	state ^= state << 13; state ^= state >> 7; state ^= state << 17;
	return state;
}

static uint64_t garbage(void) {
	static const uint64_t interesting[] = {0, 1, 8, 0xfff, 0x1000, 0x7fffffffffff, 0x800000000000,
		0xffffffff80000000, 0xffffffffffffffff, 0x7fffffff, 0x80000000, (uint64_t)-4096};
	switch (next() % 3) {
	case 0: return interesting[next() % (sizeof interesting / sizeof *interesting)];
	case 1: return next();
	default: return next() & 0xffff;
	}
}

int main(int argc, char **argv) {
	state = argc > 1 ? strtoull(argv[1], 0, 10) | 1 : 1;
	long n = argc > 2 ? atol(argv[2]) : 5000;
	for (long i = 0; i < n; i++) {
		long nr = next() % 460;
		// Leave out what would legitimately end or stall the process.
		if (nr == SYS_exit || nr == SYS_exit_group || nr == SYS_rt_sigreturn || nr == SYS_pause ||
		    nr == SYS_vfork || nr == SYS_fork || nr == SYS_clone || nr == SYS_clone3 || nr == SYS_execve ||
		    nr == SYS_execveat || nr == SYS_kill || nr == SYS_tkill || nr == SYS_tgkill ||
		    nr == SYS_nanosleep || nr == SYS_clock_nanosleep || nr == SYS_read || nr == SYS_readv ||
		    nr == SYS_munmap || nr == SYS_mremap || nr == SYS_mprotect || nr == SYS_mmap || nr == SYS_brk ||
		    nr == SYS_arch_prctl || nr == SYS_madvise || nr == SYS_close || nr == SYS_pread64 ||
		    nr == SYS_preadv || nr == SYS_preadv2 || nr == SYS_rt_sigsuspend || nr == SYS_sigaltstack ||
		    nr == SYS_rt_sigtimedwait || nr == SYS_select || nr == SYS_pselect6 || nr == SYS_poll ||
		    nr == SYS_ppoll || nr == SYS_epoll_wait || nr == SYS_epoll_pwait || nr == 441 /* epoll_pwait2 */ || nr == SYS_wait4 ||
		    nr == SYS_waitid || nr == SYS_futex || nr == SYS_shmat || nr == SYS_set_tid_address || nr == SYS_dup2 ||
		    nr == SYS_dup3 || nr == SYS_fcntl || nr == SYS_close_range)
			continue;
		syscall(nr, garbage(), garbage(), garbage(), garbage(), garbage(), garbage());
	}
	write(1, "survived\n", 9);
	return 0;
}
