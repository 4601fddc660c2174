#define _GNU_SOURCE
// Exercises what a static libc program needs: arguments, environment,
// stdio, malloc (brk and mmap), time, uname, random, limits.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp) {
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
	for (char **e = envp; *e; e++) printf("env %s\n", *e);

	size_t total = 0;
	for (int i = 0; i < 64; i++) {
		size_t n = (size_t)1 << (i % 22);
		char *p = malloc(n);
		if (!p) { printf("malloc failed\n"); return 1; }
		memset(p, i, n);
		total += p[n - 1] == (char)i;
		free(p);
	}
	printf("malloc checks=%zu\n", total);

	char *big = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED) { perror("mmap"); return 1; }
	for (size_t off = 0; off < (64 << 20); off += 4096) big[off] = 1;
	big = mremap(big, 64 << 20, 128 << 20, MREMAP_MAYMOVE);
	if (big == MAP_FAILED) { perror("mremap"); return 1; }
	printf("mremap kept data=%d\n", big[4096 * 100]);
	if (munmap(big, 128 << 20)) { perror("munmap"); return 1; }

	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	struct timespec nap = {0, 2000000};
	nanosleep(&nap, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long us = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
	printf("slept at least 2ms=%d\n", us >= 2000);
	printf("time sane=%d\n", time(NULL) > 1700000000);

	struct utsname u;
	uname(&u);
	printf("sysname=%s machine=%s\n", u.sysname, u.machine);

	unsigned char rnd[32];
	printf("getrandom=%zd\n", getrandom(rnd, sizeof rnd, 0));

	struct rlimit rl;
	printf("getrlimit=%d\n", getrlimit(RLIMIT_NOFILE, &rl));

	errno = 0;
	printf("bad fd write=%zd errno=%d\n", write(99, "x", 1), errno);
	errno = 0;
	printf("bad buffer write=%zd errno=%d\n", write(1, (void *)8, 1), errno);

	char line[256];
	size_t lines = 0, bytes = 0;
	while (fgets(line, sizeof line, stdin)) { lines++; bytes += strlen(line); }
	printf("stdin lines=%zu bytes=%zu\n", lines, bytes);
	fprintf(stderr, "to stderr\n");
	return argc > 1 ? atoi(argv[1]) : 0;
}
