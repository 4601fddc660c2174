// iofds checks the smaller semantics of I/O calls and file descriptors,
// one family per argument, printing each call with its result or errno
// name: iovec checks and MAX_RW_COUNT (iov), the counts and buffers of
// read and write (rwcount), getdents counts (getdents), memfd names and
// seals (memfd), pipe capacities (pipesz) and readahead (readahead). It
// works in a fresh directory under /tmp and prints nothing that differs
// between runs or file systems.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

#ifndef F_LINUX_SPECIFIC_BASE
#define F_LINUX_SPECIFIC_BASE 1024
#endif
#define F_SETPIPE_SZ_ (F_LINUX_SPECIFIC_BASE + 7)
#define F_GETPIPE_SZ_ (F_LINUX_SPECIFIC_BASE + 8)
#define F_ADD_SEALS_ (F_LINUX_SPECIFIC_BASE + 9)
#define F_GET_SEALS_ (F_LINUX_SPECIFIC_BASE + 10)
#define SEAL_SEAL 0x01
#define SEAL_SHRINK 0x02
#define SEAL_GROW 0x04
#define SEAL_WRITE 0x08
#define SEAL_FUTURE_WRITE 0x10
#define SEAL_EXEC 0x20
#define MFD_ALLOW_SEALING_ 2
#define MFD_NOEXEC_SEAL_ 8

// kernel is an address above the user range; low is an unmapped one in it.
#define kernel ((void *)0xffff800000000000ul)
#define low ((void *)0x10000)
#define MAX_RW 0x7ffff000ul

static long report(const char *expr, long r) {
	if (r == -1)
		printf("%s = -1 %s\n", expr, ename(errno));
	else
		printf("%s = %ld\n", expr, r);
	return r;
}

#define T(e) (errno = 0, report(#e, (long)(e)))

// mapping turns mmap's result into report's terms, keeping errno.
static long mapping(void *p) {
	return p == MAP_FAILED ? -1 : 0;
}

static char buf[8192];
static char big[4096];

static int tmpfile_with(const char *name, const char *data) {
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data) || lseek(fd, 0, SEEK_SET) != 0) {
		perror(name);
		exit(1);
	}
	return fd;
}

static void size_of(const char *what, int fd) {
	struct stat st;
	if (fstat(fd, &st) != 0) {
		perror("fstat");
		exit(1);
	}
	printf("%s: size %lld\n", what, (long long)st.st_size);
}

static void section_iov(void) {
	int null, f;
	T(null = open("/dev/null", O_RDWR));
	f = tmpfile_with("iov", "0123456789abcdefghij");

	// The total is cut to MAX_RW_COUNT; /dev/null reads no buffer.
	struct iovec huge[2] = {{low, MAX_RW}, {buf, 100}};
	T(syscall(SYS_writev, null, huge, 2));
	huge[0].iov_len = huge[1].iov_len = 0x7fffffff;
	T(syscall(SYS_writev, null, huge, 2));
	T(syscall(SYS_pwritev, null, huge, 2, 0, 0));
	T(syscall(SYS_pwritev2, null, huge, 2, -1, 0, 0));
	T(syscall(SYS_readv, null, huge, 2));
	struct iovec fits[2] = {{buf, 0x7fffffff}, {big, 0x7fffffff}};
	T(syscall(SYS_readv, f, fits, 2));
	T(lseek(f, 0, SEEK_SET));

	// An iovec outside the user range fails the call before any I/O.
	// (How far past the top of the user range a buffer may reach before
	// the check catches it differs between kernel versions: the cases
	// stay clear of it.)
	struct iovec later[2] = {{buf, 5}, {kernel, 0}};
	T(syscall(SYS_writev, f, later, 2));
	size_of("after writev", f);
	T(syscall(SYS_readv, f, later, 2));
	T(lseek(f, 0, SEEK_CUR));
	T(syscall(SYS_preadv, f, later, 2, 0, 0));
	T(syscall(SYS_pwritev, f, later, 2, 0, 0));
	T(syscall(SYS_preadv2, f, later, 2, -1, 0, 0));
	T(syscall(SYS_pwritev2, f, later, 2, -1, 0, 0));
	T(syscall(SYS_writev, null, later, 2));
	later[1].iov_base = (void *)0x7fffffffe000;
	later[1].iov_len = 0x1000;
	T(syscall(SYS_writev, null, later, 2));
	later[1].iov_base = (void *)0x7ffffffff000;
	later[1].iov_len = 0;
	T(syscall(SYS_writev, null, later, 2));
	later[1].iov_base = (void *)-4096;
	later[1].iov_len = 8192;
	T(syscall(SYS_writev, null, later, 2));

	// A length negative as ssize_t is EINVAL, before any bad address.
	struct iovec neg[2] = {{kernel, 1}, {buf, (size_t)-1}};
	T(syscall(SYS_writev, null, neg, 2));
	T(syscall(SYS_readv, f, neg, 2));
	T(syscall(SYS_writev, null, neg, 1025));
	T(syscall(SYS_writev, null, neg, -1));
	T(syscall(SYS_writev, null, neg, 0));
	T(syscall(SYS_readv, f, neg, 0));
	T(syscall(SYS_writev, null, kernel, 1));
	T(syscall(SYS_writev, null, kernel, 0));
	T(read(f, buf, 20));
	printf("data %.20s\n", buf);
	close(f);
	close(null);
}

static void section_rwcount(void) {
	int null, f, wr;
	T(null = open("/dev/null", O_RDWR));
	f = tmpfile_with("rw", "0123456789abcdefghij");
	T(wr = open("rw", O_WRONLY));
	T(write(null, buf, (size_t)-1));
	T(read(null, buf, (size_t)-1));
	T(write(null, low, 100));
	T(write(null, low, 0x80000000ul));
	T(write(null, kernel, 0));
	T(read(null, kernel, 0));
	T(read(null, low, 100));
	T(read(f, kernel, 5));
	T(read(wr, kernel, 5));
	T(write(f, kernel, 5));
	T(pread(f, buf, 10, -1));
	T(pread(f, kernel, 10, 0));
	T(pwrite(wr, kernel, 10, 0));
	T(read(f, big, 0x80000000ul));
	T(lseek(f, 0, SEEK_SET));
	T(read(f, buf, (size_t)-1));
	T(lseek(f, 0, SEEK_CUR));
	size_of("rw", f);
	close(wr);
	close(f);
	close(null);
}

static long dents(long nr, int fd, void *p, unsigned long count) {
	return syscall(nr, fd, p, count);
}

// entries counts the records in a getdents or getdents64 buffer: both
// keep the record length at byte 16.
static int entries(const char *p, long n) {
	int count = 0;
	for (long off = 0; off < n; off += *(const unsigned short *)(p + off + 16))
		count++;
	return count;
}

static void section_getdents(void) {
	if (mkdir("d", 0755) != 0 || close(creat("d/a", 0644)) != 0 || close(creat("d/b", 0644)) != 0 || mkdir("d/c", 0755) != 0) {
		perror("d");
		exit(1);
	}
	static const long nrs[] = {SYS_getdents64, SYS_getdents};
	for (int i = 0; i < 2; i++) {
		long nr = nrs[i];
		printf("-- %s\n", i ? "getdents" : "getdents64");
		int d;
		T(d = open("d", O_RDONLY | O_DIRECTORY));
		T(dents(nr, d, buf, 0));
		T(dents(nr, d, buf, 1));
		T(dents(nr, d, buf, 23));
		T(dents(nr, d, buf, 0x80000000ul));
		T(dents(nr, d, buf, 0xffffffffu));
		T(dents(nr, d, buf, 0x1ffffffffull));
		T(dents(nr, d, buf, 24));
		T(dents(nr, d, NULL, sizeof buf));
		T(dents(nr, d, kernel, sizeof buf));
		T(lseek(d, 0, SEEK_SET));
		long n;
		T(n = dents(nr, d, buf, 0x7fffffff));
		printf("entries %d\n", entries(buf, n));
		T(dents(nr, d, buf, 0x7fffffff));
		T(dents(nr, d, buf, 0));
		close(d);
		int f;
		T(f = open("d/a", O_RDONLY));
		T(dents(nr, f, buf, sizeof buf));
		close(f);
		T(dents(nr, 999, buf, sizeof buf));
	}
}

// mapped prints the name /proc/self/maps gives the mapping at p.
static void mapped(void *p) {
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long start = (unsigned long)p;
	while (maps && fgets(line, sizeof line, maps)) {
		if (strtoul(line, NULL, 16) != start)
			continue;
		char *name = strchr(line, '/');
		printf("maps: %s", name ? name : "(no name)\n");
	}
	if (maps)
		fclose(maps);
}

static void link_of(int fd) {
	char path[64], target[256];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof target - 1);
	if (n < 0)
		n = 0;
	target[n] = 0;
	printf("fd link: %s\n", target);
}

static void section_memfd(void) {
	int m, g, fw, nos, ne, ex;
	char *p, *q;
	T(m = memfd_create("test", MFD_ALLOW_SEALING_));
	link_of(m);
	T(fcntl(m, F_GET_SEALS_));
	T(write(m, "0123456789", 10));
	T(mapping(p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0)));
	mapped(p);
	T(fcntl(m, F_ADD_SEALS_, SEAL_WRITE));
	T(fcntl(m, F_ADD_SEALS_, 0x100));
	T(munmap(p, 4096));
	T(fcntl(m, F_ADD_SEALS_, SEAL_WRITE));
	T(fcntl(m, F_GET_SEALS_));
	T(write(m, "x", 1));
	T(pwrite(m, "x", 1, 0));
	struct iovec v = {"x", 1};
	T(syscall(SYS_pwritev, m, &v, 1, 0, 0));
	T(write(m, "", 0));
	T(mapping(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0)));
	T(mapping(q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, m, 0)));
	printf("shared read: %.10s\n", q);
	munmap(q, 4096);
	T(mapping(q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, m, 0)));
	q[0] = 'P';
	munmap(q, 4096);
	T(ftruncate(m, 20));
	T(ftruncate(m, 5));
	T(pread(m, buf, 10, 0));

	T(g = memfd_create("grow", MFD_ALLOW_SEALING_));
	T(ftruncate(g, 100));
	T(fcntl(g, F_ADD_SEALS_, SEAL_SHRINK | SEAL_GROW));
	T(ftruncate(g, 50));
	T(ftruncate(g, 200));
	T(ftruncate(g, 100));
	T(pwrite(g, "0123456789", 10, 90));
	T(pwrite(g, "0123456789", 10, 95));
	T(pwrite(g, "0123456789", 10, 100));
	T(fallocate(g, 0, 0, 200));
	T(fallocate(g, FALLOC_FL_KEEP_SIZE, 0, 200));
	T(fallocate(g, 0, 0, 50));
	size_of("grow", g);
	T(fcntl(g, F_GET_SEALS_));
	T(fcntl(g, F_ADD_SEALS_, SEAL_SEAL));
	T(fcntl(g, F_ADD_SEALS_, SEAL_WRITE));
	T(fcntl(g, F_ADD_SEALS_, 0));
	T(fcntl(g, F_GET_SEALS_));

	// F_SEAL_FUTURE_WRITE leaves existing mappings writable.
	T(fw = memfd_create("future", MFD_ALLOW_SEALING_));
	T(ftruncate(fw, 4096));
	T(mapping(p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fw, 0)));
	T(fcntl(fw, F_ADD_SEALS_, SEAL_FUTURE_WRITE));
	T(write(fw, "x", 1));
	p[0] = 'M';
	T(pread(fw, buf, 1, 0));
	printf("through the mapping: %c\n", buf[0]);
	T(mapping(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fw, 0)));
	T(ftruncate(fw, 8192));
	munmap(p, 4096);

	T(nos = memfd_create("", 0));
	link_of(nos);
	T(fcntl(nos, F_GET_SEALS_));
	T(fcntl(nos, F_ADD_SEALS_, SEAL_WRITE));
	T(write(nos, "ok", 2));
	T(mapping(p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, nos, 0)));
	mapped(p);
	munmap(p, 4096);

	T(ne = memfd_create("noexec", MFD_NOEXEC_SEAL_));
	T(fcntl(ne, F_GET_SEALS_));
	T(fchmod(ne, 0755));
	T(fchmod(ne, 0600));
	T(ex = memfd_create("exec", MFD_ALLOW_SEALING_));
	T(fcntl(ex, F_ADD_SEALS_, SEAL_EXEC));
	T(fcntl(ex, F_GET_SEALS_));
	T(write(ex, "x", 1));

	int pfd[2], null;
	T(pipe(pfd));
	T(null = open("/dev/null", O_RDWR));
	T(fcntl(pfd[0], F_GET_SEALS_));
	T(fcntl(pfd[0], F_ADD_SEALS_, SEAL_WRITE));
	T(fcntl(pfd[1], F_ADD_SEALS_, SEAL_WRITE));
	T(fcntl(pfd[1], F_ADD_SEALS_, 0x100));
	T(fcntl(null, F_ADD_SEALS_, SEAL_WRITE));
	T(fcntl(999, F_GET_SEALS_));
	close(pfd[0]);
	close(pfd[1]);
	close(null);
}

static void ready(int fd) {
	struct pollfd p = {fd, POLLIN | POLLOUT, 0};
	poll(&p, 1, 0);
	printf("ready:%s%s\n", p.revents & POLLIN ? " in" : "", p.revents & POLLOUT ? " out" : "");
}

static void section_pipesz(void) {
	int p[2], n;
	T(pipe2(p, O_NONBLOCK));
	T(fcntl(p[0], F_GETPIPE_SZ_));
	T(fcntl(p[1], F_SETPIPE_SZ_, 0));
	T(fcntl(p[0], F_GETPIPE_SZ_));
	ready(p[1]);
	T(write(p[1], big, sizeof big));
	T(write(p[1], big, 1));
	ready(p[1]);
	ioctl(p[0], FIONREAD, &n);
	printf("queued %d\n", n);
	T(fcntl(p[1], F_SETPIPE_SZ_, 5000));
	ready(p[1]);
	T(write(p[1], big, 1000));
	ready(p[1]);
	T(write(p[1], buf, 3096));
	T(fcntl(p[1], F_SETPIPE_SZ_, 4096));
	T(read(p[0], buf, sizeof buf));
	T(fcntl(p[1], F_SETPIPE_SZ_, 4096));
	T(write(p[1], big, 100));
	T(fcntl(p[1], F_SETPIPE_SZ_, 1));
	T(read(p[0], buf, sizeof buf));
	T(fcntl(p[1], F_SETPIPE_SZ_, -1));
	T(fcntl(p[1], F_SETPIPE_SZ_, (1u << 31) + 1));
	T(fcntl(p[1], F_SETPIPE_SZ_, 1 << 20));
	T(fcntl(p[1], F_SETPIPE_SZ_, 12345));
	T(fcntl(p[1], F_GETPIPE_SZ_));
	T(fcntl(p[1], 9999));
	int null, f;
	T(null = open("/dev/null", O_RDWR));
	T(fcntl(null, F_GETPIPE_SZ_));
	T(fcntl(null, F_SETPIPE_SZ_, 4096));
	T(f = open(".", O_RDONLY));
	T(fcntl(f, F_GETPIPE_SZ_));
	T(fcntl(999, F_GETPIPE_SZ_));
	close(f);
	close(null);
	close(p[0]);
	close(p[1]);

	// A writer blocks on a small pipe until the reader makes room.
	T(pipe(p));
	T(fcntl(p[1], F_SETPIPE_SZ_, 4096));
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		ssize_t w = write(p[1], buf, sizeof buf);
		_exit(w == sizeof buf ? 0 : 1);
	}
	close(p[1]);
	long total = 0;
	ssize_t got;
	while ((got = read(p[0], big, sizeof big)) > 0)
		total += got;
	int status;
	waitpid(pid, &status, 0);
	printf("read %ld, writer status %d\n", total, status);
	close(p[0]);

	// Without CAP_SYS_RESOURCE a pipe may not grow past pipe-max-size.
	T(pipe(p));
	pid = fork();
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		T(fcntl(p[1], F_SETPIPE_SZ_, (1 << 20) + 1));
		T(fcntl(p[1], F_SETPIPE_SZ_, 1 << 20));
		T(fcntl(p[1], F_SETPIPE_SZ_, 4096));
		_exit(0);
	}
	waitpid(pid, &status, 0);
	printf("child status %d\n", status);
	close(p[0]);
	close(p[1]);

	if (mkfifo("fifo", 0600) != 0) {
		perror("mkfifo");
		exit(1);
	}
	int fifo;
	T(fifo = open("fifo", O_RDWR | O_NONBLOCK));
	T(fcntl(fifo, F_GETPIPE_SZ_));
	T(fcntl(fifo, F_SETPIPE_SZ_, 4096));
	T(write(fifo, buf, sizeof buf));
	close(fifo);
}

static void section_readahead(void) {
	int f = tmpfile_with("ra", "some data"), wr, path, d, p[2], null, m;
	T(readahead(f, 0, 10));
	T(readahead(f, 0, 1 << 30));
	T(readahead(f, 1 << 20, 10));
	T(readahead(f, 0, -1));
	T(wr = open("ra", O_WRONLY));
	T(readahead(wr, 0, 10));
	T(path = open("ra", O_PATH));
	T(readahead(path, 0, 10));
	T(d = open(".", O_RDONLY));
	T(readahead(d, 0, 10));
	T(pipe(p));
	T(readahead(p[0], 0, 10));
	T(readahead(p[1], 0, 10));
	T(null = open("/dev/null", O_RDONLY));
	T(readahead(null, 0, 10));
	T(m = memfd_create("ra", 0));
	T(readahead(m, 0, 10));
	T(readahead(999, 0, 10));
	T(readahead(-1, 0, 10));
}

static void cleanup(void) {
	static const char *files[] = {"iov", "rw", "d/a", "d/b", "fifo", "ra"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(files[i]);
	rmdir("d/c");
	rmdir("d");
}

int main(int argc, char **argv) {
	static const struct {
		const char *name;
		void (*run)(void);
	} sections[] = {
		{"iov", section_iov}, {"rwcount", section_rwcount}, {"getdents", section_getdents},
		{"memfd", section_memfd}, {"pipesz", section_pipesz}, {"readahead", section_readahead},
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	memset(buf, 'b', sizeof buf);
	char dir[] = "/tmp/kvmbox-iofds-XXXXXX";
	if (!mkdtemp(dir) || chdir(dir) != 0) {
		perror("mkdtemp");
		return 1;
	}
	for (int i = 1; i < argc; i++)
		for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++)
			if (!strcmp(argv[i], sections[j].name)) {
				printf("== %s\n", argv[i]);
				sections[j].run();
			}
	cleanup();
	if (chdir("/") != 0 || rmdir(dir) != 0)
		return 1;
	return 0;
}
