// Processes, threads and signals, compared with Linux: wait statuses,
// stop and continue, threads sharing memory, handlers with siginfo, the
// alternate stack, queued values, masks, sigsuspend, SA_RESTART, execve,
// vfork and FPU state across a handler. Prints deterministic facts only.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void describe(const char *what, int status) {
	if (WIFEXITED(status))
		printf("%s: exited %d\n", what, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		printf("%s: killed by %d\n", what, WTERMSIG(status));
	else if (WIFSTOPPED(status))
		printf("%s: stopped by %d\n", what, WSTOPSIG(status));
	else if (WIFCONTINUED(status))
		printf("%s: continued\n", what);
}

static void wait_statuses(void) {
	int status;
	pid_t p = fork();
	if (p == 0)
		_exit(42);
	printf("waitpid returns the child: %d\n", waitpid(p, &status, 0) == p);
	describe("exit", status);

	p = fork();
	if (p == 0) {
		*(volatile int *)16 = 1;
		_exit(0);
	}
	waitpid(p, &status, 0);
	describe("segv", status);

	p = fork();
	if (p == 0) {
		for (;;)
			pause();
	}
	kill(p, SIGSTOP);
	waitpid(p, &status, WUNTRACED);
	describe("stop", status);
	kill(p, SIGCONT);
	waitpid(p, &status, WCONTINUED);
	describe("cont", status);
	kill(p, SIGTERM);
	waitpid(p, &status, 0);
	describe("term", status);

	volatile unsigned long *ticks = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	p = fork();
	if (p == 0) {
		for (;;)
			(*ticks)++;
	}
	while (*ticks == 0)
		sleep_ms(1);
	kill(p, SIGSTOP);
	waitpid(p, &status, WUNTRACED);
	unsigned long before = *ticks;
	sleep_ms(50);
	printf("a stopped child spinning in user code does not run: %d\n", *ticks == before);
	kill(p, SIGCONT);
	sleep_ms(20);
	printf("and runs again once continued: %d\n", *ticks != before);
	kill(p, SIGKILL);
	waitpid(p, &status, 0);
	describe("kill", status);

	printf("no children: %d %s\n", waitpid(-1, &status, WNOHANG), strerror(errno));
	p = fork();
	if (p == 0) {
		sleep_ms(30);
		_exit(1);
	}
	printf("WNOHANG before exit: %d\n", waitpid(p, &status, WNOHANG));
	siginfo_t si;
	memset(&si, 0, sizeof si);
	waitid(P_PID, p, &si, WEXITED);
	printf("waitid: code %d status %d pid ok %d\n", si.si_code, si.si_status, si.si_pid == p);

	p = fork();
	if (p == 0) {
		struct timespec start, now;
		clock_gettime(CLOCK_MONOTONIC, &start);
		do
			clock_gettime(CLOCK_MONOTONIC, &now);
		while ((now.tv_sec - start.tv_sec) * 1000000000L + now.tv_nsec - start.tv_nsec < 30000000L);
		_exit(0);
	}
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	wait4(p, &status, 0, &ru);
	printf("wait4 rusage: child used cpu %d\n", ru.ru_utime.tv_sec > 0 || ru.ru_utime.tv_usec + ru.ru_stime.tv_usec > 10000);
}

static long counter;
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;

static void *count(void *arg) {
	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(&counter_lock);
		counter++;
		pthread_mutex_unlock(&counter_lock);
	}
	return arg;
}

static void threads(void) {
	pthread_t th[8];
	for (long i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, count, (void *)i);
	long sum = 0;
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		sum += (long)r;
	}
	printf("threads: counter %ld, joined sum %ld\n", counter, sum);
}

static sigjmp_buf jump;
static volatile int seen_code;
static volatile uintptr_t seen_addr;
static volatile uintptr_t handler_sp;

static void on_segv(int sig, siginfo_t *si, void *uc) {
	(void)sig;
	(void)uc;
	seen_code = si->si_code;
	seen_addr = (uintptr_t)si->si_addr;
	int here;
	handler_sp = (uintptr_t)&here;
	siglongjmp(jump, 1);
}

static void fault_handlers(void) {
	static char altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
	sigaltstack(&ss, NULL);
	struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	sigaction(SIGSEGV, &sa, NULL);
	if (sigsetjmp(jump, 1) == 0)
		*(volatile int *)0x1234 = 1;
	printf("segv handler: code %d addr %#lx on altstack %d\n", seen_code, (unsigned long)seen_addr,
	       handler_sp > (uintptr_t)altstack && handler_sp < (uintptr_t)altstack + sizeof altstack);
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sigsetjmp(jump, 1) == 0)
		ro[8] = 1;
	printf("write to read-only: code %d addr ok %d\n", seen_code, seen_addr == (uintptr_t)ro + 8);
	signal(SIGSEGV, SIG_DFL);
}

static volatile int queued_value, usr1_count;

static void on_usr1(int sig, siginfo_t *si, void *uc) {
	(void)sig;
	(void)uc;
	usr1_count++;
	if (si->si_code == SI_QUEUE)
		queued_value = si->si_value.sival_int;
}

static void masks_and_queues(void) {
	struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
	sigaction(SIGUSR1, &sa, NULL);
	union sigval v = {.sival_int = 77};
	sigqueue(getpid(), SIGUSR1, v);
	printf("sigqueue: value %d count %d\n", queued_value, usr1_count);
	long bad = syscall(SYS_tgkill, -1, gettid(), 0);
	printf("tgkill with tgid -1: %ld %s\n", bad, strerror(errno));
	printf("tgkill of myself, signal 0: %ld\n", syscall(SYS_tgkill, getpid(), gettid(), 0));

	sigset_t block, old, pending;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1);
	sigpending(&pending);
	printf("blocked: pending %d count %d\n", sigismember(&pending, SIGUSR1), usr1_count);
	sigprocmask(SIG_SETMASK, &old, NULL);
	printf("unblocked: count %d (standard signals do not queue)\n", usr1_count);

	sigprocmask(SIG_BLOCK, &block, NULL);
	pid_t parent = getpid();
	if (fork() == 0) {
		sleep_ms(20);
		kill(parent, SIGUSR1);
		_exit(0);
	}
	sigset_t wait_mask;
	sigemptyset(&wait_mask);
	int r = sigsuspend(&wait_mask);
	printf("sigsuspend: %d %s count %d\n", r, strerror(errno), usr1_count);
	sigprocmask(SIG_SETMASK, &old, NULL);
	wait(NULL);

	int rt = SIGRTMIN + 1;
	sigaction(rt, &sa, NULL);
	sigset_t rtset;
	sigemptyset(&rtset);
	sigaddset(&rtset, rt);
	sigprocmask(SIG_BLOCK, &rtset, NULL);
	int before = usr1_count;
	for (int i = 0; i < 3; i++)
		sigqueue(getpid(), rt, (union sigval){.sival_int = i});
	sigprocmask(SIG_UNBLOCK, &rtset, NULL);
	printf("real-time signals queue: %d\n", usr1_count - before);

	sigprocmask(SIG_BLOCK, &rtset, NULL);
	sigqueue(getpid(), rt, (union sigval){.sival_int = 5});
	siginfo_t si;
	struct timespec zero = {0, 0};
	int got = sigtimedwait(&rtset, &si, &zero);
	printf("sigtimedwait: %d value %d\n", got == rt, si.si_value.sival_int);
	got = sigtimedwait(&rtset, &si, &zero);
	printf("sigtimedwait again: %d %s\n", got, strerror(errno));
}

static void on_usr2(int sig) { (void)sig; }

static void restart(int flags, const char *what) {
	int p[2];
	pipe(p);
	struct sigaction sa = {.sa_handler = on_usr2, .sa_flags = flags};
	sigaction(SIGUSR2, &sa, NULL);
	pid_t parent = getpid();
	pid_t child = fork();
	if (child == 0) {
		sleep_ms(30);
		kill(parent, SIGUSR2);
		sleep_ms(30);
		write(p[1], "x", 1);
		_exit(0);
	}
	char c;
	ssize_t n = read(p[0], &c, 1);
	printf("%s: read %zd %s\n", what, n, n < 0 ? strerror(errno) : "data");
	waitpid(child, NULL, 0);
	close(p[0]);
	close(p[1]);
}

static volatile double handler_result;
static volatile unsigned handler_mxcsr;

static unsigned get_mxcsr(void) {
	unsigned v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void set_mxcsr(unsigned v) { __asm__ volatile("ldmxcsr %0" : : "m"(v)); }

static void on_alrm_fpu(int sig) {
	(void)sig;
	handler_mxcsr = get_mxcsr();
	volatile double x = 3.0;
	for (int i = 0; i < 10; i++)
		x = x * 1.5 + 0.25;
	handler_result = x;
}

static void fpu_across_handler(void) {
	signal(SIGUSR2, on_alrm_fpu);
	volatile double a = 1.0 / 3.0;
	double b = a * 7.0;
	set_mxcsr(0x1f80 | 0x6000); // round toward zero
	raise(SIGUSR2);
	unsigned after = get_mxcsr();
	set_mxcsr(0x1f80);
	double c = a * 7.0;
	printf("fpu state kept across a handler: %d\n", b == c && handler_result > 0);
	printf("handler's mxcsr %#x, mxcsr after it %#x\n", handler_mxcsr, after);
}

static void exec_and_vfork(const char *self) {
	pid_t p = fork();
	if (p == 0) {
		set_mxcsr(0x1f80 | 0x6000); // exec must not pass the rounding mode on
		execl(self, self, "exec-child", "x y", (char *)NULL);
		_exit(99);
	}
	int status;
	waitpid(p, &status, 0);
	describe("exec child", status);
	p = vfork();
	if (p == 0) {
		execl(self, self, "exec-child", "from vfork", (char *)NULL);
		_exit(98);
	}
	waitpid(p, &status, 0);
	describe("vfork child", status);
	p = fork();
	if (p == 0) {
		int fd = open(self, O_RDONLY | O_CLOEXEC);
		char *args[] = {(char *)self, "exec-child", "fexecve", NULL};
		fexecve(fd, args, environ);
		_exit(97);
	}
	waitpid(p, &status, 0);
	describe("fexecve child", status);
	p = fork();
	if (p == 0) {
		execl("/nonexistent", "x", (char *)NULL);
		printf("exec of a missing file: %s\n", strerror(errno));
		fflush(stdout);
		_exit(3);
	}
	waitpid(p, &status, 0);
	describe("failed exec", status);
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 2 && strcmp(argv[1], "exec-child") == 0) {
		printf("exec child got %s, mxcsr %#x\n", argv[2], get_mxcsr());
		return 5;
	}
	wait_statuses();
	threads();
	fault_handlers();
	masks_and_queues();
	restart(SA_RESTART, "SA_RESTART");
	restart(0, "no SA_RESTART");
	fpu_across_handler();
	exec_and_vfork(argv[0]);
	printf("getpgid(0) is getpgrp(): %d\n", getpgid(0) == getpgrp());
	return 0;
}
