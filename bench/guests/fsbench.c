// File-system workloads for the benchmark harness. Each prints the
// nanoseconds its timed part took, per operation:
//   fsbench write DIR MIB   write MIB MiB to DIR/data in 1 MiB writes
//   fsbench read DIR        read DIR/data back in 1 MiB reads
//   fsbench open DIR N      N times open+fstat+close of DIR/data
//   fsbench clock DIR N     N calls of clock_gettime(CLOCK_MONOTONIC)
//   fsbench touch DIR MIB   map MIB MiB of fresh memory and write one byte per page
//   fsbench rwback DIR MIB  write MIB MiB to DIR/data (untimed), then read it back
//   fsbench dents DIR N     create N empty files (untimed), then list them with getdents64
//   fsbench pipe DIR MIB    MIB MiB written to a pipe and read back by the
//                           same process, 64 KiB at a time; per MiB
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

static char buf[1 << 20];

// writeFile writes mib MiB to path in 1 MiB writes and returns ns per MiB.
static long long writeFile(const char *path, long mib) {
	memset(buf, 'x', sizeof buf);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) die("open");
	long long t = now();
	for (long i = 0; i < mib; i++)
		if (write(fd, buf, sizeof buf) != sizeof buf) die("write");
	long long ns = (now() - t) / mib;
	close(fd);
	return ns;
}

// readFile reads path in 1 MiB reads and returns ns per read.
static long long readFile(const char *path) {
	int fd = open(path, O_RDONLY);
	if (fd < 0) die("open");
	long n = 0;
	ssize_t got;
	long long t = now();
	while ((got = read(fd, buf, sizeof buf)) > 0) n++;
	if (got < 0) die("read");
	long long ns = (now() - t) / (n ? n : 1);
	close(fd);
	return ns;
}

// makeDents creates n empty files in dir/dents.
static void makeDents(const char *dir, long n) {
	char path[4096];
	snprintf(path, sizeof path, "%s/dents", dir);
	if (mkdir(path, 0755)) die("mkdir");
	for (long i = 0; i < n; i++) {
		char f[4200];
		snprintf(f, sizeof f, "%s/entry-%06ld", path, i);
		int fd = open(f, O_WRONLY | O_CREAT, 0644);
		if (fd < 0) die("create");
		close(fd);
	}
}

// listDents lists dir/dents with getdents64 and returns ns per entry.
static long long listDents(const char *dir) {
	char path[4096];
	snprintf(path, sizeof path, "%s/dents", dir);
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0) die("open dir");
	static char dbuf[32768];
	long entries = 0;
	long long t = now();
	for (;;) {
		long n = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf);
		if (n < 0) die("getdents64");
		if (n == 0) break;
		for (long off = 0; off < n; entries++) off += ((struct dirent64 *)(dbuf + off))->d_reclen;
	}
	close(fd);
	return (now() - t) / (entries ? entries : 1);
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	char path[4096];
	const char *op = argv[1], *dir = argv[2];
	snprintf(path, sizeof path, "%s/data", dir);
	if (!strcmp(op, "write") || !strcmp(op, "rwback") || !strcmp(op, "dents")) mkdir(dir, 0755);
	if (!strcmp(op, "write")) {
		printf("%lld\n", writeFile(path, atol(argv[3])));
	} else if (!strcmp(op, "read")) {
		printf("%lld\n", readFile(path));
	} else if (!strcmp(op, "rwback")) {
		writeFile(path, atol(argv[3]));
		printf("%lld\n", readFile(path));
	} else if (!strcmp(op, "open")) {
		long n = atol(argv[3]);
		struct stat st;
		long long t = now();
		for (long i = 0; i < n; i++) {
			int fd = open(path, O_RDONLY);
			if (fd < 0 || fstat(fd, &st)) die("open/fstat");
			close(fd);
		}
		printf("%lld\n", (now() - t) / n);
	} else if (!strcmp(op, "dents")) {
		makeDents(dir, atol(argv[3]));
		printf("%lld\n", listDents(dir));
	} else if (!strcmp(op, "touch")) {
		long pages = atol(argv[3]) * 256;
		char *m = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) die("mmap");
		long long t = now();
		for (long i = 0; i < pages; i++) m[i * 4096] = 1;
		printf("%lld\n", (now() - t) / pages);
	} else if (!strcmp(op, "clock")) {
		long n = atol(argv[3]);
		struct timespec ts;
		long long t = now();
		for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("%lld\n", (now() - t) / n);
	} else if (!strcmp(op, "pipe")) {
		long mib = atol(argv[3]);
		enum { piece = 64 << 10 };
		int p[2];
		if (pipe2(p, O_NONBLOCK)) die("pipe2");
		memset(buf, 'x', piece);
		long long t = now();
		for (long i = 0; i < mib * ((1 << 20) / piece); i++) {
			for (ssize_t done = 0; done < piece;) {
				ssize_t w = write(p[1], buf + done, piece - done);
				if (w <= 0) die("write pipe");
				if (read(p[0], buf + piece, w) != w) die("read pipe");
				done += w;
			}
		}
		printf("%lld\n", (now() - t) / mib);
	} else {
		return 2;
	}
	return 0;
}
