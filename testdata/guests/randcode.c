// A hostile guest: jumps into random bytes (seeded by argv[1]). Whatever the
// bytes do, only the guest may suffer.
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
	uint64_t s = argc > 1 ? strtoull(argv[1], 0, 10) | 1 : 1;
	size_t n = 1 << 16;
	unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		p[i] = (unsigned char)s;
	}
	((void (*)(void))p)();
	return 0;
}
