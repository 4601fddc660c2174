// The vDSO kvmbox maps into every process: the time functions read a page
// the host keeps current (vvar, mapped just below the image) and the guest's
// TSC, so they never leave the guest. Built by `go generate` (../gen.go);
// the result, ../vdso.so, is checked in and embedded.
#include <stdint.h>

struct timespec { long tv_sec, tv_nsec; };
struct timeval { long tv_sec, tv_usec; };
struct timezone { int tz_minuteswest, tz_dsttime; };

// vvar layout: ../vdso.go (TimePage) writes it; keep both in step.
struct vvar {
	volatile uint32_t seq;   // odd while the host updates the page
	volatile uint32_t valid; // 0: use the system call
	volatile uint64_t tsc_base;
	volatile uint64_t mult;  // nanoseconds per TSC tick, << shift
	volatile uint32_t shift;
	volatile uint32_t pad;
	volatile int64_t realtime_ns;
	volatile int64_t monotonic_ns;
	volatile int64_t boottime_ns;
	volatile int64_t tai_ns;
};

extern const struct vvar vvar __attribute__((visibility("hidden")));

enum { CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_MONOTONIC_RAW = 4, CLOCK_REALTIME_COARSE = 5,
       CLOCK_MONOTONIC_COARSE = 6, CLOCK_BOOTTIME = 7, CLOCK_TAI = 11 };
enum { SYS_gettimeofday = 96, SYS_time = 201, SYS_clock_gettime = 228, SYS_clock_getres = 229, SYS_getcpu = 309 };

static long syscall3(long nr, long a, long b, long c) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

static inline uint64_t rdtsc(void) {
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

// now reads clock clk in nanoseconds; it returns 0 when the page cannot
// serve it.
static int now(int clk, int64_t *ns) {
	uint32_t seq;
	int64_t base, delta;
	do {
		seq = vvar.seq;
		__asm__ volatile("" ::: "memory");
		if ((seq & 1) || !vvar.valid) return 0;
		switch (clk) {
		case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: base = vvar.realtime_ns; break;
		case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_COARSE: case CLOCK_MONOTONIC_RAW: base = vvar.monotonic_ns; break;
		case CLOCK_BOOTTIME: base = vvar.boottime_ns; break;
		case CLOCK_TAI: base = vvar.tai_ns; break;
		default: return 0;
		}
		uint64_t tsc = rdtsc();
		uint64_t ticks = tsc > vvar.tsc_base ? tsc - vvar.tsc_base : 0;
		delta = (int64_t)(((unsigned __int128)ticks * vvar.mult) >> vvar.shift);
		__asm__ volatile("" ::: "memory");
	} while (seq != vvar.seq);
	*ns = base + delta;
	return 1;
}

int __vdso_clock_gettime(int clk, struct timespec *ts) {
	int64_t ns;
	if (!now(clk, &ns)) return (int)syscall3(SYS_clock_gettime, clk, (long)ts, 0);
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	return 0;
}

int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz) {
	int64_t ns;
	if (!now(CLOCK_REALTIME, &ns)) return (int)syscall3(SYS_gettimeofday, (long)tv, (long)tz, 0);
	if (tv) {
		tv->tv_sec = ns / 1000000000;
		tv->tv_usec = ns % 1000000000 / 1000;
	}
	if (tz) tz->tz_minuteswest = tz->tz_dsttime = 0;
	return 0;
}

long __vdso_time(long *t) {
	int64_t ns;
	if (!now(CLOCK_REALTIME, &ns)) return syscall3(SYS_time, (long)t, 0, 0);
	if (t) *t = ns / 1000000000;
	return ns / 1000000000;
}

int __vdso_clock_getres(int clk, struct timespec *res) {
	return (int)syscall3(SYS_clock_getres, clk, (long)res, 0);
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache) {
	return (int)syscall3(SYS_getcpu, (long)cpu, (long)node, (long)cache);
}

int clock_gettime(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval *, struct timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
