// Process, thread and signal workloads for the benchmark harness. Each
// prints the nanoseconds its timed loop took, per iteration:
//   procbench spawn PROG N   N times fork, execve PROG (stdout to /dev/null)
//                            and wait for it
//   procbench thread N       N times pthread_create of a thread that returns
//                            at once, then pthread_join
//   procbench futex N        N round trips between two threads, each waking
//                            the other through its own futex word
//   procbench pipe N         N round trips of one byte between a process and
//                            its forked child, over two pipes
//   procbench signal N       N times tgkill of SIGUSR1 to this thread, caught
//                            by a handler that counts it
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static long long spawn(char *prog, long n) {
	char *args[] = {prog, NULL};
	// Point stdout at /dev/null for the whole loop, so that the children
	// inherit it and the timed cycle is fork, execve and wait alone.
	int saved = dup(1), null = open("/dev/null", O_WRONLY);
	if (saved < 0 || null < 0 || dup2(null, 1) < 0) die("/dev/null");
	long long t = now();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) die("fork");
		if (pid == 0) {
			execve(prog, args, environ);
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) die("spawn");
	}
	long long ns = (now() - t) / n;
	if (dup2(saved, 1) < 0) die("dup2");
	return ns;
}

static void *nothing(void *arg) { return arg; }

static long long threads(long n) {
	long long t = now();
	for (long i = 0; i < n; i++) {
		pthread_t thread;
		if (pthread_create(&thread, NULL, nothing, NULL)) die("pthread_create");
		if (pthread_join(thread, NULL)) die("pthread_join");
	}
	return (now() - t) / n;
}

// ping and pong count the rounds each side has started; a side waits on
// the other's word while it still holds the previous round.
static unsigned ping, pong;
static long rounds;

static void wait_past(unsigned *word, unsigned v) {
	while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == v) syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void post(unsigned *word, unsigned v) {
	__atomic_store_n(word, v, __ATOMIC_RELEASE);
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *ponger(void *arg) {
	for (long i = 0; i < rounds; i++) {
		wait_past(&ping, i);
		post(&pong, i + 1);
	}
	return arg;
}

static long long futexes(long n) {
	rounds = n;
	pthread_t thread;
	if (pthread_create(&thread, NULL, ponger, NULL)) die("pthread_create");
	long long t = now();
	for (long i = 0; i < n; i++) {
		post(&ping, i + 1);
		wait_past(&pong, i);
	}
	long long ns = (now() - t) / n;
	if (pthread_join(thread, NULL)) die("pthread_join");
	return ns;
}

static long long pipes(long n) {
	int there[2], back[2];
	if (pipe(there) || pipe(back)) die("pipe");
	pid_t pid = fork();
	if (pid < 0) die("fork");
	char c = 'x';
	if (pid == 0) {
		for (long i = 0; i < n; i++)
			if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1) _exit(1);
		_exit(0);
	}
	long long t = now();
	for (long i = 0; i < n; i++)
		if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) die("pipe round trip");
	long long ns = (now() - t) / n;
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) die("pipe child");
	return ns;
}

static volatile sig_atomic_t caught;

static void count(int sig) {
	(void)sig;
	caught++;
}

static long long signals(long n) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = count;
	if (sigaction(SIGUSR1, &sa, NULL)) die("sigaction");
	pid_t pid = getpid(), tid = gettid();
	long long t = now();
	for (long i = 0; i < n; i++)
		if (syscall(SYS_tgkill, pid, tid, SIGUSR1)) die("tgkill");
	long long ns = (now() - t) / n;
	if (caught != n) {
		fprintf(stderr, "caught %ld of %ld signals\n", (long)caught, n);
		exit(1);
	}
	return ns;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *op = argv[1];
	long n = atol(argv[argc - 1]);
	if (n < 1) return 2;
	long long ns;
	if (!strcmp(op, "spawn") && argc == 4) ns = spawn(argv[2], n);
	else if (!strcmp(op, "thread")) ns = threads(n);
	else if (!strcmp(op, "futex")) ns = futexes(n);
	else if (!strcmp(op, "pipe")) ns = pipes(n);
	else if (!strcmp(op, "signal")) ns = signals(n);
	else return 2;
	printf("%lld\n", ns);
	return 0;
}
