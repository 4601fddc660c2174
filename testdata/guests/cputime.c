// cputime checks what reaches a process through a thread's id (kill,
// getpgid), the CPU-time clocks (clock_gettime, clock_getres,
// clock_nanosleep, timers, ITIMER_PROF), RLIMIT_CPU and the CPU affinity
// calls. Threads spin until their own CPU clock says so, so the answers do
// not depend on how busy the machine is; times are printed as yes/no
// answers, never as values.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

#define CPUCLOCK_PROF 0
#define CPUCLOCK_VIRT 1
#define CPUCLOCK_SCHED 2
#define CPUCLOCK_PERTHREAD 4
#define PROCESS_CLOCK(pid, which) ((clockid_t)((~(unsigned)(pid) << 3) | (which)))
#define THREAD_CLOCK(tid, which) ((clockid_t)((~(unsigned)(tid) << 3) | CPUCLOCK_PERTHREAD | (which)))
// NOPID is a pid no process has, small enough for a clock id.
#define NOPID 4194000
#define K_SIGEV_SIGNAL 0
#define K_SIGEV_THREAD_ID 4

static const char *res(long r) {
	static char buf[64];
	if (r < 0)
		snprintf(buf, sizeof buf, "-1 %s", ename(errno));
	else
		snprintf(buf, sizeof buf, "%ld", r);
	return buf;
}

static const char *yesno(int b) { return b ? "yes" : "no"; }

static pid_t gettid_(void) { return syscall(SYS_gettid); }

// seconds reads clock c through libc (the vDSO, where there is one).
static double seconds(clockid_t c) {
	struct timespec ts;
	if (clock_gettime(c, &ts) != 0)
		return -1;
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long gettime_(clockid_t c) {
	struct timespec ts;
	return syscall(SYS_clock_gettime, c, &ts);
}

static long getres_(clockid_t c, struct timespec *ts) { return syscall(SYS_clock_getres, c, ts); }

static long nanosleep_(clockid_t c, int flags, double s) {
	struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
	return syscall(SYS_clock_nanosleep, c, flags, &ts, NULL);
}

// spin uses CPU until the calling thread's clock reaches s seconds more,
// or *stop is set.
static void spin(double s, volatile int *stop) {
	double end = seconds(CLOCK_THREAD_CPUTIME_ID) + s;
	while (!(stop && *stop) && seconds(CLOCK_THREAD_CPUTIME_ID) < end)
		for (volatile int i = 0; i < 100000; i++)
			;
}

// A worker thread: reports its tid, then spins or waits as told.
struct worker {
	pthread_t th;
	volatile pid_t tid;
	volatile int mode; // 0: wait, 1: spin until stop, 2: exit
	volatile int stop;
	double spun; // its CPU clock when it ends
};

static void *work(void *arg) {
	struct worker *w = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	w->tid = gettid_();
	while (w->mode != 2) {
		if (w->mode == 1)
			spin(1e9, &w->stop);
		else
			usleep(1000);
	}
	w->spun = seconds(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

static void start(struct worker *w, int mode) {
	memset(w, 0, sizeof *w);
	w->mode = mode;
	pthread_create(&w->th, NULL, work, w);
	while (!w->tid)
		usleep(1000);
}

// finish ends w and waits until its id is gone: pthread_join returns
// when the thread's stack is free, a little before that.
static void finish(struct worker *w) {
	w->stop = 1;
	w->mode = 2;
	pthread_join(w->th, NULL);
	for (int i = 0; i < 5000 && syscall(SYS_tgkill, getpid(), w->tid, 0) == 0; i++)
		usleep(1000);
}

static volatile pid_t usr1_tid;
static void on_usr1(int sig) {
	(void)sig;
	usr1_tid = gettid_();
}

static void kill_by_tid(void) {
	struct worker w;
	start(&w, 0);
	signal(SIGUSR1, on_usr1);
	printf("kill(tid, 0) = %s\n", res(kill(w.tid, 0)));
	printf("kill(tid, SIGUSR1) = %s\n", res(kill(w.tid, SIGUSR1)));
	for (int i = 0; i < 5000 && !usr1_tid; i++)
		usleep(1000);
	printf("handled by the thread that does not block it: %s\n", yesno(usr1_tid == getpid()));
	printf("getpgid(tid) is the process's: %s\n", yesno(getpgid(w.tid) == getpgid(0)));
	printf("getsid(tid) is the process's: %s\n", yesno(getsid(w.tid) == getsid(0)));
	printf("setpgid(tid, 0) = %s\n", res(setpgid(w.tid, 0)));
	pid_t tid = w.tid;
	finish(&w);
	printf("kill(ended tid, 0) = %s\n", res(kill(tid, 0)));
	signal(SIGUSR1, SIG_DFL);
}

static void clock_ids(void) {
	struct timespec ts;
	clockid_t ids[] = {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, PROCESS_CLOCK(0, CPUCLOCK_SCHED),
			   THREAD_CLOCK(0, CPUCLOCK_SCHED), PROCESS_CLOCK(0, CPUCLOCK_PROF),
			   PROCESS_CLOCK(0, CPUCLOCK_VIRT), THREAD_CLOCK(0, CPUCLOCK_PROF),
			   THREAD_CLOCK(getpid(), CPUCLOCK_VIRT), PROCESS_CLOCK(getpid(), CPUCLOCK_SCHED)};
	for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		printf("clock %u: gettime %s", i, res(gettime_(ids[i])));
		long r = getres_(ids[i], &ts);
		printf(", getres %s", res(r));
		printf(", nanosecond resolution %s", yesno(r == 0 && ts.tv_sec == 0 && ts.tv_nsec == 1));
		printf(", resolution under a second %s\n", yesno(r == 0 && ts.tv_sec == 0 && ts.tv_nsec > 0));
	}
	printf("getres(NULL) = %s\n", res(getres_(CLOCK_PROCESS_CPUTIME_ID, NULL)));
	printf("gettime(which 3) = %s\n", res(gettime_(PROCESS_CLOCK(0, 3))));
	printf("gettime(thread which 3) = %s\n", res(gettime_(THREAD_CLOCK(0, 3))));
	printf("getres(which 3) = %s\n", res(getres_(PROCESS_CLOCK(0, 3), &ts)));
	printf("gettime(no such process) = %s\n", res(gettime_(PROCESS_CLOCK(NOPID, CPUCLOCK_SCHED))));
	printf("gettime(no such thread) = %s\n", res(gettime_(THREAD_CLOCK(NOPID, CPUCLOCK_SCHED))));
	printf("gettime(bad pointer) = %s\n", res(syscall(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, (void *)8)));

	clockid_t c;
	int e = clock_getcpuclockid(getpid(), &c);
	printf("clock_getcpuclockid(self) = %s, reads %s\n", ename(e), yesno(e == 0 && seconds(c) >= 0));
	printf("clock_getcpuclockid(no such pid) = %s\n", ename(clock_getcpuclockid(NOPID, &c)));

	int p[2];
	pipe(p);
	pid_t child = fork();
	if (child == 0) {
		char b;
		close(p[1]);
		read(p[0], &b, 1);
		_exit(0);
	}
	close(p[0]);
	e = clock_getcpuclockid(child, &c);
	printf("clock_getcpuclockid(child) = %s, reads %s\n", ename(e), yesno(e == 0 && seconds(c) >= 0));
	printf("gettime(child's thread clock) = %s\n", res(gettime_(THREAD_CLOCK(child, CPUCLOCK_SCHED))));
	int id;
	struct {
		uint64_t value;
		int signo, notify, tid, pad[11];
	} ev = {0, SIGUSR2, K_SIGEV_SIGNAL, 0, {0}};
	long r = syscall(SYS_timer_create, PROCESS_CLOCK(child, CPUCLOCK_SCHED), &ev, &id);
	printf("timer_create(child's process clock) = %s\n", res(r));
	if (r == 0)
		syscall(SYS_timer_delete, id);
	printf("timer_create(child's thread clock) = %s\n",
	       res(syscall(SYS_timer_create, THREAD_CLOCK(child, CPUCLOCK_SCHED), &ev, &id)));
	close(p[1]);
	waitpid(child, NULL, 0);

	struct worker w;
	start(&w, 0);
	pthread_getcpuclockid(w.th, &c);
	printf("pthread_getcpuclockid reads %s\n", yesno(seconds(c) >= 0));
	printf("gettime(thread's tid as a process) = %s\n", res(gettime_(PROCESS_CLOCK(w.tid, CPUCLOCK_SCHED))));
	pid_t tid = w.tid;
	finish(&w);
	printf("gettime(ended thread) = %s\n", res(gettime_(THREAD_CLOCK(tid, CPUCLOCK_SCHED))));
	printf("getres(ended thread) = %s\n", res(getres_(THREAD_CLOCK(tid, CPUCLOCK_SCHED), &ts)));
	printf("timer_create(ended thread) = %s\n",
	       res(syscall(SYS_timer_create, THREAD_CLOCK(tid, CPUCLOCK_SCHED), &ev, &id)));
	printf("timer_create(clock fd) = %s\n", res(syscall(SYS_timer_create, PROCESS_CLOCK(0, 3), &ev, &id)));
}

static void *own_tid_clock(void *arg) {
	(void)arg;
	struct timespec ts;
	pid_t tid = gettid_();
	printf("in a thread: gettime(own tid as a process) = %s", res(gettime_(PROCESS_CLOCK(tid, CPUCLOCK_SCHED))));
	printf(", getres = %s\n", res(getres_(PROCESS_CLOCK(tid, CPUCLOCK_SCHED), &ts)));
	return NULL;
}

static void two_threads(void) {
	pthread_t th;
	pthread_create(&th, NULL, own_tid_clock, NULL);
	pthread_join(th, NULL);

	double before = seconds(CLOCK_PROCESS_CPUTIME_ID);
	struct worker w;
	start(&w, 1);
	clockid_t wc;
	pthread_getcpuclockid(w.th, &wc);
	// Both threads spin for a second of their own time; the process's
	// clock never goes back meanwhile.
	int monotonic = 1;
	double last = before, end = seconds(CLOCK_THREAD_CPUTIME_ID) + 1;
	while (seconds(CLOCK_THREAD_CPUTIME_ID) < end) {
		for (volatile int i = 0; i < 100000; i++)
			;
		double now = seconds(CLOCK_PROCESS_CPUTIME_ID);
		monotonic &= now >= last;
		last = now;
	}
	while (seconds(wc) < 1)
		usleep(1000);
	printf("the other thread's clock >= 1s: %s\n", yesno(seconds(wc) >= 1));
	printf("cpu >= 1.9s: %s\n", yesno(seconds(CLOCK_PROCESS_CPUTIME_ID) - before >= 1.9));
	printf("process clock monotonic: %s\n", yesno(monotonic));
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double used = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	printf("getrusage >= 1.5s: %s\n", yesno(used >= 1.5));

	// Sleeps on CPU clocks, while the other thread spins.
	printf("nanosleep(CLOCK_THREAD_CPUTIME_ID) = %s\n", res(nanosleep_(CLOCK_THREAD_CPUTIME_ID, 0, 0.1)));
	printf("nanosleep(own thread clock) = %s\n", res(nanosleep_(THREAD_CLOCK(0, CPUCLOCK_SCHED), 0, 0.1)));
	printf("nanosleep(own tid's clock) = %s\n", res(nanosleep_(THREAD_CLOCK(gettid_(), CPUCLOCK_SCHED), 0, 0.1)));
	printf("nanosleep(clock fd) = %s\n", res(nanosleep_(PROCESS_CLOCK(0, 3), 0, 0.1)));
	double t0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
	printf("nanosleep(process clock, 0.2s) = %s", res(nanosleep_(CLOCK_PROCESS_CPUTIME_ID, 0, 0.2)));
	printf(", process clock advanced 0.2s: %s\n", yesno(seconds(CLOCK_PROCESS_CPUTIME_ID) - t0 >= 0.2));
	t0 = seconds(wc);
	printf("nanosleep(other thread's clock, 0.2s) = %s", res(nanosleep_(wc, 0, 0.2)));
	printf(", its clock advanced 0.2s: %s\n", yesno(seconds(wc) - t0 >= 0.2));
	printf("nanosleep(process clock, past, TIMER_ABSTIME) = %s\n",
	       res(nanosleep_(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, 0.001)));
	t0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
	printf("nanosleep(process clock, +0.2s, TIMER_ABSTIME) = %s", res(nanosleep_(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, t0 + 0.2)));
	printf(", reached: %s\n", yesno(seconds(CLOCK_PROCESS_CPUTIME_ID) >= t0 + 0.2));
	finish(&w);
	printf("the other thread ended with >= 1s: %s\n", yesno(w.spun >= 1));
}

static volatile int timer_fired, prof_fired;
static void on_usr2(int sig) {
	(void)sig;
	timer_fired = 1;
}
static void on_prof(int sig) {
	(void)sig;
	prof_fired = 1;
}

// spin_until spins until *flag is set or the thread has used s seconds.
static void spin_until(volatile int *flag, double s) {
	double end = seconds(CLOCK_THREAD_CPUTIME_ID) + s;
	while (!*flag && seconds(CLOCK_THREAD_CPUTIME_ID) < end)
		for (volatile int i = 0; i < 100000 && !*flag; i++)
			;
}

static void timers(void) {
	signal(SIGUSR2, on_usr2);
	struct {
		uint64_t value;
		int signo, notify, tid, pad[11];
	} ev = {0, SIGUSR2, K_SIGEV_SIGNAL, 0, {0}};
	clockid_t clocks[] = {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, PROCESS_CLOCK(0, CPUCLOCK_PROF),
			      THREAD_CLOCK(0, CPUCLOCK_VIRT)};
	for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		int id;
		long r = syscall(SYS_timer_create, clocks[i], &ev, &id);
		printf("timer %u: create %s", i, res(r));
		if (r != 0) {
			printf("\n");
			continue;
		}
		struct itimerspec its = {{0, 0}, {0, 300000000}}, cur;
		timer_fired = 0;
		double t0 = seconds(CLOCK_THREAD_CPUTIME_ID);
		printf(", settime %s", res(syscall(SYS_timer_settime, id, 0, &its, NULL)));
		usleep(100000);
		syscall(SYS_timer_gettime, id, &cur);
		printf(", sleeping does not count: %s",
		       yesno(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 150000000 && !timer_fired));
		spin_until(&timer_fired, 5);
		printf(", fired %s", yesno(timer_fired));
		// The profiling clocks sample by ticks, and may jump on a busy
		// machine: only the precise ones are compared.
		if (i < 2)
			printf(", after 0.3s of CPU: %s", yesno(seconds(CLOCK_THREAD_CPUTIME_ID) - t0 >= 0.3));
		printf("\n");
		syscall(SYS_timer_delete, id);
	}
	signal(SIGUSR2, SIG_DFL);

	signal(SIGPROF, on_prof);
	struct itimerval iv = {{0, 0}, {0, 300000}}, cur;
	setitimer(ITIMER_PROF, &iv, NULL);
	usleep(100000);
	getitimer(ITIMER_PROF, &cur);
	printf("ITIMER_PROF: sleeping does not count: %s", yesno(cur.it_value.tv_usec > 150000 && !prof_fired));
	spin_until(&prof_fired, 5);
	printf(", fired %s\n", yesno(prof_fired));
	signal(SIGPROF, SIG_DFL);
}

static int xcpu_pipe;
static void on_xcpu(int sig) {
	(void)sig;
	struct rlimit rl;
	getrlimit(RLIMIT_CPU, &rl);
	char b = (char)rl.rlim_cur;
	write(xcpu_pipe, &b, 1);
}

// cpu_limit runs a child with RLIMIT_CPU soft, hard; it handles SIGXCPU
// when handle is set.
static void cpu_limit(rlim_t soft, rlim_t hard, int handle) {
	int p[2];
	pipe(p);
	pid_t child = fork();
	if (child == 0) {
		close(p[0]);
		xcpu_pipe = p[1];
		if (handle)
			signal(SIGXCPU, on_xcpu);
		struct rlimit rl = {soft, hard};
		setrlimit(RLIMIT_CPU, &rl);
		spin(10, NULL);
		_exit(0);
	}
	close(p[1]);
	char buf[16];
	int n = 0, r;
	while ((r = read(p[0], buf + n, sizeof buf - n)) > 0)
		n += r;
	close(p[0]);
	int status;
	waitpid(child, &status, 0);
	printf("RLIMIT_CPU %ld/%ld:", (long)soft, (long)hard);
	for (int i = 0; i < n; i++)
		printf(" SIGXCPU with soft limit %d", buf[i]);
	printf(", killed by %s\n", WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "nothing");
}

// count_affinity returns sched_getaffinity's result for tid, and the CPU
// count it reports in *count.
static long get_affinity(pid_t tid, int *count) {
	cpu_set_t set;
	CPU_ZERO(&set);
	long r = syscall(SYS_sched_getaffinity, tid, sizeof set, &set);
	*count = CPU_COUNT(&set);
	return r;
}

static void *report_affinity(void *arg) {
	int n;
	get_affinity(0, &n);
	*(int *)arg = n;
	return NULL;
}

static void affinity(void) {
	int all, n;
	long r = get_affinity(0, &all);
	printf("sched_getaffinity: size in longs %s, CPUs as nprocs says: %s\n", yesno(r > 0 && r % 8 == 0),
	       yesno(all == sysconf(_SC_NPROCESSORS_ONLN)));
	cpu_set_t set;
	printf("sched_getaffinity(len 4) = %s\n", res(syscall(SYS_sched_getaffinity, 0, 4, &set)));
	printf("sched_getaffinity(len 0) = %s\n", res(syscall(SYS_sched_getaffinity, 0, 0, &set)));
	printf("sched_getaffinity(len 12) = %s\n", res(syscall(SYS_sched_getaffinity, 0, 12, &set)));
	printf("sched_getaffinity(bad pointer) = %s\n", res(syscall(SYS_sched_getaffinity, 0, sizeof set, (void *)8)));
	printf("sched_getaffinity(no such tid) = %s\n", res(syscall(SYS_sched_getaffinity, NOPID, sizeof set, &set)));

	struct worker w;
	start(&w, 0);
	CPU_ZERO(&set);
	printf("sched_setaffinity(empty) = %s\n", res(syscall(SYS_sched_setaffinity, 0, sizeof set, &set)));
	CPU_SET(1000, &set);
	printf("sched_setaffinity(CPU 1000 only) = %s\n", res(syscall(SYS_sched_setaffinity, 0, sizeof set, &set)));
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	printf("sched_setaffinity(len 0) = %s\n", res(syscall(SYS_sched_setaffinity, 0, 0, &set)));
	printf("sched_setaffinity(bad pointer) = %s\n", res(syscall(SYS_sched_setaffinity, 0, sizeof set, (void *)8)));
	printf("sched_setaffinity(no such tid) = %s\n", res(syscall(SYS_sched_setaffinity, NOPID, sizeof set, &set)));
	printf("sched_setaffinity(no such tid, bad pointer) = %s\n",
	       res(syscall(SYS_sched_setaffinity, NOPID, sizeof set, (void *)8)));
	printf("sched_setaffinity(CPU 0) = %s", res(syscall(SYS_sched_setaffinity, 0, sizeof set, &set)));
	r = get_affinity(0, &n);
	CPU_ZERO(&set);
	syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
	printf(", then one CPU: %s, CPU 0: %s\n", yesno(n == 1), yesno(CPU_ISSET(0, &set)));
	get_affinity(w.tid, &n);
	printf("a thread started before keeps every CPU: %s\n", yesno(n == all));
	pthread_t th;
	pthread_create(&th, NULL, report_affinity, &n);
	pthread_join(th, NULL);
	printf("a new thread inherits one CPU: %s\n", yesno(n == 1));
	pid_t child = fork();
	if (child == 0) {
		get_affinity(0, &n);
		_exit(n);
	}
	int status;
	waitpid(child, &status, 0);
	printf("a forked child inherits one CPU: %s\n", yesno(WEXITSTATUS(status) == 1));
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	printf("sched_setaffinity(other thread, CPU 0) = %s", res(syscall(SYS_sched_setaffinity, w.tid, sizeof set, &set)));
	get_affinity(w.tid, &n);
	printf(", it reads one CPU: %s\n", yesno(n == 1));
	CPU_ZERO(&set);
	for (int i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	printf("sched_setaffinity(every CPU) = %s", res(syscall(SYS_sched_setaffinity, 0, sizeof set, &set)));
	get_affinity(0, &n);
	printf(", back to all: %s\n", yesno(n == all));
	finish(&w);
}

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	kill_by_tid();
	clock_ids();
	two_threads();
	timers();
	cpu_limit(1, 3, 1);
	cpu_limit(1, RLIM_INFINITY, 0);
	affinity();
	return 0;
}
