// Hostile process and thread patterns, by mode (argv[1]):
//   threads: create threads that never end until the kernel refuses;
//   storm:   two processes flood each other with signals for a while;
//   spin:    four threads spin in user code forever.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *forever(void *arg) {
	for (;;)
		pause();
	return arg;
}

static void *spin(void *arg) {
	for (volatile unsigned long i = 0;; i++) {
	}
	return arg;
}

static volatile unsigned long received;
static void on_signal(int sig) {
	(void)sig;
	received++;
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(mode, "threads") == 0) {
		int n = 0;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		for (;; n++) {
			pthread_t th;
			int err = pthread_create(&th, &attr, forever, NULL);
			if (err != 0) {
				printf("refused after %d threads: %s\n", n, strerror(err));
				return 0;
			}
		}
	}
	if (strcmp(mode, "storm") == 0) {
		signal(SIGUSR1, on_signal);
		pid_t parent = getpid();
		pid_t child = fork();
		if (child == 0) {
			for (double end = now() + 0.5; now() < end;)
				kill(parent, SIGUSR1);
			_exit(0);
		}
		for (double end = now() + 0.5; now() < end;)
			kill(child, SIGUSR1);
		int status;
		waitpid(child, &status, 0);
		printf("storm over: child %s, parent got signals %d\n",
		       WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1 ? "killed by SIGUSR1" : "exited", received > 0);
		return 0;
	}
	if (strcmp(mode, "spin") == 0) {
		for (int i = 0; i < 4; i++) {
			pthread_t th;
			pthread_create(&th, NULL, spin, NULL);
		}
		printf("spinning\n");
		spin(NULL);
	}
	return 2;
}
