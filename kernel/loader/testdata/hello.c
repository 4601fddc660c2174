#include <stdio.h>

int initialized = 42;
const char greeting[] = "hello from kvmbox";
char zeroed[100000];

int main(int argc, char **argv) {
	zeroed[argc] = (char)initialized;
	printf("%s: %s %d\n", argv[0], greeting, zeroed[argc]);
	return 0;
}
