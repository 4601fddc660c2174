// timers exercises alarm, setitimer, the POSIX timers, signalfd, SIGPIPE,
// prctl, getrusage/times/sysinfo and the credential calls. It prints
// results, errno names and yes/no answers about values that vary between
// runs (times, overrun counts, host capabilities), never the values
// themselves, so that a native run and a sandboxed one compare equal.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SI_TIMER
#define SI_TIMER (-2)
#endif
#define K_SIGEV_SIGNAL 0
#define K_SIGEV_NONE 1
#define K_SIGEV_THREAD_ID 4
#define SFD_NONBLOCK_ O_NONBLOCK
#define SFD_CLOEXEC_ O_CLOEXEC
#define CAP_V1 0x19980330
#define CAP_V3 0x20080522

static const char *ename(int e) {
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case EPIPE: return "EPIPE";
	case EINTR: return "EINTR";
	case EACCES: return "EACCES";
	case EBADF: return "EBADF";
	case ESRCH: return "ESRCH";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	}
	return "other";
}

// res shows a system call's result: the value, or -1 and the errno name.
static const char *res(long r) {
	static char buf[64];
	if (r < 0)
		snprintf(buf, sizeof buf, "-1 %s", ename(errno));
	else
		snprintf(buf, sizeof buf, "%ld", r);
	return buf;
}

static const char *yesno(int b) { return b ? "yes" : "no"; }

// The kernel's sigevent, so that glibc and musl pass the same thing.
struct ksigevent {
	uint64_t value;
	int signo;
	int notify;
	int tid;
	int pad[11];
};

static long timer_create_(int clock, struct ksigevent *ev, int *id) {
	return syscall(SYS_timer_create, clock, ev, id);
}
static long timer_settime_(int id, int flags, const struct itimerspec *n, struct itimerspec *o) {
	return syscall(SYS_timer_settime, id, flags, n, o);
}
static long timer_gettime_(int id, struct itimerspec *c) { return syscall(SYS_timer_gettime, id, c); }
static long timer_getoverrun_(int id) { return syscall(SYS_timer_getoverrun, id); }
static long timer_delete_(int id) { return syscall(SYS_timer_delete, id); }
static long signalfd_(int fd, uint64_t mask, int flags) {
	return syscall(SYS_signalfd4, fd, &mask, 8, flags);
}

// Raw siginfo fields: si_code, and the SI_TIMER union (timer id,
// overrun, value).
static int si_code_(siginfo_t *si) { return ((int *)si)[2]; }
static int si_tid_(siginfo_t *si) { return ((int *)si)[4]; }
static int si_overrun_(siginfo_t *si) { return ((int *)si)[5]; }
static uint64_t si_value_(siginfo_t *si) { return *(uint64_t *)((char *)si + 24); }

static volatile sig_atomic_t hits;
static siginfo_t last;

static void on_signal(int sig, siginfo_t *si, void *uc) {
	(void)sig;
	(void)uc;
	last = *si;
	hits++;
}

static void handle(int sig) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, NULL);
}

static void set_blocked(int how, int sig) {
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(how, &s, NULL);
}

static int wait_signal(int sig, siginfo_t *si) {
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	struct timespec ts = {5, 0};
	return sigtimedwait(&s, si, &ts);
}

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void test_alarm(void) {
	handle(SIGALRM);
	printf("alarm(5) = %u\n", alarm(5));
	printf("alarm(0) after alarm(5) = %u\n", alarm(0));
	printf("alarm(0) again = %u\n", alarm(0));
	hits = 0;
	alarm(1);
	int r = pause();
	printf("pause = %d %s, SIGALRM handled %d, si_code SI_KERNEL %s\n", r, ename(errno), hits,
	       yesno(si_code_(&last) == SI_KERNEL));
}

static void test_itimer(void) {
	handle(SIGALRM);
	struct itimerval v = {{0, 10000}, {0, 10000}}, g;
	printf("setitimer = %s\n", res(setitimer(ITIMER_REAL, &v, NULL)));
	printf("getitimer = %s\n", res(getitimer(ITIMER_REAL, &g)));
	printf("interval %ld.%06ld, value set %s\n", (long)g.it_interval.tv_sec, (long)g.it_interval.tv_usec,
	       yesno(g.it_value.tv_sec == 0 && g.it_value.tv_usec > 0 && g.it_value.tv_usec <= 10000));
	sigset_t none;
	sigemptyset(&none);
	hits = 0;
	while (hits < 3)
		sigsuspend(&none);
	struct itimerval off = {{0, 0}, {0, 0}}, old;
	setitimer(ITIMER_REAL, &off, &old);
	printf("ticks %d, old interval %ld.%06ld\n", hits, (long)old.it_interval.tv_sec, (long)old.it_interval.tv_usec);
	getitimer(ITIMER_REAL, &g);
	printf("disarmed %s\n", yesno(!g.it_value.tv_sec && !g.it_value.tv_usec && !g.it_interval.tv_sec && !g.it_interval.tv_usec));
	struct itimerval bad = {{0, 1000000}, {1, 0}};
	printf("setitimer usec 1000000 = %s\n", res(setitimer(ITIMER_REAL, &bad, NULL)));
	printf("setitimer which 7 = %s\n", res(setitimer(7, &v, NULL)));
	printf("getitimer which -1 = %s\n", res(getitimer(-1, &g)));
}

static void test_posix_timer(void) {
	handle(SIGUSR1);
	struct ksigevent ev = {.value = 0x1234, .signo = SIGUSR1, .notify = K_SIGEV_SIGNAL};
	int id = -1;
	printf("timer_create = %s\n", res(timer_create_(CLOCK_MONOTONIC, &ev, &id)));
	struct itimerspec its = {{0, 0}, {0, 5000000}};
	hits = 0;
	printf("timer_settime = %s\n", res(timer_settime_(id, 0, &its, NULL)));
	sigset_t none;
	sigemptyset(&none);
	while (hits < 1)
		sigsuspend(&none);
	printf("fired: code SI_TIMER %s, value %#lx, timer id matches %s, overrun %d\n", yesno(si_code_(&last) == SI_TIMER),
	       (unsigned long)si_value_(&last), yesno(si_tid_(&last) == id), si_overrun_(&last));
	struct itimerspec cur;
	timer_gettime_(id, &cur);
	printf("one-shot after firing: value %ld.%09ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

	// An absolute time in the past fires at once.
	set_blocked(SIG_BLOCK, SIGUSR1);
	struct itimerspec past = {{0, 0}, {0, 1}};
	printf("timer_settime abstime past = %s\n", res(timer_settime_(id, TIMER_ABSTIME, &past, NULL)));
	siginfo_t si;
	int sig = wait_signal(SIGUSR1, &si);
	printf("abstime past: got %d, code SI_TIMER %s\n", sig, yesno(si_code_(&si) == SI_TIMER));

	// Expiries while the signal is blocked count as overruns.
	struct itimerspec periodic = {{0, 1000000}, {0, 1000000}};
	timer_settime_(id, 0, &periodic, NULL);
	timer_gettime_(id, &cur);
	printf("periodic: interval %ld.%09ld, value set %s\n", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec,
	       yesno(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 1000000));
	sleep_ms(60);
	sig = wait_signal(SIGUSR1, &si);
	long over = timer_getoverrun_(id);
	printf("blocked: got %d, overrun >= 10 %s, timer_getoverrun matches %s\n", sig, yesno(si_overrun_(&si) >= 10),
	       yesno(over == si_overrun_(&si)));
	struct itimerspec zero = {{0, 0}, {0, 0}}, old;
	timer_settime_(id, 0, &zero, &old);
	printf("disarm: old interval %ld.%09ld\n", (long)old.it_interval.tv_sec, old.it_interval.tv_nsec);
	printf("timer_getoverrun after settime = %ld\n", timer_getoverrun_(id));

	printf("timer_delete = %s\n", res(timer_delete_(id)));
	printf("timer_delete again = %s\n", res(timer_delete_(id)));
	printf("timer_gettime deleted = %s\n", res(timer_gettime_(id, &cur)));
	printf("timer_getoverrun deleted = %s\n", res(timer_getoverrun_(id)));
	printf("timer_settime NULL = %s\n", res(timer_settime_(0, 0, NULL, NULL)));
	set_blocked(SIG_UNBLOCK, SIGUSR1);

	// A NULL sigevent is SIGALRM with the timer id as its value.
	set_blocked(SIG_BLOCK, SIGALRM);
	int id2 = -1;
	printf("timer_create NULL sigevent = %s\n", res(timer_create_(CLOCK_REALTIME, NULL, &id2)));
	struct itimerspec soon = {{0, 0}, {0, 1000000}};
	timer_settime_(id2, 0, &soon, NULL);
	sig = wait_signal(SIGALRM, &si);
	printf("default: got %d, value is the id %s\n", sig, yesno(si_value_(&si) == (uint64_t)id2));
	timer_delete_(id2);
	set_blocked(SIG_UNBLOCK, SIGALRM);

	// SIGEV_NONE keeps time without a signal.
	struct ksigevent none_ev = {.notify = K_SIGEV_NONE};
	int id3 = -1;
	timer_create_(CLOCK_BOOTTIME, &none_ev, &id3);
	struct itimerspec longer = {{0, 0}, {100, 0}};
	timer_settime_(id3, 0, &longer, NULL);
	timer_gettime_(id3, &cur);
	printf("SIGEV_NONE: value between 99 and 100 s %s\n",
	       yesno(cur.it_value.tv_sec == 99 || (cur.it_value.tv_sec == 100 && cur.it_value.tv_nsec == 0)));
	timer_delete_(id3);

	struct ksigevent bad = {.signo = 0, .notify = K_SIGEV_SIGNAL};
	printf("timer_create signo 0 = %s\n", res(timer_create_(CLOCK_MONOTONIC, &bad, &id)));
	bad.signo = 65;
	printf("timer_create signo 65 = %s\n", res(timer_create_(CLOCK_MONOTONIC, &bad, &id)));
	bad.signo = SIGUSR1;
	bad.notify = 3;
	printf("timer_create notify 3 = %s\n", res(timer_create_(CLOCK_MONOTONIC, &bad, &id)));
	bad.notify = K_SIGEV_THREAD_ID;
	bad.tid = 0x7ffffff0;
	printf("timer_create SIGEV_THREAD_ID unknown thread = %s\n", res(timer_create_(CLOCK_MONOTONIC, &bad, &id)));
	printf("timer_create clock 99 = %s\n", res(timer_create_(99, NULL, &id)));
	printf("timer_create CLOCK_MONOTONIC_RAW = %s\n", res(timer_create_(CLOCK_MONOTONIC_RAW, NULL, &id)));
	printf("timer_create bad address = %s\n", res(timer_create_(CLOCK_MONOTONIC, (struct ksigevent *)8, &id)));
	printf("timer_settime unknown id = %s\n", res(timer_settime_(12345, 0, &its, NULL)));
	struct itimerspec badns = {{0, 0}, {0, 1000000000}};
	printf("timer_settime nsec 1e9 = %s\n", res(timer_settime_(12345, 0, &badns, NULL)));
}

struct target {
	pid_t tid;
	int ready;
	int sig, code;
};

static void *thread_wait(void *arg) {
	struct target *tg = arg;
	tg->tid = (pid_t)syscall(SYS_gettid);
	__atomic_store_n(&tg->ready, 1, __ATOMIC_SEQ_CST);
	siginfo_t si;
	tg->sig = wait_signal(SIGUSR2, &si);
	tg->code = si_code_(&si);
	return NULL;
}

static void test_thread_id(void) {
	set_blocked(SIG_BLOCK, SIGUSR2);
	struct target tg = {0};
	pthread_t th;
	pthread_create(&th, NULL, thread_wait, &tg);
	while (!__atomic_load_n(&tg.ready, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	struct ksigevent ev = {.value = 7, .signo = SIGUSR2, .notify = K_SIGEV_THREAD_ID, .tid = tg.tid};
	int id = -1;
	printf("timer_create SIGEV_THREAD_ID = %s\n", res(timer_create_(CLOCK_MONOTONIC, &ev, &id)));
	struct itimerspec its = {{0, 0}, {0, 2000000}};
	timer_settime_(id, 0, &its, NULL);
	pthread_join(th, NULL);
	printf("thread got %d, code SI_TIMER %s\n", tg.sig, yesno(tg.code == SI_TIMER));
	timer_delete_(id);
	set_blocked(SIG_UNBLOCK, SIGUSR2);
}

struct signalfd_info {
	uint32_t signo;
	int32_t err, code;
	uint32_t pid, uid;
	int32_t fd;
	uint32_t tid, band, overrun, trapno;
	int32_t status, int_;
	uint64_t ptr, utime, stime, addr;
	uint8_t pad[48];
};

static void *kill_later(void *arg) {
	(void)arg;
	sleep_ms(20);
	kill(getpid(), SIGUSR2);
	return NULL;
}

static void test_signalfd(void) {
	uint64_t usr1 = 1ull << (SIGUSR1 - 1), usr2 = 1ull << (SIGUSR2 - 1);
	set_blocked(SIG_BLOCK, SIGUSR1);
	set_blocked(SIG_BLOCK, SIGUSR2);
	int fd = (int)signalfd_(-1, usr1, SFD_NONBLOCK_ | SFD_CLOEXEC_);
	printf("signalfd4 = %s\n", fd >= 0 ? "fd" : res(fd));
	printf("O_NONBLOCK %s, FD_CLOEXEC %s\n", yesno(fcntl(fd, F_GETFL) & O_NONBLOCK), yesno(fcntl(fd, F_GETFD) & FD_CLOEXEC));
	char link[64], path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	printf("link %s\n", link);
	struct signalfd_info info[2];
	printf("read nothing pending = %s\n", res(read(fd, info, sizeof info)));
	printf("read short buffer = %s\n", res(read(fd, info, 100)));
	kill(getpid(), SIGUSR1);
	memset(info, 0, sizeof info);
	n = read(fd, info, sizeof info);
	printf("read = %s: signo %u, code SI_USER %s, pid is ours %s, uid %u\n", res(n), info[0].signo,
	       yesno(info[0].code == SI_USER), yesno(info[0].pid == (uint32_t)getpid()), info[0].uid);
	printf("write = %s\n", res(write(fd, info, sizeof info[0])));

	// Both pending: one read takes both, lowest first.
	printf("signalfd4 update = %s\n", res(signalfd_(fd, usr1 | usr2, 0) == fd ? 0 : -1));
	union sigval v = {.sival_int = 99};
	sigqueue(getpid(), SIGUSR2, v);
	kill(getpid(), SIGUSR1);
	n = read(fd, info, sizeof info);
	printf("read two = %s: %u then %u, queued value %d code SI_QUEUE %s\n", res(n), info[0].signo, info[1].signo,
	       info[1].int_, yesno(info[1].code == SI_QUEUE));
	close(fd);

	// A blocking read waits for a blocked signal.
	fd = (int)signalfd_(-1, usr2, 0);
	pthread_t th;
	pthread_create(&th, NULL, kill_later, NULL);
	n = read(fd, info, sizeof info[0]);
	pthread_join(th, NULL);
	printf("blocking read = %s: signo %u\n", res(n), info[0].signo);
	close(fd);

	printf("signalfd4 bad flags = %s\n", res(signalfd_(-1, usr1, 1)));
	printf("signalfd4 on stdin = %s\n", res(signalfd_(0, usr1, 0)));
	printf("signalfd4 on fd 999 = %s\n", res(signalfd_(999, usr1, 0)));
	printf("signalfd size 4 = %s\n", res(syscall(SYS_signalfd4, -1, &usr1, 4, 0)));
	set_blocked(SIG_UNBLOCK, SIGUSR1);
	set_blocked(SIG_UNBLOCK, SIGUSR2);
}

static void test_sigpipe(void) {
	int p[2];
	pipe(p);
	close(p[0]);
	handle(SIGPIPE);
	hits = 0;
	long r = write(p[1], "x", 1);
	printf("write to a pipe without readers = %s, SIGPIPE handled %d, code SI_USER %s\n", res(r), hits,
	       yesno(si_code_(&last) == SI_USER));
	signal(SIGPIPE, SIG_IGN);
	printf("with SIG_IGN = %s\n", res(write(p[1], "x", 1)));
	struct iovec iov = {"x", 1};
	signal(SIGPIPE, SIG_DFL);
	printf("pwritev2 RWF_NOSIGNAL = %s\n", res(syscall(SYS_pwritev2, p[1], &iov, 1, -1L, 0L, 0x100L)));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		write(p[1], "x", 1);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("default action: killed by SIGPIPE %s\n", yesno(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE));
	close(p[1]);
}

static void test_prctl(void) {
	int v = -1;
	printf("PR_SET_PDEATHSIG = %s\n", res(prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0)));
	prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0);
	printf("PR_GET_PDEATHSIG = %d\n", v);
	printf("PR_SET_PDEATHSIG 65 = %s\n", res(prctl(PR_SET_PDEATHSIG, 65, 0, 0, 0)));
	printf("PR_GET_PDEATHSIG bad address = %s\n", res(prctl(PR_GET_PDEATHSIG, 8, 0, 0, 0)));
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0);
	printf("subreaper %d", v);
	prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0);
	printf(" then %d\n", v);
	printf("PR_GET_DUMPABLE = %s\n", res(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)));
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	printf("after PR_SET_DUMPABLE 0 = %s\n", res(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)));
	printf("PR_SET_DUMPABLE 2 = %s\n", res(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0)));
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	printf("PR_GET_KEEPCAPS = %s\n", res(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0)));
	prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
	printf("after PR_SET_KEEPCAPS 1 = %s\n", res(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0)));
	printf("PR_SET_KEEPCAPS 2 = %s\n", res(prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0)));
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		// No new privileges, for good, in a child.
		printf("PR_SET_NO_NEW_PRIVS 2 = %s\n", res(prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0)));
		printf("PR_SET_NO_NEW_PRIVS = %s\n", res(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)));
		printf("PR_GET_NO_NEW_PRIVS = %s\n", res(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)));
		printf("PR_GET_NO_NEW_PRIVS arg = %s\n", res(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0)));
		prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0);
		printf("child's PR_GET_PDEATHSIG = %d\n", v);
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
}

static void test_usage(void) {
	struct rusage ru;
	printf("getrusage SELF = %s", res(getrusage(RUSAGE_SELF, &ru)));
	printf(", maxrss > 0 %s\n", yesno(ru.ru_maxrss > 0));
	printf("getrusage THREAD = %s\n", res(getrusage(RUSAGE_THREAD, &ru)));
	printf("getrusage CHILDREN = %s\n", res(getrusage(RUSAGE_CHILDREN, &ru)));
	printf("getrusage 5 = %s\n", res(syscall(SYS_getrusage, 5, &ru)));
	printf("getrusage bad address = %s\n", res(syscall(SYS_getrusage, RUSAGE_SELF, 8)));
	struct tms t;
	clock_t a = times(&t), b = times(NULL);
	printf("times: not -1 %s, monotonic %s\n", yesno(a != (clock_t)-1), yesno(b >= a));
	struct sysinfo si;
	printf("sysinfo = %s", res(sysinfo(&si)));
	printf(", totalram > 0 %s, freeram <= totalram %s, procs > 0 %s\n", yesno(si.totalram > 0),
	       yesno(si.freeram <= si.totalram), yesno(si.procs > 0));
}

static void print_res(const char *what) {
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	printf("%s: uid %u %u %u gid %u %u %u\n", what, r, e, s, gr, ge, gs);
}

struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};

static void test_creds(void) {
	char path[64];
	snprintf(path, sizeof path, "/tmp/timers-secret-%d", getpid());
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	close(fd);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		print_res("start");
		printf("getuid %u geteuid %u getgid %u getegid %u\n", getuid(), geteuid(), getgid(), getegid());
		prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
		printf("setresuid(-1, 1000, -1) = %s\n", res(setresuid(-1, 1000, -1)));
		print_res("effective 1000");
		int v = -1;
		prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0);
		printf("PR_GET_PDEATHSIG after the change = %d\n", v);
		printf("setresuid(-1, 0, -1) = %s\n", res(setresuid(-1, 0, -1)));
		print_res("back");
		gid_t groups[] = {5, 3, 7}, got[8];
		printf("setgroups = %s\n", res(setgroups(3, groups)));
		int n = getgroups(8, got);
		printf("getgroups = %d: %u %u %u\n", n, got[0], got[1], got[2]);
		printf("getgroups size 1 = %s\n", res(getgroups(1, got)));
		printf("getgroups size 0 = %s\n", res(getgroups(0, NULL)));
		printf("setresgid = %s\n", res(setresgid(1000, 1000, 1000)));
		printf("setreuid(1000, 1000) = %s\n", res(setreuid(1000, 1000)));
		print_res("dropped");
		printf("setuid(0) = %s\n", res(setuid(0)));
		printf("setresuid(0, -1, -1) = %s\n", res(setresuid(0, -1, -1)));
		printf("setgroups = %s\n", res(setgroups(0, NULL)));
		printf("setfsuid(0) = %d\n", setfsuid(0));
		printf("setfsuid(1000) = %d\n", setfsuid(1000));
		printf("setuid(1000) = %s\n", res(setuid(1000)));
		printf("open a root file = %s\n", res(open(path, O_RDONLY)));
		struct cap_header h = {CAP_V3, 0};
		struct cap_data d[2];
		printf("capget = %s", res(syscall(SYS_capget, &h, d)));
		printf(": effective %x %x permitted %x %x\n", d[0].effective, d[1].effective, d[0].permitted, d[1].permitted);
		print_res("end");
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	unlink(path);
}

static void test_caps(void) {
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		struct cap_header h = {CAP_V3, 0};
		struct cap_data d[2];
		printf("capget v3 = %s", res(syscall(SYS_capget, &h, d)));
		printf(", effective == permitted %s, some %s\n",
		       yesno(d[0].effective == d[0].permitted && d[1].effective == d[1].permitted), yesno(d[0].permitted != 0));
		uint32_t bit = d[0].permitted & -d[0].permitted;
		d[0].effective &= ~bit;
		d[0].permitted &= ~bit;
		printf("capset dropping one = %s\n", res(syscall(SYS_capset, &h, d)));
		struct cap_data e[2];
		syscall(SYS_capget, &h, e);
		printf("gone %s\n", yesno(!(e[0].permitted & bit) && !(e[0].effective & bit)));
		e[0].permitted |= bit;
		printf("capset raising it = %s\n", res(syscall(SYS_capset, &h, e)));
		e[0].permitted &= ~bit;
		e[0].effective |= bit;
		printf("capset effective beyond permitted = %s\n", res(syscall(SYS_capset, &h, e)));
		struct cap_header other = {CAP_V3, 1};
		printf("capset another process = %s\n", res(syscall(SYS_capset, &other, d)));
		struct cap_header v1 = {CAP_V1, 0};
		printf("capget v1 = %s\n", res(syscall(SYS_capget, &v1, d)));
		struct cap_header bad = {0x12345, 0};
		printf("capget unknown version = %s", res(syscall(SYS_capget, &bad, d)));
		printf(", version now %#x\n", bad.version);
		bad.version = 0x12345;
		printf("capget unknown version, no data = %s", res(syscall(SYS_capget, &bad, NULL)));
		printf(", version now %#x\n", bad.version);
		struct cap_header neg = {CAP_V3, -1};
		printf("capget pid -1 = %s\n", res(syscall(SYS_capget, &neg, d)));
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, NULL, 0);
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_alarm();
	test_itimer();
	test_posix_timer();
	test_thread_id();
	test_signalfd();
	test_sigpipe();
	test_prctl();
	test_usage();
	test_creds();
	test_caps();
	return 0;
}
