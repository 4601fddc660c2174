// File-backed mmap: private and read-only shared mappings of a regular file
// at offsets, past the end of the file, a short mapping's last page, the
// way ld.so maps a library (a reservation, MAP_FIXED overlays from other
// offsets, mprotect), and the errors Linux gives. Works in
// a directory it makes under /tmp.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *err(void) {
	switch (errno) {
	case EACCES: return "EACCES";
	case EBADF: return "EBADF";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case EOVERFLOW: return "EOVERFLOW";
	}
	return "other";
}

#define TRY(label, expr)                                                   \
	do {                                                                   \
		void *p_ = (expr);                                                 \
		if (p_ == MAP_FAILED) printf("%s: %s\n", label, err());           \
		else { printf("%s: ok\n", label); munmap(p_, 4096); }             \
	} while (0)

int main(void) {
	char dir[] = "/tmp/mmapfile-XXXXXX";
	if (!mkdtemp(dir) || chdir(dir)) return 1;
	int fd = open("data", O_RDWR | O_CREAT, 0644);
	char page[4096];
	for (int i = 0; i < 3; i++) {
		memset(page, 'a' + i, sizeof page);
		write(fd, page, sizeof page);
	}
	write(fd, "tail", 4);

	char *p = mmap(NULL, 4 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("private read: %c %c %c %.4s zero-after-eof=%d\n", p[0], p[4096], p[8192], p + 12288, p[12292] == 0);
	munmap(p, 4 * 4096);

	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096);
	p[0] = 'Z';
	char back;
	pread(fd, &back, 1, 4096);
	printf("private write stays private: mapping=%c file=%c\n", p[0], back);
	munmap(p, 4096);

	p = mmap(NULL, 100, PROT_READ, MAP_PRIVATE, fd, 4096);
	printf("short mapping, rest of its page: %c\n", p[4000]);
	munmap(p, 100);

	p = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_DENYWRITE, fd, 0);
	char *q = mmap(p + 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 8192);
	q[1] = 'Y';
	int prot = mprotect(p + 4096, 4096, PROT_READ);
	printf("ld.so pattern: %c %c%c %c at-place=%d mprotect=%d\n", p[0], p[4096], p[4097], p[8192], q == p + 4096, prot);
	munmap(p, 3 * 4096);

	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 8192);
	printf("shared read-only: %c\n", p[100]);
	munmap(p, 4096);

	p = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	printf("exec mapping: %s\n", p == MAP_FAILED ? err() : "ok");

	int wr = open("data", O_WRONLY);
	int rd = open("data", O_RDONLY);
	int fds[2];
	pipe(fds);
	TRY("write-only file", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, wr, 0));
	TRY("shared writable on read-only fd", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rd, 0));
	TRY("private writable on read-only fd", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, rd, 0));
	TRY("bad fd", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 99, 0));
	TRY("pipe", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fds[0], 0));
	TRY("directory", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, open(".", O_RDONLY), 0));
	TRY("unaligned offset", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100));
	TRY("zero length", mmap(NULL, 0, PROT_READ, MAP_PRIVATE, fd, 0));

	unlink("data");
	chdir("/");
	rmdir(dir);
	return 0;
}
