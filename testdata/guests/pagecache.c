// File mappings that the page cache serves: MAP_PRIVATE copy-on-write
// between mappings, mprotect, fork and the file itself, mappings and execs
// of a file rewritten in place (same size, so that only the contents
// change), and mappings at offsets and past the end of the file. Then
// MAP_SHARED mappings of a file in DIR: coherent with read, write,
// ftruncate, other mappings and a child's, and written back by msync,
// munmap and exit (DIR/shared is left for the caller to compare).
//
// Usage: pagecache DIR (DIR writable); pagecache mark (prints a string of
// its own); pagecache spawn N (starts N copies of itself that hold until
// standard input ends, says "ready" once all run, and waits for them);
// pagecache sum FILE (maps FILE privately and adds up its bytes);
// pagecache alloc MIB (maps and writes MIB MiB of anonymous memory).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

#define PAGE 4096

static const char marker[] = "PAGECACHE-MARK-1";

static void check(int ok, const char *what) {
	if (!ok) {
		printf("%s: %s\n", what, ename(errno));
		exit(1);
	}
}

static char *map(int fd, size_t len, int prot, int flags, off_t off) {
	char *p = mmap(NULL, len, prot, flags, fd, off);
	check(p != MAP_FAILED, "mmap");
	return p;
}

// copyFile copies from to to, executable.
static void copyFile(const char *from, const char *to) {
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	check(in >= 0 && out >= 0, "open copy");
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		check(write(out, buf, n) == n, "write copy");
	close(in);
	close(out);
}

// run executes path with arg and waits for it.
static void run(const char *path, const char *arg) {
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl(path, path, arg, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("%s: exit %d\n", arg, WEXITSTATUS(status));
}

// remark rewrites the last character of the marker in the program at path.
static void remark(const char *path, char c) {
	int fd = open(path, O_RDWR);
	check(fd >= 0, "open program");
	struct stat st;
	check(fstat(fd, &st) == 0, "fstat program");
	char *buf = malloc(st.st_size);
	check(pread(fd, buf, st.st_size, 0) == st.st_size, "read program");
	char prefix[32];
	strcpy(prefix, "PAGECACHE-");
	strcat(prefix, "MARK-");
	char *at = memmem(buf, st.st_size, prefix, strlen(prefix));
	check(at != NULL, "find marker");
	check(pwrite(fd, &c, 1, at - buf + strlen(prefix)) == 1, "write marker");
	free(buf);
	close(fd);
}

static void cow(const char *dir) {
	char path[4096];
	snprintf(path, sizeof path, "%s/data", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	check(fd >= 0, "open data");
	char page[PAGE];
	for (int i = 0; i < 3; i++) {
		memset(page, 'A' + i, sizeof page);
		check(write(fd, page, i < 2 ? PAGE : 100) == (i < 2 ? PAGE : 100), "write data");
	}

	char *ro = map(fd, 3 * PAGE, PROT_READ, MAP_PRIVATE, 0);
	printf("read-only: %c %c %c, past the end %d\n", ro[0], ro[PAGE], ro[2 * PAGE], ro[2 * PAGE + 100]);
	char *rw = map(fd, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0);
	rw[0] = 'a';
	rw[2 * PAGE + 200] = 'z';
	char c;
	check(pread(fd, &c, 1, 0) == 1, "pread");
	printf("after a private write: mapping %c, other mapping %c, file %c, tail %c\n", rw[0], ro[0], c, rw[2 * PAGE + 200]);

	check(mprotect(ro, PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect");
	ro[0] = 'x';
	char *again = map(fd, PAGE, PROT_READ, MAP_PRIVATE, 0);
	check(pread(fd, &c, 1, 0) == 1, "pread");
	printf("after mprotect and a write: %c, new mapping %c, file %c\n", ro[0], again[0], c);

	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		rw[PAGE] = 'c';
		ro[0] = 'y';
		check(mprotect(again, PAGE, PROT_READ | PROT_WRITE) == 0, "child mprotect");
		again[0] = 'w';
		_exit(0);
	}
	check(waitpid(pid, NULL, 0) == pid, "waitpid");
	printf("after the child's writes: %c %c %c\n", rw[PAGE], ro[0], again[0]);

	char *second = map(fd, PAGE, PROT_READ, MAP_PRIVATE, PAGE);
	printf("at an offset: %c\n", second[0]);
	char *fixed = mmap(again, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, 2 * PAGE);
	check(fixed == again, "mmap fixed");
	printf("fixed over another mapping: %c %d\n", fixed[0], fixed[100]);
	char *past = map(fd, PAGE, PROT_READ, MAP_PRIVATE, 16 * PAGE);
	check(munmap(past, PAGE) == 0, "munmap past the end");

	// The same size, other contents: timestamps alone may not tell.
	check(pwrite(fd, "Q", 1, 0) == 1, "pwrite");
	char *changed = map(fd, PAGE, PROT_READ, MAP_PRIVATE, 0);
	printf("after pwrite: %c\n", changed[0]);
	check(ftruncate(fd, 0) == 0 && ftruncate(fd, PAGE) == 0, "ftruncate");
	char *truncated = map(fd, PAGE, PROT_READ, MAP_PRIVATE, 0);
	printf("after ftruncate: %d\n", truncated[0]);
	memset(page, 'R', sizeof page);
	int out = open(path, O_WRONLY | O_TRUNC);
	check(out >= 0 && write(out, page, PAGE) == PAGE, "rewrite");
	close(out);
	char *rewritten = map(fd, PAGE, PROT_READ, MAP_PRIVATE, 0);
	printf("after O_TRUNC and write: %c\n", rewritten[0]);
	close(fd);

	char prog[4096];
	snprintf(prog, sizeof prog, "%s/prog", dir);
	copyFile("/proc/self/exe", prog);
	run(prog, "mark");
	run(prog, "mark");
	remark(prog, '2');
	run(prog, "mark");
	remark(prog, '3');
	run(prog, "mark");
}

// readAt returns the byte of path at off, read through a new descriptor.
static int readAt(const char *path, off_t off) {
	int fd = open(path, O_RDONLY);
	check(fd >= 0, "open to read");
	unsigned char c = 0;
	ssize_t n = pread(fd, &c, 1, off);
	close(fd);
	return n == 1 ? c : -1;
}

static void shared(const char *dir) {
	char path[4096];
	snprintf(path, sizeof path, "%s/shared", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	check(fd >= 0, "open shared");
	char buf[2 * PAGE + 100];
	memset(buf, 'S', sizeof buf);
	check(write(fd, buf, sizeof buf) == sizeof buf, "write shared");

	char *p = map(fd, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	p[0] = 'm';
	char c;
	check(pread(fd, &c, 1, 0) == 1, "pread");
	printf("shared: a store, then read: %c\n", c);
	check(pwrite(fd, "w", 1, 1) == 1, "pwrite");
	printf("shared: pwrite, then a load: %c\n", p[1]);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		p[2] = 'c';
		_exit(0);
	}
	check(waitpid(pid, NULL, 0) == pid, "waitpid");
	printf("shared: the child's store: %c, read %c\n", p[2], readAt(path, 2));
	char *q = map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	q[3] = 'q';
	printf("shared: another mapping: %c %c\n", q[0], p[3]);
	p[2 * PAGE + 50] = 'e';
	p[2 * PAGE + 200] = 'x';
	check(msync(p, 3 * PAGE, MS_SYNC) == 0, "msync");
	printf("shared: after msync: %c %c, size %ld\n", readAt(path, 3), readAt(path, 2 * PAGE + 50), (long)lseek(fd, 0, SEEK_END));
	check(ftruncate(fd, 2 * PAGE) == 0 && ftruncate(fd, 2 * PAGE + 100) == 0, "ftruncate");
	printf("shared: cut and extended: %d\n", readAt(path, 2 * PAGE + 50));
	char *priv = map(fd, PAGE, PROT_READ, MAP_PRIVATE, 0);
	printf("shared: a private mapping: %.4s\n", priv);
	check(munmap(priv, PAGE) == 0 && munmap(q, PAGE) == 0, "munmap");
	p[4] = 'u';
	check(munmap(p, 3 * PAGE) == 0, "munmap shared");
	printf("shared: after munmap: %c\n", readAt(path, 4));

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char *m = map(fd, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
		m[5] = 'x';
		_exit(0);
	}
	check(waitpid(pid, NULL, 0) == pid, "waitpid");
	printf("shared: after the child's exit: %c\n", readAt(path, 5));
	close(fd);
}

// spawn starts n copies of this program that hold until standard input
// ends, and waits for them.
static void spawn(int n) {
	int ready[2];
	check(pipe(ready) == 0, "pipe");
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		check(pid >= 0, "fork");
		if (pid == 0) {
			close(ready[0]);
			char fd[16];
			snprintf(fd, sizeof fd, "%d", ready[1]);
			execl("/proc/self/exe", "pagecache", "hold", fd, (char *)NULL);
			_exit(127);
		}
	}
	close(ready[1]);
	char c;
	for (int i = 0; i < n; i++)
		check(read(ready[0], &c, 1) == 1, "ready");
	printf("ready\n");
	fflush(stdout);
	while (wait(NULL) > 0)
		;
	printf("done\n");
}

int main(int argc, char **argv) {
	if (argc == 2 && strcmp(argv[1], "mark") == 0) {
		printf("%s\n", marker);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "spawn") == 0) {
		spawn(atoi(argv[2]));
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "sum") == 0) {
		int fd = open(argv[2], O_RDONLY);
		check(fd >= 0, "open");
		struct stat st;
		check(fstat(fd, &st) == 0, "fstat");
		unsigned char *p = (unsigned char *)map(fd, st.st_size, PROT_READ, MAP_PRIVATE, 0);
		unsigned long sum = 0;
		for (off_t i = 0; i < st.st_size; i++)
			sum += p[i];
		printf("sum %lu\n", sum);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "alloc") == 0) {
		size_t len = (size_t)atoi(argv[2]) << 20;
		char *p = map(-1, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
		memset(p, 1, len);
		printf("allocated %s MiB\n", argv[2]);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "hold") == 0) {
		check(write(atoi(argv[2]), "r", 1) == 1, "write ready");
		close(atoi(argv[2]));
		char buf[64];
		while (read(0, buf, sizeof buf) > 0)
			;
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: pagecache DIR | mark | spawn N\n");
		return 2;
	}
	cow(argv[1]);
	shared(argv[1]);
	return 0;
}
