// Dies the way argv[1] says: segv, ill, fpe, trap, spin, abort-style exits.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *how = argv[1];
	fflush(stdout);
	if (!strcmp(how, "segv")) { volatile int *p = (int *)16; return *p; }
	if (!strcmp(how, "ill")) __asm__ volatile("ud2");
	if (!strcmp(how, "fpe")) { volatile int z = 0; return 10 / z; }
	if (!strcmp(how, "trap")) __asm__ volatile("int3");
	if (!strcmp(how, "spin")) for (;;) __asm__ volatile("");
	if (!strcmp(how, "exit")) exit(42);
	return 3;
}
