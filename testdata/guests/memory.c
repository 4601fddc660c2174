// Checks that unmapped and write-protected pages are really gone for the
// guest after the kernel changed page-table entries the guest already used
// (page-table coherence under shadow paging). argv[1] picks the case; each
// case touches the page first, changes it, then accesses it again and must
// die with SIGSEGV there.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	char *p = mmap(NULL, 4096 * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return 3;
	memset(p, 0x5a, 4096 * 4);
	volatile char *v = p;
	if (!strcmp(argv[1], "munmap")) {
		munmap(p, 4096 * 4);
		printf("after munmap\n");
		fflush(stdout);
		return v[4096];
	}
	if (!strcmp(argv[1], "mprotect")) {
		mprotect(p, 4096 * 4, PROT_READ);
		printf("read after mprotect=%d\n", v[4096]);
		fflush(stdout);
		v[4096] = 1;
		return 4;
	}
	if (!strcmp(argv[1], "dontneed")) {
		madvise(p, 4096 * 4, MADV_DONTNEED);
		printf("after dontneed=%d\n", v[4096]);
		return 0;
	}
	if (!strcmp(argv[1], "reuse")) {
		// The frame freed by munmap must not stay reachable through the old
		// address even when a new mapping reuses it.
		munmap(p, 4096 * 4);
		char *q = mmap(NULL, 4096 * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("new mapping zeroed=%d same address=%d\n", q[4096] == 0, q == p);
		fflush(stdout);
		if (q != p) return v[4096];
		return 0;
	}
	return 5;
}
