// Reads the clocks many times (through the vDSO where there is one) and
// reports: whether each stayed monotonic, and CLOCK_REALTIME in ns on the
// last line so the test can compare it with the host's clock.
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void) {
	int ok = 1;
	clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW};
	for (int c = 0; c < 3; c++) {
		struct timespec prev, cur;
		clock_gettime(clocks[c], &prev);
		for (int i = 0; i < 200000; i++) {
			clock_gettime(clocks[c], &cur);
			if (ns(cur) < ns(prev)) ok = 0;
			prev = cur;
		}
	}
	printf("monotonic=%d\n", ok);
	struct timespec rt;
	struct timeval tv;
	clock_gettime(CLOCK_REALTIME, &rt);
	gettimeofday(&tv, NULL);
	long long gap = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL - ns(rt);
	printf("gettimeofday agrees=%d\n", gap > -1000 && gap < 1000000000LL); // it truncates to microseconds
	printf("time agrees=%d\n", time(NULL) - rt.tv_sec <= 1);
	printf("%lld\n", ns(rt));
	return 0;
}
