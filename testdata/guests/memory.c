// Checks that unmapped and write-protected pages are really gone for the
// guest after the kernel changed page-table entries the guest already used
// (page-table coherence under shadow paging). argv[1] picks the case; each
// case touches the page first, changes it, then accesses it again and must
// die with SIGSEGV there. With argv[2] "huge" the mapping is 4 MiB, which
// kvmbox maps with 2 MiB pages, and the case changes one page inside one.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	int huge = argc > 2 && !strcmp(argv[2], "huge");
	size_t size = huge ? 4 << 20 : 4096 * 4;
	size_t off = huge ? (2 << 20) + 4096 : 4096; // the page that changes
	size_t len = huge ? 4096 : size;              // how much changes, from off or 0
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return 3;
	memset(p, 0x5a, size);
	volatile char *v = p;
	char *changed = huge ? p + off : p;
	if (!strcmp(argv[1], "munmap")) {
		munmap(changed, len);
		printf("after munmap\n");
		fflush(stdout);
		return v[off];
	}
	if (!strcmp(argv[1], "mprotect")) {
		mprotect(changed, len, PROT_READ);
		printf("read after mprotect=%d\n", v[off]);
		fflush(stdout);
		if (huge) v[off + 4096] = 1; // the neighbour stays writable
		v[off] = 1;
		return 4;
	}
	if (!strcmp(argv[1], "dontneed")) {
		madvise(changed, len, MADV_DONTNEED);
		printf("after dontneed=%d neighbour=%d\n", v[off], v[off - 4096]);
		return 0;
	}
	if (!strcmp(argv[1], "reuse")) {
		// The frame freed by munmap must not stay reachable through the old
		// address even when a new mapping reuses it.
		munmap(p, size);
		char *q = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("new mapping zeroed=%d same address=%d\n", q[off] == 0, q == p);
		fflush(stdout);
		if (q != p) return v[off];
		return 0;
	}
	return 5;
}
