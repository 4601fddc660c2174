// pause: a parent and its child each spin in user code and write one byte
// ("p" or "c") per round, so that whoever reads their output sees whether
// they run.
#include <unistd.h>

static void spin(void) {
	for (volatile long i = 0; i < 200000; i++) {
	}
}

int main(void) {
	const char *mark = fork() == 0 ? "c" : "p";
	for (;;) {
		write(1, mark, 1);
		spin();
	}
}
