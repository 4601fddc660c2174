// notify checks file change notification and I/O signals, one family per
// argument, printing each call with its result or errno name and each
// event it gets: inotify events and errors (inotify), the queue's
// overflow (overflow), dnotify signals (dnotify) and F_SETOWN with
// O_ASYNC on a pipe (async). It works in a fresh directory under the
// directory given as the second argument and prints nothing that differs
// between runs or file systems: watch descriptors are numbered per
// instance, and cookies are shown only as whether they pair.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"

// exchange swaps two names (renameat2 with RENAME_EXCHANGE, which musl
// does not wrap).
static long exchange(const char *a, const char *b) {
	return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
}

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000
#endif

static long report(const char *expr, long r) {
	if (r == -1)
		printf("%s = -1 %s\n", expr, ename(errno));
	else
		printf("%s = %ld\n", expr, r);
	return r;
}

#define T(e) (errno = 0, report(#e, (long)(e)))

static char dir[4096];

// at returns the path of name in the test directory.
static const char *at(const char *name) {
	static char buf[2][4200];
	static int i;
	i ^= 1;
	snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
	return buf[i];
}

static const struct {
	uint32_t bit;
	const char *name;
} bits[] = {
	{IN_ACCESS, "ACCESS"},
	{IN_MODIFY, "MODIFY"},
	{IN_ATTRIB, "ATTRIB"},
	{IN_CLOSE_WRITE, "CLOSE_WRITE"},
	{IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
	{IN_OPEN, "OPEN"},
	{IN_MOVED_FROM, "MOVED_FROM"},
	{IN_MOVED_TO, "MOVED_TO"},
	{IN_CREATE, "CREATE"},
	{IN_DELETE, "DELETE"},
	{IN_DELETE_SELF, "DELETE_SELF"},
	{IN_MOVE_SELF, "MOVE_SELF"},
	{IN_UNMOUNT, "UNMOUNT"},
	{IN_Q_OVERFLOW, "Q_OVERFLOW"},
	{IN_IGNORED, "IGNORED"},
	{IN_ISDIR, "ISDIR"},
};

static void print_mask(uint32_t mask) {
	const char *sep = "";
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
		if (mask & bits[i].bit) {
			printf("%s%s", sep, bits[i].name);
			sep = "|";
			mask &= ~bits[i].bit;
		}
	}
	if (mask)
		printf("%s0x%x", sep, mask);
}

static uint32_t last_cookie;

// drain reads and prints every queued event of fd, which must be
// non-blocking; it checks the padding of names and pairs of cookies.
static void drain(int fd) {
	char buf[8192] __attribute__((aligned(8)));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0) {
			if (errno != EAGAIN)
				printf("read: %s\n", ename(errno));
			return;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			printf("  wd=%d ", e->wd);
			print_mask(e->mask);
			if (e->mask & IN_MOVED_FROM)
				printf(" cookie=%s", e->cookie ? "set" : "zero");
			else if (e->mask & IN_MOVED_TO)
				printf(" cookie=%s", e->cookie == last_cookie && e->cookie ? "paired" : "unpaired");
			else if (e->cookie)
				printf(" cookie=unexpected");
			if (e->mask & IN_MOVED_FROM)
				last_cookie = e->cookie;
			printf(" len=%u", e->len);
			if (e->len) {
				size_t nl = strlen(e->name);
				int padded = 1;
				for (size_t i = nl; i < e->len; i++)
					padded &= e->name[i] == 0;
				printf(" name=%s padded=%d", e->name, padded);
			}
			printf("\n");
			p += sizeof *e + e->len;
		}
	}
}

// show_fdinfo prints the inotify lines of fd's /proc/self/fdinfo, with
// the inode and device numbers compared with those of the paths watched
// as wds[i].
static void show_fdinfo(int fd, int n, const int *wds, const char **paths) {
	char name[64], line[512];
	snprintf(name, sizeof name, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(name, "r");
	if (!f) {
		printf("fdinfo: %s\n", ename(errno));
		return;
	}
	while (fgets(line, sizeof line, f)) {
		int wd;
		unsigned long ino;
		unsigned sdev, mask, ignored;
		if (sscanf(line, "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x", &wd, &ino, &sdev, &mask, &ignored) != 5)
			continue;
		const char *ino_ok = "unknown", *dev_ok = "unknown";
		for (int i = 0; i < n; i++) {
			struct stat st;
			if (wds[i] != wd || stat(paths[i], &st) != 0)
				continue;
			ino_ok = st.st_ino == ino ? "match" : "differ";
			dev_ok = ((major(st.st_dev) << 20) | minor(st.st_dev)) == sdev ? "match" : "differ";
		}
		printf("fdinfo wd=%d ino=%s sdev=%s mask=%x ignored_mask=%x\n", wd, ino_ok, dev_ok, mask, ignored);
	}
	fclose(f);
}

static void touch(const char *name, const char *data) {
	int fd = open(at(name), O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (data)
		write(fd, data, strlen(data));
	close(fd);
}

static void step(int fd, const char *what) {
	printf("%s\n", what);
	drain(fd);
}

static int fam_inotify(void) {
	int fd = T(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
	T(fcntl(fd, F_GETFL) & (O_NONBLOCK | O_ACCMODE));
	T(fcntl(fd, F_GETFD));
	T(inotify_init1(IN_NONBLOCK << 1));
	char small[8];
	T(read(fd, small, sizeof small));
	T(write(fd, "x", 1));
	touch("existing", NULL);
	int other = open(at("existing"), O_RDONLY);

	T(inotify_add_watch(fd, dir, 0));
	T(inotify_add_watch(-1, dir, IN_ALL_EVENTS));
	T(inotify_add_watch(99, dir, IN_ALL_EVENTS));
	T(inotify_add_watch(other, dir, IN_ALL_EVENTS));
	T(inotify_add_watch(fd, at("missing"), IN_ALL_EVENTS));
	T(inotify_add_watch(fd, at("existing"), IN_MODIFY | IN_ONLYDIR));
	T(inotify_add_watch(fd, at("existing/x"), IN_MODIFY));
	T(inotify_add_watch(fd, dir, IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE));
	int wd = T(inotify_add_watch(fd, dir, IN_ALL_EVENTS));
	T(inotify_add_watch(fd, dir, IN_ALL_EVENTS) == wd);
	T(inotify_add_watch(fd, dir, IN_MODIFY | IN_MASK_CREATE));
	T(inotify_add_watch(fd, dir, IN_ALL_EVENTS));
	T(inotify_rm_watch(fd, 99));
	T(inotify_rm_watch(other, wd));
	T(inotify_rm_watch(-1, wd));
	close(other);
	step(fd, "setup");

	struct pollfd p = {.fd = fd, .events = POLLIN};
	T(poll(&p, 1, 0));
	int q = -1;
	T((ioctl(fd, FIONREAD, &q), q));
	touch("a", "x");
	T(poll(&p, 1, 0));
	T(p.revents);
	T((ioctl(fd, FIONREAD, &q), q));
	step(fd, "create a");

	int w = open(at("a"), O_WRONLY);
	write(w, "1", 1);
	write(w, "2", 1);
	close(w);
	step(fd, "two writes coalesce");

	int r = open(at("a"), O_RDONLY);
	char c;
	read(r, &c, 1);
	read(r, &c, 1);
	read(r, &c, 1);
	close(r);
	step(fd, "reads");

	int d = open(dir, O_RDONLY | O_DIRECTORY);
	char ents[4096] __attribute__((aligned(8)));
	while (syscall(SYS_getdents64, d, ents, sizeof ents) > 0)
		;
	close(d);
	step(fd, "list the directory");

	T(exchange(at("a"), at("existing")));
	step(fd, "exchange");
	T(exchange(at("a"), at("existing")));
	touch("x", NULL);
	T(rename(at("x"), at("existing")));
	step(fd, "rename over a file");

	T(rename(at("a"), at("b")));
	step(fd, "rename a b");

	int wdb = T(inotify_add_watch(fd, at("b"), IN_ALL_EVENTS));
	T(rename(at("b"), at("c")));
	touch("c", "more");
	T(chmod(at("c"), 0600));
	T(truncate(at("c"), 1));
	step(fd, "watch follows the inode");
	T(link(at("c"), at("c2")));
	T(unlink(at("c")));
	step(fd, "link and unlink one name");
	T(unlink(at("c2")));
	step(fd, "unlink the last name");
	T(inotify_rm_watch(fd, wdb));

	char name[200];
	memset(name, 'n', 40);
	name[40] = 0;
	touch(name, NULL);
	drain(fd);
	touch(name, NULL);
	char buf[64] __attribute__((aligned(8)));
	T(read(fd, buf, sizeof(struct inotify_event)));
	T(read(fd, buf, sizeof(struct inotify_event) + 40));
	T(read(fd, buf, sizeof buf));
	T(((struct inotify_event *)buf)->len);
	step(fd, "rest after a small buffer");

	T(mkdir(at("sub"), 0755));
	int wds = T(inotify_add_watch(fd, at("sub"), IN_ALL_EVENTS | IN_ONLYDIR));
	touch("sub/inner", NULL);
	T(rename(at("sub/inner"), at("inner")));
	T(rename(at("inner"), at("sub/inner")));
	T(unlink(at("sub/inner")));
	T(rename(at("sub"), at("sub2")));
	T(rmdir(at("sub2")));
	step(fd, "subdirectory");
	T(inotify_rm_watch(fd, wds));

	touch("once", NULL);
	drain(fd);
	int wdo = T(inotify_add_watch(fd, at("once"), IN_MODIFY | IN_ONESHOT));
	touch("once", "1");
	touch("once", "2");
	step(fd, "oneshot");
	T(inotify_rm_watch(fd, wdo));

	int fd2 = T(inotify_init1(IN_NONBLOCK));
	touch("m", NULL);
	int wdm = T(inotify_add_watch(fd2, at("m"), IN_OPEN));
	T(inotify_add_watch(fd2, at("m"), IN_CLOSE_WRITE | IN_MASK_ADD) == wdm);
	touch("m", "x");
	step(fd2, "mask add");
	T(inotify_add_watch(fd2, at("m"), IN_ATTRIB) == wdm);
	touch("m", "x");
	T(chmod(at("m"), 0640));
	step(fd2, "mask replaced");
	T(inotify_rm_watch(fd2, wdm));
	T(inotify_rm_watch(fd2, wdm));
	step(fd2, "rm_watch");

	touch("open", NULL);
	int wdx = T(inotify_add_watch(fd2, dir, IN_MODIFY | IN_EXCL_UNLINK));
	int wdopen = T(inotify_add_watch(fd2, at("open"), IN_ALL_EVENTS));
	{
		int wds[] = {wdx, wdopen};
		const char *paths[] = {dir, at("open")};
		show_fdinfo(fd2, 2, wds, paths);
	}
	drain(fd);
	int o = open(at("open"), O_WRONLY);
	T(unlink(at("open")));
	write(o, "x", 1);
	step(fd2, "unlinked but open");
	close(o);
	step(fd2, "closed");
	step(fd, "the other instance");
	T(inotify_rm_watch(fd2, wdx));
	T(inotify_rm_watch(fd2, wdopen));
	close(fd2);

	int fd3 = T(inotify_init());
	T(inotify_add_watch(fd3, dir, IN_CREATE));
	pid_t pid = fork();
	if (pid == 0) {
		usleep(1000);
		touch("fromchild", NULL);
		_exit(0);
	}
	struct inotify_event *e = (struct inotify_event *)buf;
	T(read(fd3, buf, sizeof buf));
	printf("blocking read: %s\n", e->name);
	waitpid(pid, NULL, 0);
	close(fd3);

	T(mkdir(at("private"), 0700));
	touch("private/inside", NULL);
	touch("unreadable", NULL);
	T(chmod(at("unreadable"), 0200));
	drain(fd);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		int fd4 = T(inotify_init());
		T(inotify_add_watch(fd4, at("private"), IN_ALL_EVENTS));
		T(inotify_add_watch(fd4, at("private/inside"), IN_ALL_EVENTS));
		T(inotify_add_watch(fd4, at("unreadable"), IN_ALL_EVENTS));
		T(inotify_add_watch(fd4, dir, IN_ALL_EVENTS));
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	T(status);
	T(unlink(at("private/inside")));
	T(rmdir(at("private")));
	T(unlink(at("unreadable")));
	T(inotify_rm_watch(fd, wd));
	step(fd, "end");
	return 0;
}

static int fam_overflow(void) {
	int fd = T(inotify_init1(IN_NONBLOCK));
	touch("f", NULL);
	// Each rename makes three events (the pair in the directory, and
	// the file's own), which alternate and never merge.
	T(inotify_add_watch(fd, dir, IN_MOVED_FROM | IN_MOVED_TO));
	T(inotify_add_watch(fd, at("f"), IN_MOVE_SELF));
	for (int i = 0; i < 2800; i++) {
		rename(at("f"), at("g"));
		rename(at("g"), at("f"));
	}
	int q = -1;
	ioctl(fd, FIONREAD, &q);
	printf("queued bytes %d\n", q);
	char buf[4096] __attribute__((aligned(8)));
	long events = 0;
	struct inotify_event last;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			events++;
			last = *e;
			p += sizeof *e + e->len;
		}
	}
	printf("events %ld, last wd=%d ", events, last.wd);
	print_mask(last.mask);
	printf("\n");
	T(rename(at("f"), at("g")));
	step(fd, "after the overflow");
	return 0;
}

static volatile int got, got_fd, got_code, got_sig;
static volatile long got_band;

static void on_signal(int sig, siginfo_t *si, void *ctx) {
	(void)ctx;
	got++;
	got_sig = sig;
	got_fd = si->si_fd;
	got_code = si->si_code;
	got_band = si->si_band;
}

static void show(const char *what, int fd) {
	printf("%s: signals %d", what, got);
	if (got)
		printf(" sig=%s fd=%s code=%d band=0x%lx", got_sig == SIGIO ? "SIGIO" : got_sig == SIGRTMIN + 1 ? "SIGRTMIN+1" : "other",
		       got_fd == fd ? "match" : "other", got_code, (long)got_band);
	printf("\n");
	got = 0;
	got_band = 0;
	got_fd = -1;
	got_code = 0;
}

static int fam_dnotify(void) {
	struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO};
	sigaction(SIGIO, &sa, NULL);
	sigaction(SIGRTMIN + 1, &sa, NULL);
	int dfd = T(open(dir, O_RDONLY | O_DIRECTORY));
	touch("file", NULL);
	int ffd = open(at("file"), O_RDONLY);
	T(fcntl(ffd, F_NOTIFY, DN_CREATE));
	T(fcntl(dfd, F_GETSIG));
	T(fcntl(dfd, F_NOTIFY, DN_CREATE));
	touch("one", NULL);
	show("create, default signal", dfd);
	touch("two", NULL);
	show("second create, not multishot", dfd);

	T(fcntl(dfd, F_SETSIG, SIGRTMIN + 1));
	T(fcntl(dfd, F_GETSIG) == SIGRTMIN + 1);
	T(fcntl(dfd, F_SETSIG, 99));
	T(fcntl(dfd, F_NOTIFY, DN_CREATE | DN_DELETE | DN_MODIFY | DN_ATTRIB | DN_RENAME | DN_ACCESS | DN_MULTISHOT));
	touch("three", NULL);
	show("create", dfd);
	touch("three", "x");
	show("modify", dfd);
	T(chmod(at("three"), 0600));
	show("attrib", dfd);
	char c;
	T(read(ffd, &c, 1));
	show("access at end of file", dfd);
	T(rename(at("three"), at("four")));
	show("rename", dfd);
	T(unlink(at("four")));
	show("delete", dfd);
	T(mkdir(at("d"), 0755));
	show("mkdir", dfd);
	T(rmdir(at("d")));
	show("rmdir", dfd);

	T(fcntl(dfd, F_NOTIFY, 0));
	touch("five", NULL);
	show("removed", dfd);
	T(fcntl(dfd, F_NOTIFY, DN_CREATE | DN_MULTISHOT));
	T(close(dfd));
	touch("six", NULL);
	show("after close", dfd);
	T(fcntl(ffd, F_NOTIFY, 0));
	close(ffd);
	return 0;
}

static int fam_async(void) {
	// The process group owner below must reach this process only.
	setpgid(0, 0);
	struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO};
	sigaction(SIGIO, &sa, NULL);
	sigaction(SIGRTMIN + 1, &sa, NULL);
	int p[2];
	T(pipe(p));
	T(fcntl(p[0], F_GETOWN));
	T(fcntl(p[0], F_SETOWN, getpid()));
	T(fcntl(p[0], F_GETOWN) == getpid());
	struct f_owner_ex ex = {0};
	T(fcntl(p[0], F_GETOWN_EX, &ex));
	T(ex.type == F_OWNER_PID && ex.pid == getpid());
	T(fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK));
	T(fcntl(p[0], F_GETFL) & (O_ASYNC | O_NONBLOCK));
	T(write(p[1], "x", 1));
	show("readable, default signal", p[0]);
	T(write(p[1], "y", 1));
	show("more data", p[0]);

	T(fcntl(p[0], F_SETSIG, SIGRTMIN + 1));
	T(write(p[1], "z", 1));
	show("readable, F_SETSIG", p[0]);
	char buf[8];
	T(read(p[0], buf, sizeof buf));
	show("drained", p[0]);

	T(fcntl(p[1], F_SETOWN, getpid()));
	T(fcntl(p[1], F_SETSIG, SIGRTMIN + 1));
	T(fcntl(p[1], F_SETFL, O_ASYNC | O_NONBLOCK));
	T(write(p[1], "w", 1));
	show("write end after a write", p[1]);
	T(read(p[0], buf, sizeof buf));
	show("write end after a read", p[1]);

	ex.type = F_OWNER_TID;
	ex.pid = getpid();
	T(fcntl(p[0], F_SETOWN_EX, &ex));
	ex.type = 7;
	T(fcntl(p[0], F_SETOWN_EX, &ex));
	ex.type = F_OWNER_PGRP;
	ex.pid = getpgrp();
	T(fcntl(p[0], F_SETOWN_EX, &ex));
	T(fcntl(p[0], F_GETOWN) == -getpgrp());
	T(write(p[1], "v", 1));
	show("process group owner", p[0]);
	T(fcntl(p[0], F_SETOWN, 0));
	T(write(p[1], "u", 1));
	show("no owner", p[0]);
	T(fcntl(p[0], F_SETOWN, 999999));

	// A child makes this process the owner of a pipe of its own: the
	// signal comes while the child is root, not once it is not.
	for (int drop = 0; drop < 2; drop++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			if (drop && (setgid(65534) != 0 || setuid(65534) != 0))
				_exit(2);
			// A real-time signal, which queues: one for the write, one
			// for the write end's close.
			int q[2];
			if (pipe(q) != 0 || fcntl(q[0], F_SETOWN, getppid()) != 0 || fcntl(q[0], F_SETSIG, SIGRTMIN + 1) != 0 ||
			    fcntl(q[0], F_SETFL, O_ASYNC) != 0 || write(q[1], "x", 1) != 1 || close(q[1]) != 0)
				_exit(3);
			_exit(0);
		}
		int status;
		// The signal may interrupt the wait.
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		printf("child %s: exit %d\n", drop ? "not root" : "root", status);
		show("owner set by a child", -1);
	}

	int sv[2];
	T(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	T(fcntl(sv[0], F_SETOWN, getpid()));
	T(fcntl(sv[0], F_SETSIG, SIGRTMIN + 1));
	T(fcntl(sv[0], F_SETFL, O_ASYNC | O_NONBLOCK));
	T(write(sv[1], "ab", 2));
	show("unix socket readable", sv[0]);
	T(read(sv[0], buf, sizeof buf));
	show("unix socket drained", sv[0]);
	T(write(sv[0], "cd", 2));
	show("unix socket wrote", sv[0]);
	T(close(sv[1]));
	show("unix socket peer closed", sv[0]);
	close(sv[0]);

	// FIOASYNC, as nginx sets it on its channel to a worker, is O_ASYNC.
	int on = 1, off = 0;
	T(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	T(fcntl(sv[0], F_SETOWN, getpid()));
	T(ioctl(sv[0], FIOASYNC, &on));
	T(fcntl(sv[0], F_GETFL) & O_ASYNC);
	T(write(sv[1], "ef", 2));
	show("FIOASYNC on, readable", sv[0]);
	T(ioctl(sv[0], FIOASYNC, &off));
	T(fcntl(sv[0], F_GETFL) & O_ASYNC);
	T(write(sv[1], "gh", 2));
	show("FIOASYNC off", sv[0]);
	close(sv[0]);
	close(sv[1]);
	int rf = T(open(at("fioasync"), O_RDWR | O_CREAT, 0644));
	T(ioctl(rf, FIOASYNC, &on));
	T(ioctl(rf, FIOASYNC, &off));
	T(fcntl(rf, F_GETFL) & O_ASYNC);
	close(rf);

	int u = T(socket(AF_INET, SOCK_DGRAM, 0));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof sin;
	T(bind(u, (struct sockaddr *)&sin, sizeof sin));
	T(getsockname(u, (struct sockaddr *)&sin, &slen));
	T(fcntl(u, F_SETOWN, getpid()));
	T(fcntl(u, F_SETSIG, SIGRTMIN + 1));
	T(fcntl(u, F_SETFL, O_ASYNC | O_NONBLOCK));
	// The datagram may arrive after sendto returns: wait for its signal.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	T(sendto(u, "x", 1, 0, (struct sockaddr *)&sin, sizeof sin));
	struct timespec limit = {.tv_sec = 30};
	siginfo_t si;
	T(sigtimedwait(&set, &si, &limit) == SIGRTMIN + 1);
	T(si.si_code);
	T(si.si_fd == u);
	T(si.si_band);
	close(u);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 3)
		return 2;
	snprintf(dir, sizeof dir, "%s/notify-%s-%d", argv[2], argv[1], (int)getpid());
	if (mkdir(dir, 0755) != 0) {
		perror("mkdir");
		return 1;
	}
	int rc = 2;
	if (!strcmp(argv[1], "inotify"))
		rc = fam_inotify();
	else if (!strcmp(argv[1], "overflow"))
		rc = fam_overflow();
	else if (!strcmp(argv[1], "dnotify"))
		rc = fam_dnotify();
	else if (!strcmp(argv[1], "async"))
		rc = fam_async();
	fflush(stdout);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "%s", dir);
	// Remove what the family left: files, then the directory.
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char ents[8192] __attribute__((aligned(8)));
	long n;
	while ((n = syscall(SYS_getdents64, dfd, ents, sizeof ents)) > 0) {
		for (long off = 0; off < n;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(ents + off);
			if (strcmp(d->name, ".") && strcmp(d->name, ".."))
				unlinkat(dfd, d->name, d->type == DT_DIR ? AT_REMOVEDIR : 0);
			off += d->reclen;
		}
	}
	close(dfd);
	rmdir(cmd);
	return rc;
}
