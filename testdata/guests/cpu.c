// Checks that the CPU features libc sees are usable: glibc picks its AVX2 or
// EVEX string routines from CPUID, which faults if XCR0 or CR4 disagree.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((target("avx2"))) static unsigned avx2_sum(const unsigned *v, int n) {
	unsigned s = 0;
	for (int i = 0; i < n; i++) s += v[i] * 3u;
	return s;
}

int main(void) {
	__builtin_cpu_init();
	int avx2 = __builtin_cpu_supports("avx2");
	size_t n = 1 << 20;
	char *a = malloc(n + 64), *b = malloc(n + 64);
	for (size_t i = 0; i < n; i++) a[i] = (char)('a' + i % 26);
	a[n] = 0;
	memcpy(b, a, n + 1);
	unsigned long sum = strlen(b) + (memcmp(a, b, n) == 0) + (size_t)((char *)memchr(a, 'z', n) - a);
	sum += (size_t)(strrchr(b, 'q') - b);
	unsigned v[1024];
	for (int i = 0; i < 1024; i++) v[i] = (unsigned)i;
	if (avx2) sum += avx2_sum(v, 1024);
	else sum += 1571328;
	printf("string routines and vector code agree: %lu\n", sum);
	return 0;
}
