// poll exercises waiting on many files, single-threaded: poll, ppoll,
// select, pselect6, epoll, eventfd and timerfd, one family per argument.
// It prints each call with its result or errno name, and of timings only
// facts that hold on any machine (a timer fired at least once), so that a
// native run and a sandboxed one compare equal.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

static const char *ename(int e) {
	switch (e) {
#define E(x) case x: return #x;
	E(EPERM) E(ENOENT) E(EINTR) E(EBADF) E(EAGAIN) E(EFAULT) E(EEXIST)
	E(EINVAL) E(ELOOP) E(ENOSYS) E(EMFILE)
#undef E
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

static long report(const char *expr, long r) {
	if (r == -1)
		printf("%s = -1 %s\n", expr, ename(errno));
	else
		printf("%s = %ld\n", expr, r);
	return r;
}

#define T(e) (errno = 0, report(#e, (long)(e)))

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

// bad is volatile so that the compiler does not see it is a bad pointer.
static void *volatile bad = (void *)1;

static int poll1(int fd, short events, int timeout) {
	struct pollfd p = {.fd = fd, .events = events};
	int n = poll(&p, 1, timeout);
	say("poll(%d, %#x, %d) = %d revents %#x", fd, events, timeout, n, n >= 0 ? p.revents : 0);
	return n;
}

static void link_of(int fd) {
	char path[64], target[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof target - 1);
	target[n < 0 ? 0 : n] = 0;
	say("fd %d -> %s", fd, target);
}

static void section_poll(void) {
	int p[2];
	char buf[16];
	T(pipe(p));
	poll1(p[0], POLLIN, 0);
	poll1(p[1], POLLOUT, 0);
	poll1(p[1], POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM, 0);
	T(write(p[1], "ab", 2));
	poll1(p[0], POLLIN | POLLRDNORM | POLLPRI, 0);
	poll1(p[0], POLLIN, -1);
	T(close(p[1]));
	poll1(p[0], POLLIN, 0);
	T(read(p[0], buf, sizeof buf));
	poll1(p[0], POLLIN, 0);
	poll1(p[0], 0, 0);
	T(close(p[0]));

	T(pipe(p));
	T(close(p[0]));
	poll1(p[1], POLLOUT, 0);
	T(close(p[1]));

	poll1(p[1], POLLIN, 0);
	struct pollfd many[3] = {{.fd = -1, .events = POLLIN}, {.fd = 1, .events = POLLOUT}, {.fd = 99, .events = POLLIN}};
	T(poll(many, 3, 0));
	say("revents %#x %#x %#x", many[0].revents, many[1].revents, many[2].revents);
	T(poll(NULL, 0, 20));
	T(pipe(p));
	poll1(p[0], POLLIN, 20);
	T(poll(bad, 1, 0));
	struct rlimit rl;
	T(getrlimit(RLIMIT_NOFILE, &rl));
	T(syscall(SYS_poll, many, (unsigned long)rl.rlim_cur + 1, 0));

	struct timespec ts = {0, 20 * 1000 * 1000};
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	T(ppoll(&pf, 1, &ts, NULL));
	say("ppoll left <= 20ms: %d", ts.tv_sec == 0 && ts.tv_nsec <= 20 * 1000 * 1000);
	ts.tv_nsec = 1000 * 1000 * 1000;
	T(ppoll(&pf, 1, &ts, NULL));
	T(syscall(SYS_ppoll, &pf, 1, bad, NULL, 8));
	T(write(p[1], "x", 1));
	ts = (struct timespec){5, 0};
	T(ppoll(&pf, 1, &ts, NULL));
	say("ppoll left > 4s: %d", ts.tv_sec >= 4);
	T(close(p[0]));
	T(close(p[1]));

	// Devices: only /dev/random can be watched; the others are always
	// ready.
	static const char *const devices[] = {"/dev/random", "/dev/urandom", "/dev/null", "/dev/zero", "/dev/full"};
	int ep = epoll_create1(0);
	for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
		int fd = open(devices[i], O_RDWR);
		struct pollfd dp = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM};
		struct epoll_event ev = {.events = EPOLLIN};
		T(poll(&dp, 1, 0));
		say("%s: revents %#x", devices[i], dp.revents);
		T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
		close(fd);
	}
	close(ep);
}

static void fdset_say(const char *what, fd_set *s, int n) {
	printf("%s:", what);
	for (int i = 0; i < n; i++)
		if (FD_ISSET(i, s))
			printf(" %d", i);
	putchar('\n');
}

static void section_select(void) {
	int p[2];
	fd_set r, w;
	struct timeval tv;
	T(pipe(p));
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_SET(p[0], &r);
	FD_SET(p[1], &w);
	tv = (struct timeval){0, 0};
	T(select(p[1] + 1, &r, &w, NULL, &tv));
	fdset_say("r", &r, p[1] + 1);
	fdset_say("w", &w, p[1] + 1);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	tv = (struct timeval){0, 20 * 1000};
	T(select(p[1] + 1, &r, NULL, NULL, &tv));
	say("select left <= 20ms: %d", tv.tv_sec == 0 && tv.tv_usec <= 20 * 1000);
	fdset_say("r", &r, p[1] + 1);
	T(write(p[1], "x", 1));
	FD_SET(p[0], &r);
	FD_SET(p[1], &r);
	FD_ZERO(&w);
	FD_SET(p[1], &w);
	FD_SET(p[0], &w);
	T(select(p[1] + 1, &r, &w, NULL, NULL));
	fdset_say("r", &r, p[1] + 1);
	fdset_say("w", &w, p[1] + 1);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	tv = (struct timeval){0, 1500000};
	T(select(p[1] + 1, &r, NULL, NULL, &tv));
	tv = (struct timeval){0, -1};
	T(select(p[1] + 1, &r, NULL, NULL, &tv));
	T(select(-1, NULL, NULL, NULL, NULL));
	FD_ZERO(&r);
	FD_SET(40, &r);
	tv = (struct timeval){0, 0};
	T(select(41, &r, NULL, NULL, &tv));
	T(syscall(SYS_select, p[1] + 1, bad, NULL, NULL, &tv));
	T(syscall(SYS_select, p[1] + 1, NULL, NULL, NULL, bad));
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	// Descriptors past the table's end are not looked at.
	FD_SET(1000, &r);
	T(syscall(SYS_select, 1024, &r, NULL, NULL, &tv));
	say("1000 still set: %d, %d set: %d", FD_ISSET(1000, &r), p[0], FD_ISSET(p[0], &r));
	T(close(p[1]));
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	T(select(p[0] + 1, &r, NULL, NULL, NULL));
	T(close(p[0]));

	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	struct timespec ts = {0, 1000 * 1000};
	T(pselect(0, NULL, NULL, NULL, &ts, &mask));
	T(sigprocmask(SIG_SETMASK, NULL, &old));
	say("SIGUSR2 blocked after pselect: %d", sigismember(&old, SIGUSR2));
	struct {
		void *ss;
		size_t len;
	} pack = {&mask, 4};
	T(syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &pack));
	pack.ss = bad;
	pack.len = 8;
	T(syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &pack));
	T(syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, bad));
	pack.ss = NULL;
	T(syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &pack));
}

static void ev_say(int n, struct epoll_event *evs) {
	for (int i = 0; i < n; i++)
		say("  event %#x data %llu", evs[i].events, (unsigned long long)evs[i].data.u64);
}

static int ewait(int ep, int timeout) {
	struct epoll_event evs[8];
	int n = epoll_wait(ep, evs, 8, timeout);
	if (n < 0)
		say("epoll_wait = -1 %s", ename(errno));
	else
		say("epoll_wait = %d", n);
	ev_say(n, evs);
	return n;
}

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
	struct epoll_event ev = {.events = events, .data.u64 = data};
	return epoll_ctl(ep, op, fd, &ev);
}

static void section_epoll(void) {
	int p[2], ep, fd;
	char buf[16];
	T(epoll_create(0));
	T(epoll_create1(1));
	T(ep = epoll_create1(EPOLL_CLOEXEC));
	T(fcntl(ep, F_GETFD));
	T(fcntl(ep, F_GETFL));
	link_of(ep);
	T(read(ep, buf, 1));
	T(pipe(p));

	// Level-triggered: reported while the pipe holds data.
	T(ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 100));
	ewait(ep, 0);
	T(write(p[1], "abc", 3));
	ewait(ep, -1);
	ewait(ep, 0);
	T(read(p[0], buf, 1));
	ewait(ep, 0);
	T(read(p[0], buf, sizeof buf));
	ewait(ep, 0);

	// Edge-triggered: once per write.
	T(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 101));
	T(write(p[1], "abc", 3));
	ewait(ep, 0);
	ewait(ep, 0);
	T(read(p[0], buf, 1));
	ewait(ep, 0);
	T(write(p[1], "d", 1));
	ewait(ep, 0);
	ewait(ep, 0);
	T(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 102));
	ewait(ep, 0);

	// One-shot: once, until re-armed.
	T(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 103));
	ewait(ep, 0);
	ewait(ep, 0);
	T(write(p[1], "e", 1));
	ewait(ep, 0);
	T(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 104));
	ewait(ep, 0);
	T(read(p[0], buf, sizeof buf));

	// The write end, and a hang-up.
	T(ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT | EPOLLET, 200));
	ewait(ep, 0);
	ewait(ep, 0);
	T(ctl(ep, EPOLL_CTL_DEL, p[1], 0, 0));
	T(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLRDHUP, 105));
	T(close(p[1]));
	ewait(ep, 0);
	poll1(ep, POLLIN, 0);

	// Errors.
	int spare;
	T(spare = eventfd(0, 0));
	T(fd = open("/proc/self/status", O_RDONLY));
	T(ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN, 0));
	T(ctl(ep, EPOLL_CTL_ADD, ep, EPOLLIN, 0));
	T(ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 0));
	T(ctl(ep, EPOLL_CTL_DEL, spare, 0, 0));
	T(ctl(ep, EPOLL_CTL_MOD, spare, EPOLLIN, 0));
	T(ctl(ep, 99, p[0], EPOLLIN, 0));
	T(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLEXCLUSIVE, 0));
	T(ctl(99, EPOLL_CTL_ADD, p[0], EPOLLIN, 0));
	T(ctl(ep, EPOLL_CTL_ADD, 99, EPOLLIN, 0));
	T(ctl(p[0], EPOLL_CTL_ADD, spare, EPOLLIN, 0));
	T(ctl(fd, EPOLL_CTL_ADD, fd, EPOLLIN, 0));
	T(epoll_ctl(ep, EPOLL_CTL_ADD, spare, bad));
	T(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], bad));
	T(epoll_wait(ep, bad, 0, 0));
	T(epoll_wait(fd, (struct epoll_event *)buf, 1, 0));
	T(epoll_wait(99, (struct epoll_event *)buf, 1, 0));
	T(epoll_wait(ep, (struct epoll_event *)-4096L, 1, 0));
	T(close(fd));
	T(close(spare));
	T(close(p[0]));
	ewait(ep, 0);

	// EPOLLEXCLUSIVE: on ADD only, not for epoll files.
	int ev;
	T(ev = eventfd(1, 0));
	T(ctl(ep, EPOLL_CTL_ADD, ev, EPOLLIN | EPOLLEXCLUSIVE, 300));
	T(ctl(ep, EPOLL_CTL_MOD, ev, EPOLLIN, 301));
	ewait(ep, 0);
	T(ctl(ep, EPOLL_CTL_DEL, ev, 0, 0));
	T(ctl(ep, EPOLL_CTL_ADD, ev, EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, 302));

	// A watch follows the file description, not the descriptor.
	T(pipe(p));
	T(fd = dup(p[0]));
	T(ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 400));
	T(ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN, 401));
	T(write(p[1], "x", 1));
	ewait(ep, 0);
	T(close(p[0]));
	ewait(ep, 0);
	T(ctl(ep, EPOLL_CTL_DEL, fd, 0, 0));
	ewait(ep, 0);
	T(close(fd));
	ewait(ep, 0);
	T(close(p[1]));

	// Nesting: an epoll is readable when one of its files is ready.
	int inner, outer;
	T(inner = epoll_create1(0));
	T(outer = epoll_create1(0));
	T(ctl(outer, EPOLL_CTL_ADD, inner, EPOLLIN, 500));
	T(ctl(inner, EPOLL_CTL_ADD, outer, EPOLLIN, 501));
	T(ctl(ep, EPOLL_CTL_ADD, outer, EPOLLIN, 502));
	T(ctl(inner, EPOLL_CTL_ADD, ep, EPOLLIN, 503));
	T(ctl(outer, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLEXCLUSIVE, 504));
	ewait(outer, 0);
	T(pipe(p));
	T(ctl(inner, EPOLL_CTL_ADD, p[0], EPOLLIN, 505));
	T(write(p[1], "x", 1));
	ewait(outer, -1);
	ewait(inner, 0);
	poll1(inner, POLLIN | POLLOUT, 0);
	T(close(p[0]));
	T(close(p[1]));
	ewait(outer, 0);
	T(close(inner));
	T(close(outer));

	// Waiting with a timeout and a signal mask.
	T(pipe(p));
	T(ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 600));
	struct epoll_event evs[4];
	T(epoll_wait(ep, evs, 4, 20));
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	T(epoll_pwait(ep, evs, 4, 1, &mask));
	T(sigprocmask(SIG_SETMASK, NULL, &old));
	say("SIGUSR1 blocked after epoll_pwait: %d", sigismember(&old, SIGUSR1));
	T(syscall(SYS_epoll_pwait, ep, evs, 4, 0, &mask, 4));
	struct timespec ts = {0, 20 * 1000 * 1000};
	T(syscall(SYS_epoll_pwait2, ep, evs, 4, &ts, NULL, 8));
	T(write(p[1], "x", 1));
	T(syscall(SYS_epoll_pwait2, ep, evs, 4, NULL, &mask, 8));
	ts.tv_nsec = -1;
	T(syscall(SYS_epoll_pwait2, ep, evs, 4, &ts, NULL, 8));
	T(syscall(SYS_epoll_pwait2, ep, evs, 4, bad, NULL, 8));
	T(close(p[0]));
	T(close(p[1]));
	T(close(ev));
	T(close(ep));
}

static long long rd(int fd) {
	uint64_t v = 0;
	ssize_t n = read(fd, &v, sizeof v);
	if (n < 0) {
		say("read = -1 %s", ename(errno));
		return -1;
	}
	say("read = %zd value %llu", n, (unsigned long long)v);
	return v;
}

static long wr(int fd, uint64_t v) {
	return write(fd, &v, sizeof v);
}

static void section_eventfd(void) {
	int fd;
	char buf[16];
	T(fd = eventfd(3, 0));
	link_of(fd);
	T(fcntl(fd, F_GETFL));
	T(fcntl(fd, F_GETFD));
	struct stat st;
	T(fstat(fd, &st));
	say("mode %o", st.st_mode);
	poll1(fd, POLLIN | POLLOUT, 0);
	rd(fd);
	poll1(fd, POLLIN | POLLOUT, 0);
	T(wr(fd, 2));
	T(wr(fd, 3));
	T(wr(fd, 0));
	rd(fd);
	T(wr(fd, UINT64_MAX));
	T(write(fd, buf, 4));
	T(read(fd, buf, 4));
	T(wr(fd, UINT64_MAX - 1));
	poll1(fd, POLLIN | POLLOUT, 0);
	T(fcntl(fd, F_SETFL, O_NONBLOCK));
	T(wr(fd, 1));
	rd(fd);
	rd(fd);
	T(write(fd, bad, 8));
	uint64_t big[2] = {7, 9};
	T(write(fd, big, sizeof big));
	T(read(fd, big, sizeof big));
	say("read %llu", (unsigned long long)big[0]);
	T(close(fd));

	T(fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC));
	T(fcntl(fd, F_GETFL));
	T(fcntl(fd, F_GETFD));
	rd(fd);
	rd(fd);
	rd(fd);
	T(close(fd));
	T(eventfd(0, 0x10));
	T(syscall(SYS_eventfd, 5));
	rd(3);
	T(close(3));
}

static void its_say(const char *what, struct itimerspec *its) {
	say("%s: value %s interval %lld.%09ld", what, its->it_value.tv_sec || its->it_value.tv_nsec ? "set" : "zero",
	    (long long)its->it_interval.tv_sec, its->it_interval.tv_nsec);
}

static void section_timerfd(void) {
	int fd;
	struct itimerspec its, old;
	T(fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	link_of(fd);
	T(fcntl(fd, F_GETFL));
	T(fcntl(fd, F_GETFD));
	T(timerfd_gettime(fd, &its));
	its_say("disarmed", &its);
	rd(fd);
	poll1(fd, POLLIN, 0);

	its = (struct itimerspec){.it_value = {0, 10 * 1000 * 1000}};
	T(timerfd_settime(fd, 0, &its, NULL));
	T(timerfd_gettime(fd, &its));
	its_say("armed", &its);
	say("left <= 10ms: %d", its.it_value.tv_sec == 0 && its.it_value.tv_nsec <= 10 * 1000 * 1000);
	poll1(fd, POLLIN, -1);
	rd(fd);
	rd(fd);
	T(timerfd_gettime(fd, &its));
	its_say("expired", &its);

	its = (struct itimerspec){.it_value = {0, 10 * 1000 * 1000}, .it_interval = {0, 10 * 1000 * 1000}};
	T(timerfd_settime(fd, 0, &its, NULL));
	struct timespec nap = {0, 50 * 1000 * 1000};
	T(nanosleep(&nap, NULL));
	uint64_t count = 0;
	T(read(fd, &count, sizeof count));
	say("count >= 1: %d", count >= 1);
	T(timerfd_gettime(fd, &its));
	its_say("periodic", &its);
	say("left <= 10ms: %d", its.it_value.tv_sec == 0 && its.it_value.tv_nsec <= 10 * 1000 * 1000);
	its = (struct itimerspec){0};
	T(timerfd_settime(fd, 0, &its, &old));
	its_say("old", &old);
	T(nanosleep(&nap, NULL));
	rd(fd);
	T(close(fd));

	T(fd = timerfd_create(CLOCK_REALTIME, 0));
	struct timespec now;
	T(clock_gettime(CLOCK_REALTIME, &now));
	now.tv_nsec += 10 * 1000 * 1000;
	if (now.tv_nsec >= 1000000000) {
		now.tv_sec++;
		now.tv_nsec -= 1000000000;
	}
	its = (struct itimerspec){.it_value = now};
	T(timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL));
	rd(fd);
	its.it_value.tv_sec -= 10;
	T(timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL));
	rd(fd);
	T(write(fd, &its, 8));

	int ep;
	T(ep = epoll_create1(0));
	T(ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN, 7));
	its = (struct itimerspec){.it_value = {0, 10 * 1000 * 1000}};
	T(timerfd_settime(fd, 0, &its, NULL));
	ewait(ep, -1);
	rd(fd);
	ewait(ep, 0);
	T(close(ep));

	T(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
	T(timerfd_create(CLOCK_MONOTONIC, 0x10));
	its = (struct itimerspec){.it_value = {0, 1000 * 1000 * 1000}};
	T(timerfd_settime(fd, 0, &its, NULL));
	its = (struct itimerspec){.it_value = {-1, 0}};
	T(timerfd_settime(fd, 0, &its, NULL));
	its = (struct itimerspec){.it_interval = {0, -1}};
	T(timerfd_settime(fd, 0, &its, NULL));
	its = (struct itimerspec){0};
	T(timerfd_settime(fd, 4, &its, NULL));
	T(timerfd_settime(fd, 0, bad, NULL));
	T(timerfd_settime(fd, 0, &its, bad));
	T(timerfd_settime(99, 0, &its, NULL));
	T(timerfd_settime(0, 0, &its, NULL));
	T(timerfd_gettime(fd, bad));
	T(timerfd_gettime(0, &its));
	T(close(fd));
}

static void section_ppoll(void) {
	sigset_t mask, old;
	int p[2];
	T(pipe(p));
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	struct timespec ts = {0, 1000 * 1000};
	T(ppoll(&pf, 1, &ts, &mask));
	T(sigprocmask(SIG_SETMASK, NULL, &old));
	say("blocked after ppoll: USR1 %d TERM %d", sigismember(&old, SIGUSR1), sigismember(&old, SIGTERM));
	sigemptyset(&old);
	sigaddset(&old, SIGHUP);
	T(sigprocmask(SIG_SETMASK, &old, NULL));
	T(write(p[1], "x", 1));
	T(ppoll(&pf, 1, NULL, &mask));
	T(sigprocmask(SIG_SETMASK, NULL, &old));
	say("blocked after ppoll: HUP %d USR1 %d", sigismember(&old, SIGHUP), sigismember(&old, SIGUSR1));
	T(syscall(SYS_ppoll, &pf, 1, NULL, &mask, 4));
	T(syscall(SYS_ppoll, &pf, 1, NULL, NULL, 4));
	T(syscall(SYS_ppoll, &pf, 1, NULL, bad, 8));
	T(close(p[0]));
	T(close(p[1]));
}

// The hang sections wait forever, each in its own way, for the tests that
// kill a waiting process.
static void hang(const char *how) {
	int p[2], ep, fd;
	uint64_t v;
	struct pollfd pf;
	fd_set r;
	struct epoll_event ev = {.events = EPOLLIN};
	if (pipe(p) != 0 || (ep = epoll_create1(0)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0)
		return;
	pf = (struct pollfd){.fd = p[0], .events = POLLIN};
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	say("blocking");
	if (!strcmp(how, "poll"))
		poll(&pf, 1, -1);
	else if (!strcmp(how, "ppoll"))
		ppoll(&pf, 1, NULL, NULL);
	else if (!strcmp(how, "select"))
		select(p[0] + 1, &r, NULL, NULL, NULL);
	else if (!strcmp(how, "epoll"))
		epoll_wait(ep, &ev, 1, -1);
	else if (!strcmp(how, "eventfd") && (fd = eventfd(0, 0)) >= 0)
		(void)!read(fd, &v, sizeof v);
	else if (!strcmp(how, "timerfd") && (fd = timerfd_create(CLOCK_MONOTONIC, 0)) >= 0)
		(void)!read(fd, &v, sizeof v);
	say("woke");
}

int main(int argc, char **argv) {
	static const struct {
		const char *name;
		void (*run)(void);
	} sections[] = {
		{"poll", section_poll}, {"select", section_select}, {"epoll", section_epoll},
		{"eventfd", section_eventfd}, {"timerfd", section_timerfd}, {"ppoll", section_ppoll},
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "hang")) {
		hang(argv[2]);
		return 1;
	}
	for (int i = 1; i < argc; i++)
		for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++)
			if (!strcmp(argv[i], sections[j].name)) {
				printf("== %s\n", argv[i]);
				sections[j].run();
			}
	return 0;
}
