// userland.c: the calls real programs make that the userland preset
// needed: extended attributes (ls, cp -a), /proc/self/fd and /dev/fd
// reopening a pipe (bash's process substitution), fadvise64, getcpu and
// syslog(2) reading the kernel log (dmesg), nice values (nice,
// getpriority, setpriority), the signal sets of /proc/self/status, and
// the checks of clock_settime and
// settimeofday (never a valid time: natively that would set the clock).
// Prints only what Linux and kvmbox share.
#define _GNU_SOURCE
#include <fcntl.h>
#include <time.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/klog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "errname.h"

static void show(const char *what, long ret) {
	printf("%s = %ld %s\n", what, ret < 0 ? -1L : ret, ret < 0 ? ename(errno) : "");
}

static void xattrs(void) {
	char path[] = "/tmp/userland-xattr-XXXXXX";
	int fd = mkstemp(path);
	char buf[64];
	show("getxattr user.missing", getxattr(path, "user.missing", buf, sizeof buf));
	show("lgetxattr user.missing", lgetxattr(path, "user.missing", buf, sizeof buf));
	show("fgetxattr user.missing", fgetxattr(fd, "user.missing", buf, sizeof buf));
	show("getxattr no such file", getxattr("/tmp/no-such-file-here", "user.x", buf, sizeof buf));
	show("getxattr empty name", getxattr(path, "", buf, sizeof buf));
	show("getxattr unknown namespace", getxattr(path, "nonamespace", buf, sizeof buf));
	show("fgetxattr bad fd", fgetxattr(-1, "user.x", buf, sizeof buf));
	show("listxattr no such file", listxattr("/tmp/no-such-file-here", buf, sizeof buf));
	show("flistxattr bad fd", flistxattr(-1, buf, sizeof buf));
	show("setxattr bad flags", setxattr(path, "user.x", "v", 1, 0x100));
	show("removexattr user.missing", removexattr(path, "user.missing"));
	close(fd);
	unlink(path);
}

static void fdlinks(void) {
	int p[2];
	char name[64], buf[16];
	struct stat st;
	pipe(p);
	write(p[1], "x", 1);
	snprintf(name, sizeof name, "/proc/self/fd/%d", p[0]);
	int r = open(name, O_RDONLY);
	show("open /proc/self/fd/<pipe reader>", r < 0 ? -1 : 0);
	show("read it", read(r, buf, sizeof buf));
	snprintf(name, sizeof name, "/dev/fd/%d", p[1]);
	int w = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	show("open /dev/fd/<pipe writer> O_CREAT|O_TRUNC", w < 0 ? -1 : 0);
	show("write it", write(w, "yz", 2));
	show("read the original reader", read(p[0], buf, sizeof buf));
	show("stat /dev/fd/<pipe> is a FIFO", stat(name, &st) == 0 && S_ISFIFO(st.st_mode));
	close(p[1]);
	close(w);
	show("reopened reader at end of pipe", read(r, buf, sizeof buf));
	close(r);
	close(p[0]);

	int s[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, s);
	snprintf(name, sizeof name, "/proc/self/fd/%d", s[0]);
	show("open /proc/self/fd/<socket>", open(name, O_RDWR));
	show("open /proc/self/fd/<closed>", open("/proc/self/fd/999", O_RDONLY));
	show("open /proc/self/fd/<socket>/x", open(strcat(name, "/x"), O_RDONLY));
	close(s[0]);
	close(s[1]);

	char path[] = "/tmp/userland-fd-XXXXXX";
	int fd = mkstemp(path);
	write(fd, "hello", 5);
	unlink(path);
	snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
	int again = open(name, O_RDONLY);
	show("open /proc/self/fd/<deleted file>", again < 0 ? -1 : 0);
	show("read it", read(again, buf, sizeof buf));
	close(again);
	close(fd);
}

static void advice(void) {
	int p[2];
	pipe(p);
	show("fadvise64 pipe", syscall(SYS_fadvise64, p[0], 0L, 0L, POSIX_FADV_SEQUENTIAL));
	int fd = open("/proc/self/cmdline", O_RDONLY);
	show("fadvise64 file", syscall(SYS_fadvise64, fd, 0L, 0L, POSIX_FADV_WILLNEED));
	show("fadvise64 bad advice", syscall(SYS_fadvise64, fd, 0L, 0L, 99));
	show("fadvise64 negative length", syscall(SYS_fadvise64, fd, 0L, -1L, POSIX_FADV_NORMAL));
	show("fadvise64 bad fd", syscall(SYS_fadvise64, -1, 0L, 0L, POSIX_FADV_NORMAL));
	close(fd);
	close(p[0]);
	close(p[1]);
}

static void cpus(void) {
	unsigned cpu = 12345, node = 12345;
	show("getcpu", syscall(SYS_getcpu, &cpu, &node, NULL));
	show("cpu in range", cpu < (unsigned)sysconf(_SC_NPROCESSORS_CONF));
	show("node", node);
	show("getcpu NULL NULL", syscall(SYS_getcpu, NULL, NULL, NULL));
	show("getcpu bad pointer", syscall(SYS_getcpu, (void *)8, NULL, NULL));
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof set, &set);
	show("sched_getcpu after pinning to cpu 0", sched_getcpu());
}

static void kernel_log(void) {
	static char buf[1 << 20];
	long size = klogctl(10, NULL, 0);
	show("SYSLOG_ACTION_SIZE_BUFFER positive", size > 0);
	long n = klogctl(3, buf, sizeof buf);
	show("SYSLOG_ACTION_READ_ALL starts with a level", n > 0 && buf[0] == '<');
	show("SYSLOG_ACTION_READ_ALL length 0", klogctl(3, buf, 0));
	show("SYSLOG_ACTION_READ_ALL NULL", klogctl(3, NULL, 10));
	show("SYSLOG_ACTION_READ_ALL negative", klogctl(3, buf, -1));
	show("SYSLOG_ACTION_CONSOLE_LEVEL 0", klogctl(8, NULL, 0));
	show("SYSLOG_ACTION_CONSOLE_LEVEL 9", klogctl(8, NULL, 9));
	show("action 99", klogctl(99, NULL, 0));
	show("SYSLOG_ACTION_OPEN", klogctl(1, NULL, 0));
}

static void *thread_nice(void *arg) {
	(void)arg;
	show("thread inherits nice", getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)));
	return NULL;
}

static int stat_nice(void) {
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strrchr(buf, ')');
	int field = 2, nice = -99;
	for (; p && *p; p++) {
		if (*p == ' ' && ++field == 19) {
			sscanf(p + 1, "%d", &nice);
			break;
		}
	}
	return nice;
}

static void priorities(void) {
	show("setpriority PRIO_PROCESS 0 to 3", setpriority(PRIO_PROCESS, 0, 3));
	show("getpriority PRIO_PROCESS 0", getpriority(PRIO_PROCESS, 0));
	show("/proc/self/stat nice", stat_nice());
	show("getpriority PRIO_PROCESS self", getpriority(PRIO_PROCESS, getpid()));
	setpgid(0, 0); // a group of its own, natively too
	show("getpriority PRIO_PGRP 0", getpriority(PRIO_PGRP, 0));
	show("raw getpriority", syscall(SYS_getpriority, PRIO_PROCESS, 0));
	show("nice(2)", nice(2));
	show("setpriority above the range", setpriority(PRIO_PROCESS, 0, 100));
	show("getpriority after clamping", getpriority(PRIO_PROCESS, 0));
	show("setpriority back to 1 as root", setpriority(PRIO_PROCESS, 0, 1));
	show("getpriority bad which", getpriority(7, 0));
	show("setpriority bad which", setpriority(-1, 0, 0));
	show("getpriority no such pid", getpriority(PRIO_PROCESS, 999999));
	show("setpriority no such pid", setpriority(PRIO_PROCESS, 999999, 0));
	show("getpriority no such group", getpriority(PRIO_PGRP, 999999));
	pthread_t th;
	pthread_create(&th, NULL, thread_nice, NULL);
	pthread_join(th, NULL);
	pid_t child = fork();
	if (child == 0) {
		show("child inherits nice", getpriority(PRIO_PROCESS, 0));
		struct rlimit rl = {0, 0};
		setrlimit(RLIMIT_NICE, &rl);
		setuid(1000);
		show("unprivileged raises nice", setpriority(PRIO_PROCESS, 0, 5));
		show("unprivileged lowers nice past RLIMIT_NICE", setpriority(PRIO_PROCESS, 0, 2));
		show("unprivileged changes another user's", setpriority(PRIO_PROCESS, getppid(), 10));
		show("nice stays", getpriority(PRIO_PROCESS, 0));
		_exit(0);
	}
	waitpid(child, NULL, 0);
	show("parent unchanged", getpriority(PRIO_PROCESS, 0));
}

static void on_usr1(int sig) { (void)sig; }

// status_sets prints the signal sets of /proc/self/status, limited to the
// signals the test sets up (the rest come from whoever started it).
static void status_sets(const char *when) {
	unsigned long long mask = 1ULL << (SIGPIPE - 1) | 1ULL << (SIGUSR1 - 1) | 1ULL << (SIGUSR2 - 1) |
		1ULL << (SIGTERM - 1) | 1ULL << (SIGHUP - 1) | 1ULL << (SIGALRM - 1);
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long set;
		char name[16];
		if (strncmp(line, "Sig", 3) && strncmp(line, "ShdPnd", 6))
			continue;
		if (sscanf(line, "%15[^:]:\t%llx", name, &set) == 2 && strcmp(name, "SigQ"))
			printf("%s %s: %llx\n", when, name, set & mask);
	}
	if (f)
		fclose(f);
}

static void signal_sets(void) {
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGUSR1, on_usr1);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kill(getpid(), SIGUSR2);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGTERM);
	status_sets("before exec");
	pid_t child = fork();
	if (child == 0) {
		// An ignored signal stays ignored across execve, a caught one
		// returns to its default; the mask and pending signals stay.
		execl("/proc/self/exe", "userland", "status", (char *)NULL);
		_exit(127);
	}
	waitpid(child, NULL, 0);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void set_time(void) {
	struct timespec ts = {0, 0};
	show("clock_settime CLOCK_MONOTONIC", clock_settime(CLOCK_MONOTONIC, &ts));
	show("clock_settime CLOCK_BOOTTIME", clock_settime(CLOCK_BOOTTIME, &ts));
	show("clock_settime clock 99", clock_settime(99, &ts));
	show("clock_settime bad pointer", syscall(SYS_clock_settime, CLOCK_REALTIME, (void *)8));
	ts.tv_nsec = 1000000000;
	show("clock_settime nsec out of range", clock_settime(CLOCK_REALTIME, &ts));
	ts.tv_sec = -1;
	ts.tv_nsec = 0;
	show("clock_settime negative", clock_settime(CLOCK_REALTIME, &ts));
	show("clock_settime CPU clock", clock_settime(CLOCK_PROCESS_CPUTIME_ID, &ts));
	show("clock_settime thread CPU clock", clock_settime(CLOCK_THREAD_CPUTIME_ID, &ts));
	clockid_t cid;
	clock_getcpuclockid(0, &cid);
	show("clock_settime clock_getcpuclockid's clock", clock_settime(cid, &ts));
	show("clock_settime a missing process's clock", syscall(SYS_clock_settime, (clockid_t)((~999999 << 3) | 2), &ts));
	struct timeval tv = {0, 2000000};
	show("settimeofday usec out of range", syscall(SYS_settimeofday, &tv, NULL));
	tv.tv_sec = -5;
	tv.tv_usec = 0;
	show("settimeofday negative", syscall(SYS_settimeofday, &tv, NULL));
	show("settimeofday bad pointer", syscall(SYS_settimeofday, (void *)8, NULL));
	show("settimeofday nothing", syscall(SYS_settimeofday, NULL, NULL));
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && !strcmp(argv[1], "status")) {
		status_sets("after exec");
		return 0;
	}
	xattrs();
	fdlinks();
	advice();
	cpus();
	kernel_log();
	priorities();
	set_time();
	signal_sets();
	return 0;
}
