// MAP_SHARED of memfd and tmpfs files: the mapping, a second mapping and
// read/write on the file all see the same bytes; msync; the errors Linux
// gives. Works in a directory it makes under /tmp.
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
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	}
	return "other";
}

static void check(const char *name, int fd) {
	ftruncate(fd, 3 * 4096);
	char *a = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *b = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
	if (a == MAP_FAILED || b == MAP_FAILED) {
		printf("%s: mmap failed: %s\n", name, err());
		return;
	}
	strcpy(a + 4096, "through the mapping");
	char buf[32] = {0};
	pread(fd, buf, 19, 4096);
	printf("%s: read sees mapping write: %s\n", name, buf);
	printf("%s: second mapping sees it: %.19s\n", name, b);
	pwrite(fd, "by pwrite", 9, 2 * 4096 + 10);
	printf("%s: mapping sees pwrite: %.9s\n", name, a + 2 * 4096 + 10);
	printf("%s: msync = %d\n", name, msync(a, 3 * 4096, MS_SYNC));
	munmap(a, 3 * 4096);
	memset(buf, 0, sizeof buf);
	pread(fd, buf, 19, 4096);
	printf("%s: data outlives the mapping: %s\n", name, buf);
	char *c = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
	printf("%s: a new mapping sees it: %.19s\n", name, c);
	ftruncate(fd, 4096);
	ftruncate(fd, 2 * 4096);
	printf("%s: truncated and grown back reads zero: %d\n", name, c[0] == 0);
	munmap(c, 4096);
	munmap(b, 4096);
}

int main(void) {
	char dir[] = "/tmp/mmapshared-XXXXXX";
	if (!mkdtemp(dir) || chdir(dir)) return 1;
	check("memfd", memfd_create("shared", 0));
	int fd = open("file", O_RDWR | O_CREAT, 0644);
	check("tmpfs", fd);

	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("msync bad flags: %s\n", msync(p, 4096, MS_SYNC | MS_ASYNC) ? err() : "ok");
	printf("msync unaligned: %s\n", msync(p + 1, 4096, MS_SYNC) ? err() : "ok");
	munmap(p, 4096);
	printf("msync unmapped: %s\n", msync(p, 4096, MS_SYNC) ? err() : "ok");
	int ro = open("file", O_RDONLY);
	printf("shared writable on read-only fd: %s\n",
	       mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED ? err() : "ok");

	unlink("file");
	chdir("/");
	rmdir(dir);
	return 0;
}
