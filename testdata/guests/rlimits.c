// rlimits checks that resource limits bite as on Linux: RLIMIT_FSIZE
// (EFBIG and SIGXFSZ), RLIMIT_AS and RLIMIT_DATA (mmap, mremap, mprotect,
// brk), RLIMIT_STACK (the stack an exec'd program gets, and where its
// mappings go), RLIMIT_NPROC (for a non-root user; root is exempt),
// RLIMIT_NOFILE's ceiling, RLIMIT_CORE, setrlimit's own rules and the
// inheritance of limits across fork and execve. Each part runs in a forked
// child so that its limits stay there. It prints results and errno names,
// never addresses or ids.
#define _GNU_SOURCE
#include <alloca.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

#define MiB (1UL << 20)
// user is the unprivileged user the RLIMIT_NPROC checks run as: one that
// runs nothing else on the host.
#define USER 54321

// res shows a system call's result: the value, or -1 and the errno name.
static const char *res(long r) {
	static char buf[64];
	if (r < 0)
		snprintf(buf, sizeof buf, "-1 %s", ename(errno));
	else
		snprintf(buf, sizeof buf, "%ld", r);
	return buf;
}

#define T(call) printf("%s = %s\n", #call, res(call))

static const char *mres(void *p) { return p == MAP_FAILED ? ename(errno) : "mapped"; }

static volatile sig_atomic_t xfsz;
static void onxfsz(int sig) { (void)sig; xfsz++; }

static int setlim(int r, rlim_t cur, rlim_t max) {
	struct rlimit l = {cur, max};
	return setrlimit(r, &l);
}

static void showlim(const char *name, int r) {
	struct rlimit l;
	if (getrlimit(r, &l) != 0) {
		printf("%s: getrlimit %s\n", name, ename(errno));
		return;
	}
	if (l.rlim_cur == RLIM_INFINITY)
		printf("%s: cur unlimited", name);
	else
		printf("%s: cur %lu", name, (unsigned long)l.rlim_cur);
	if (l.rlim_max == RLIM_INFINITY)
		printf(" max unlimited\n");
	else
		printf(" max %lu\n", (unsigned long)l.rlim_max);
}

// run calls fn in a child and reports how the child ended; a child killed
// by a signal cannot leave a core file behind.
static void run(const char *name, void (*fn)(void)) {
	printf("== %s\n", name);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		setlim(RLIMIT_CORE, 0, 0);
		fn();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		printf("%s: killed by %s\n", name, strsignal(WTERMSIG(st)));
	else if (WEXITSTATUS(st) != 0)
		printf("%s: exit %d\n", name, WEXITSTATUS(st));
}

static char dir[] = "/tmp/rlimitsXXXXXX";
static char file[64];

static void setrules(void) {
	T(setlim(RLIMIT_FSIZE, 2, 1));
	T(setlim(99, 1, 1));
	T(setlim(RLIMIT_CORE, 0, 0));
	showlim("core", RLIMIT_CORE);
	// fs.nr_open bounds RLIMIT_NOFILE even for root.
	unsigned long nr = 1048576;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");
	if (f) {
		if (fscanf(f, "%lu", &nr) != 1)
			nr = 1048576;
		fclose(f);
	}
	T(setlim(RLIMIT_NOFILE, 64, nr + 1));
	T(setlim(RLIMIT_NOFILE, 64, 512));
	showlim("nofile", RLIMIT_NOFILE);
	// Anyone may lower a hard limit; raising one takes CAP_SYS_RESOURCE,
	// which a switch to another user drops.
	T(setlim(RLIMIT_MSGQUEUE, 100, 200));
	T(setgroups(0, NULL));
	T(setgid(USER));
	T(setuid(USER));
	T(setlim(RLIMIT_MSGQUEUE, 100, 150));
	T(setlim(RLIMIT_MSGQUEUE, 100, 200));
	T(setlim(RLIMIT_MSGQUEUE, 160, 150));
	T(setlim(RLIMIT_MSGQUEUE, 150, 150));
	showlim("msgqueue", RLIMIT_MSGQUEUE);
}

static void inherit(void) {
	T(setlim(RLIMIT_FSIZE, 12345, 23456));
	T(setlim(RLIMIT_STACK, 16 * MiB, RLIM_INFINITY));
	pid_t pid = fork();
	if (pid == 0) {
		showlim("fsize in child", RLIMIT_FSIZE);
		fflush(stdout);
		execl("/proc/self/exe", "rlimits", "exec", (char *)NULL);
		_exit(1);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child exit %d\n", WEXITSTATUS(st));
}

static void fsize(void) {
	char buf[2000];
	memset(buf, 'x', sizeof buf);
	signal(SIGXFSZ, onxfsz);
	char src[80];
	snprintf(src, sizeof src, "%s/src", dir);
	int sfd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
	write(sfd, buf, sizeof buf);
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	T(setlim(RLIMIT_FSIZE, 1000, 1000));
	T(write(fd, buf, 600));
	T(write(fd, buf, 600));
	printf("xfsz %d\n", xfsz);
	T(write(fd, buf, 10));
	printf("xfsz %d\n", xfsz);
	T(write(fd, buf, 0));
	printf("xfsz %d\n", xfsz);
	T(pwrite(fd, buf, 10, 999));
	T(pwrite(fd, buf, 10, 1000));
	T(pwrite(fd, buf, 10, 5000));
	printf("xfsz %d\n", xfsz);
	struct iovec iov[2] = {{buf, 300}, {buf, 300}};
	T(lseek(fd, 500, SEEK_SET));
	T(writev(fd, iov, 2));
	T(writev(fd, iov, 2));
	T(pwritev(fd, iov, 2, 900));
	T(pwritev(fd, iov, 2, 1000));
	printf("xfsz %d\n", xfsz);
	int afd = open(file, O_WRONLY | O_APPEND);
	T(write(afd, buf, 10));
	printf("xfsz %d\n", xfsz);
	T(ftruncate(fd, 10));
	T(write(afd, buf, 10));
	close(afd);
	T(ftruncate(fd, 1000));
	T(ftruncate(fd, 1001));
	T(ftruncate(fd, 2000));
	printf("xfsz %d\n", xfsz);
	T(truncate(file, 5000));
	T(truncate(file, 900));
	printf("xfsz %d\n", xfsz);
	T(fallocate(fd, 0, 0, 2000));
	T(fallocate(fd, 0, 500, 500));
	T(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 5000));
	printf("xfsz %d\n", xfsz);
	struct stat st;
	fstat(fd, &st);
	printf("size %ld\n", (long)st.st_size);
	// copy_file_range is shortened as a write is; sendfile at the limit fails.
	loff_t in = 0, out = 900;
	T(copy_file_range(sfd, &in, fd, &out, 500, 0));
	T(copy_file_range(sfd, &in, fd, &out, 500, 0));
	printf("xfsz %d\n", xfsz);
	off_t soff = 0;
	T(lseek(fd, 1000, SEEK_SET));
	T(sendfile(fd, sfd, &soff, 10));
	printf("xfsz %d\n", xfsz);
	close(sfd);
	unlink(src);
	// Pipes are not files: the limit does not apply.
	int p[2];
	pipe(p);
	T(write(p[1], buf, sizeof buf));
	printf("xfsz %d\n", xfsz);
	// A file opened read-only gets EBADF, not EFBIG.
	int rfd = open(file, O_RDONLY);
	T(pwrite(rfd, buf, 10, 5000));
	printf("xfsz %d\n", xfsz);
	close(fd);
}

static void fsizeDefault(void) {
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	setlim(RLIMIT_FSIZE, 0, 0);
	T(write(fd, "x", 1));
	printf("not reached\n");
}

static void space(void) {
	T(setlim(RLIMIT_AS, 256 * MiB, 256 * MiB));
	printf("mmap 512M none: %s\n", mres(mmap(NULL, 512 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	void *p = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap 16M: %s\n", mres(p));
	printf("mremap 512M: %s\n", mres(mremap(p, 16 * MiB, 512 * MiB, MREMAP_MAYMOVE)));
	printf("mremap 32M: %s\n", mres(p = mremap(p, 16 * MiB, 32 * MiB, MREMAP_MAYMOVE)));
	// Replacing a mapping in place does not count it twice.
	printf("mmap fixed over: %s\n",
	       mres(mmap(p, 32 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)));
	long brk0 = syscall(SYS_brk, 0);
	printf("brk +512M moved: %s\n", syscall(SYS_brk, brk0 + 512 * MiB) == brk0 + (long)(512 * MiB) ? "yes" : "no");
	printf("brk +1M moved: %s\n", syscall(SYS_brk, brk0 + MiB) == brk0 + (long)MiB ? "yes" : "no");
	syscall(SYS_brk, brk0);
	// A lower soft limit below what is mapped unmaps nothing; growth fails.
	T(setlim(RLIMIT_AS, 4 * MiB, 256 * MiB));
	printf("mmap 1M: %s\n", mres(mmap(NULL, MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	T(munmap(p, 32 * MiB));
}

static void data(void) {
	T(setlim(RLIMIT_DATA, 32 * MiB, 32 * MiB));
	printf("mmap 64M private rw: %s\n",
	       mres(mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
	void *ro = mmap(NULL, 64 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap 64M private ro: %s\n", mres(ro));
	T(mprotect(ro, 64 * MiB, PROT_READ | PROT_WRITE));
	T(mprotect(ro, MiB, PROT_READ | PROT_WRITE));
	void *sh = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	printf("mmap 64M shared rw: %s\n", mres(sh));
	void *p = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mmap 1M private rw: %s\n", mres(p));
	printf("mremap 64M: %s\n", mres(mremap(p, MiB, 64 * MiB, MREMAP_MAYMOVE)));
	long brk0 = syscall(SYS_brk, 0);
	printf("brk +64M moved: %s\n", syscall(SYS_brk, brk0 + 64 * MiB) == brk0 + (long)(64 * MiB) ? "yes" : "no");
	printf("brk +1M moved: %s\n", syscall(SYS_brk, brk0 + MiB) == brk0 + (long)MiB ? "yes" : "no");
	syscall(SYS_brk, brk0);
}

// deep uses n bytes of stack, touching each page from the top down.
static __attribute__((noinline)) int deep(size_t n) {
	char *buf = alloca(n);
	for (size_t i = n; i >= 4096; i -= 4096)
		((volatile char *)buf)[i - 4096] = 1;
	return buf[0];
}

static void stack(void) {
	T(setlim(RLIMIT_STACK, 32 * MiB, RLIM_INFINITY));
	fflush(stdout);
	execl("/proc/self/exe", "rlimits", "stack", (char *)NULL);
	printf("exec failed\n");
}

static void stackDefault(void) {
	T(setlim(RLIMIT_STACK, 8 * MiB, RLIM_INFINITY));
	fflush(stdout);
	execl("/proc/self/exe", "rlimits", "overflow", (char *)NULL);
}

static void stackGap(void) {
	T(setlim(RLIMIT_STACK, 4096 * MiB, RLIM_INFINITY));
	fflush(stdout);
	execl("/proc/self/exe", "rlimits", "gap", (char *)NULL);
}

// waitone reports how a child ended.
static void waitone(pid_t pid) {
	int st;
	if (waitpid(pid, &st, 0) < 0)
		printf("waitpid %s\n", ename(errno));
	else
		printf("child exit %d\n", WEXITSTATUS(st));
}

static void nprocRoot(void) {
	T(setlim(RLIMIT_NPROC, 1, 1));
	pid_t pid = fork();
	if (pid == 0)
		_exit(3);
	printf("root fork: %s\n", pid < 0 ? ename(errno) : "ok");
	if (pid > 0)
		waitone(pid);
}

static void nprocUser(void) {
	T(setgroups(0, NULL));
	T(setgid(USER));
	T(setuid(USER));
	T(setlim(RLIMIT_NPROC, 1, 2));
	pid_t pid = fork();
	if (pid == 0)
		_exit(3);
	printf("fork at 1: %s\n", pid < 0 ? ename(errno) : "ok");
	if (pid > 0)
		waitone(pid);
	T(setlim(RLIMIT_NPROC, 2, 2));
	int p[2];
	pipe(p);
	pid_t a = fork();
	if (a == 0) {
		char c;
		close(p[1]);
		read(p[0], &c, 1);
		_exit(4);
	}
	printf("fork at 2: %s\n", a < 0 ? ename(errno) : "ok");
	close(p[0]);
	pid_t b = fork();
	if (b == 0)
		_exit(5);
	printf("fork beyond: %s\n", b < 0 ? ename(errno) : "ok");
	if (b > 0)
		waitone(b);
	close(p[1]);
	if (a > 0)
		waitone(a);
	pid_t c = fork();
	if (c == 0)
		_exit(6);
	printf("fork after reaping: %s\n", c < 0 ? ename(errno) : "ok");
	if (c > 0)
		waitone(c);
	// Raising the hard limit takes CAP_SYS_RESOURCE, which is gone.
	T(setlim(RLIMIT_NPROC, 2, 100));
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "exec") == 0) {
		showlim("fsize after exec", RLIMIT_FSIZE);
		showlim("stack after exec", RLIMIT_STACK);
		return 7;
	}
	if (argc > 1 && strcmp(argv[1], "stack") == 0) {
		showlim("stack after exec", RLIMIT_STACK);
		printf("24M of stack: %d\n", deep(24 * MiB));
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "overflow") == 0) {
		printf("24M of stack: %d\n", deep(24 * MiB));
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "gap") == 0) {
		char here;
		char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("mmap below the stack limit: %s\n",
		       p != MAP_FAILED && p < &here && (uint64_t)(&here - p) >= 4096 * MiB ? "yes" : "no");
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(file, sizeof file, "%s/f", dir);
	run("setrlimit rules", setrules);
	run("inheritance", inherit);
	run("fsize", fsize);
	run("fsize default action", fsizeDefault);
	run("address space", space);
	run("data", data);
	run("stack", stack);
	run("stack overflow", stackDefault);
	run("stack gap", stackGap);
	run("nproc root", nprocRoot);
	run("nproc user", nprocUser);
	unlink(file);
	rmdir(dir);
	return 0;
}
