// futex exercises futex(2), get_robust_list and set_robust_list from a
// single thread: the calls that return without another thread to wake
// them, with their errors. It prints each call with its result or errno
// name, and the futex words it changes, and nothing that differs between
// runs (no addresses or times), so that a native run and a sandboxed one
// compare equal. With the argument "forever" it waits on a futex nobody
// wakes instead.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// linux/futex.h, which musl's headers lack.
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAKE_OP 5
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu
#define FUTEX_OP(op, oparg, cmp, cmparg) \
	((((op) & 0xfu) << 28) | (((cmp) & 0xfu) << 24) | (((oparg) & 0xfffu) << 12) | ((cmparg) & 0xfffu))
#define FUTEX_OP_SET 0
#define FUTEX_OP_ADD 1
#define FUTEX_OP_OR 2
#define FUTEX_OP_ANDN 3
#define FUTEX_OP_XOR 4
#define FUTEX_OP_OPARG_SHIFT 8
#define FUTEX_OP_CMP_EQ 0
#define FUTEX_OP_CMP_NE 1
#define FUTEX_OP_CMP_LT 2
#define FUTEX_OP_CMP_LE 3
#define FUTEX_OP_CMP_GT 4
#define FUTEX_OP_CMP_GE 5

static const char *ename(int e) {
	switch (e) {
	case EAGAIN: return "EAGAIN";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case ESRCH: return "ESRCH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EINTR: return "EINTR";
	case EPERM: return "EPERM";
	}
	return "other";
}

static long futex(void *uaddr, int op, uint32_t val, const void *timeout, void *uaddr2, uint32_t val3) {
	return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

static void report(const char *what, long r) {
	if (r < 0)
		printf("%s = -1 %s\n", what, ename(errno));
	else
		printf("%s = %ld\n", what, r);
}

static int64_t now_ns(clockid_t clk) {
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec at(int64_t ns) {
	struct timespec ts = {ns / 1000000000, ns % 1000000000};
	return ts;
}

// timed runs a wait that must time out after about 10 ms, measured on
// the clock its timeout is on (CLOCK_REALTIME may move against
// CLOCK_MONOTONIC, as it does in an emulated machine).
static void timed(const char *what, uint32_t *word, int op, const struct timespec *ts, uint32_t bitset) {
	clockid_t clock = op & FUTEX_CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC;
	int64_t start = now_ns(clock);
	long r = futex(word, op, *word, ts, NULL, bitset);
	int64_t waited = now_ns(clock) - start;
	report(what, r);
	printf("  waited at least 10 ms: %d\n", waited >= 10000000);
}

static uint32_t words[4];

static void wait_calls(char *none, char *ro) {
	uint32_t *w = &words[0];
	*w = 5;
	report("WAIT wrong value", futex(w, FUTEX_WAIT, 6, NULL, NULL, 0));
	report("WAIT_PRIVATE wrong value", futex(w, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 6, NULL, NULL, 0));
	report("WAIT_BITSET wrong value", futex(w, FUTEX_WAIT_BITSET, 0xffffffff, NULL, NULL, 1));
	report("WAIT read-only word, wrong value", futex(ro, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0));

	struct timespec rel = {0, 10000000};
	timed("WAIT 10 ms", w, FUTEX_WAIT, &rel, 0);
	timed("WAIT_PRIVATE 10 ms", w, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, &rel, 0);
	struct timespec zero = {0, 0};
	report("WAIT zero timeout", futex(w, FUTEX_WAIT, 5, &zero, NULL, 0));
	struct timespec mono = at(now_ns(CLOCK_MONOTONIC) + 10000000);
	timed("WAIT_BITSET absolute monotonic", w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, &mono, FUTEX_BITSET_MATCH_ANY);
	struct timespec real = at(now_ns(CLOCK_REALTIME) + 10000000);
	timed("WAIT_BITSET absolute realtime", w, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, &real, 1);
	struct timespec past = {1, 0};
	report("WAIT_BITSET in the past", futex(w, FUTEX_WAIT_BITSET, 5, &past, NULL, FUTEX_BITSET_MATCH_ANY));
	report("WAIT_BITSET realtime in the past", futex(w, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 5, &past, NULL, 1));

	report("WAIT_BITSET bitset 0", futex(w, FUTEX_WAIT_BITSET, 5, NULL, NULL, 0));
	report("WAIT_BITSET bitset 0, bad address", futex(none, FUTEX_WAIT_BITSET, 5, NULL, NULL, 0));
	struct timespec bad = {0, 1000000000};
	report("WAIT nsec 1e9", futex(w, FUTEX_WAIT, 5, &bad, NULL, 0));
	struct timespec negative = {-1, 0};
	report("WAIT negative timeout", futex(w, FUTEX_WAIT, 5, &negative, NULL, 0));
	report("WAIT negative timeout, wrong value", futex(w, FUTEX_WAIT, 6, &negative, NULL, 0));
	report("WAIT timeout unmapped", futex(w, FUTEX_WAIT, 5, none, NULL, 0));
	report("WAIT NULL", futex(NULL, FUTEX_WAIT, 0, NULL, NULL, 0));
	report("WAIT PROT_NONE", futex(none, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0));
	report("WAIT kernel address", futex((void *)0xffffffffff600000, FUTEX_WAIT, 0, NULL, NULL, 0));
	report("WAIT misaligned", futex((char *)w + 2, FUTEX_WAIT, 0, NULL, NULL, 0));
	report("WAIT misaligned PROT_NONE", futex(none + 1, FUTEX_WAIT, 0, NULL, NULL, 0));
	report("WAIT | CLOCK_REALTIME", futex(w, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 5, &rel, NULL, 0));
}

static void wake_calls(char *none) {
	uint32_t *w = &words[0];
	report("WAKE no waiters", futex(w, FUTEX_WAKE, 1, NULL, NULL, 0));
	report("WAKE_PRIVATE no waiters", futex(w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 0x7fffffff, NULL, NULL, 0));
	report("WAKE_BITSET no waiters", futex(w, FUTEX_WAKE_BITSET, 1, NULL, NULL, 3));
	report("WAKE_BITSET bitset 0", futex(w, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0));
	report("WAKE PROT_NONE", futex(none, FUTEX_WAKE, 1, NULL, NULL, 0));
	report("WAKE_PRIVATE PROT_NONE", futex(none, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0));
	report("WAKE_PRIVATE NULL", futex(NULL, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0));
	report("WAKE_PRIVATE kernel address", futex((void *)0xffffffffff600000, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0));
	report("WAKE misaligned", futex((char *)w + 1, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0));
	report("WAKE | CLOCK_REALTIME", futex(w, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0));
	report("unknown op 14", futex(w, 14, 1, NULL, NULL, 0));
	report("unknown flag 0x200", futex(w, FUTEX_WAKE | 0x200, 1, NULL, NULL, 0));
	report("FUTEX_FD", futex(w, 2, 1, NULL, NULL, 0));
}

static void wake_op(const char *what, int flags, uint32_t initial, uint32_t op) {
	uint32_t *w1 = &words[0], *w2 = &words[1];
	*w2 = initial;
	long r = futex(w1, FUTEX_WAKE_OP | flags, 1, (void *)1, w2, op);
	report(what, r);
	printf("  second word %#x\n", *w2);
}

static void wake_op_calls(char *none, char *ro) {
	wake_op("WAKE_OP set, eq", FUTEX_PRIVATE_FLAG, 7, FUTEX_OP(FUTEX_OP_SET, 9, FUTEX_OP_CMP_EQ, 7));
	wake_op("WAKE_OP add, ne", FUTEX_PRIVATE_FLAG, 7, FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_NE, 7));
	wake_op("WAKE_OP add negative, lt", FUTEX_PRIVATE_FLAG, 1, FUTEX_OP(FUTEX_OP_ADD, -2, FUTEX_OP_CMP_LT, 2));
	wake_op("WAKE_OP or, le", FUTEX_PRIVATE_FLAG, 0x10, FUTEX_OP(FUTEX_OP_OR, 0x3, FUTEX_OP_CMP_LE, 0x10));
	wake_op("WAKE_OP andn, gt", FUTEX_PRIVATE_FLAG, 0xff, FUTEX_OP(FUTEX_OP_ANDN, 0xf, FUTEX_OP_CMP_GT, 0x100));
	wake_op("WAKE_OP xor, ge", FUTEX_PRIVATE_FLAG, 0xf0, FUTEX_OP(FUTEX_OP_XOR, 0xff, FUTEX_OP_CMP_GE, 0xf0));
	wake_op("WAKE_OP shift, signed compare", FUTEX_PRIVATE_FLAG, 0x80000000u, FUTEX_OP(FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT, 4, FUTEX_OP_CMP_LT, 0));
	wake_op("WAKE_OP shift out of range", FUTEX_PRIVATE_FLAG, 0, FUTEX_OP(FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 40, FUTEX_OP_CMP_EQ, 0));
	wake_op("WAKE_OP negative shift", FUTEX_PRIVATE_FLAG, 0, FUTEX_OP(FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, -1, FUTEX_OP_CMP_EQ, 0));
	wake_op("WAKE_OP unknown op", FUTEX_PRIVATE_FLAG, 3, FUTEX_OP(6, 1, FUTEX_OP_CMP_EQ, 0));
	wake_op("WAKE_OP unknown comparison", FUTEX_PRIVATE_FLAG, 3, FUTEX_OP(FUTEX_OP_ADD, 1, 6, 0));
	wake_op("WAKE_OP shared", 0, 3, FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 3));

	uint32_t op = FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0);
	report("WAKE_OP read-only second word", futex(&words[0], FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1, ro, op));
	report("WAKE_OP shared, read-only second word", futex(&words[0], FUTEX_WAKE_OP, 1, (void *)1, ro, op));
	report("WAKE_OP PROT_NONE second word", futex(&words[0], FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1, none, op));
	report("WAKE_OP PROT_NONE second word, unknown op", futex(&words[0], FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1, none, FUTEX_OP(7, 0, 0, 0)));
	report("WAKE_OP PROT_NONE first word", futex(none, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1, &words[1], op));
	report("WAKE_OP shared, PROT_NONE first word", futex(none, FUTEX_WAKE_OP, 1, (void *)1, &words[1], op));
	report("WAKE_OP misaligned second word", futex(&words[0], FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, (void *)1, (char *)&words[1] + 2, op));
	printf("  second word %#x\n", words[1]);
}

static void requeue_calls(char *none) {
	uint32_t *w1 = &words[0], *w2 = &words[2];
	*w1 = 5;
	report("REQUEUE no waiters", futex(w1, FUTEX_REQUEUE, 1, (void *)1, w2, 0));
	report("REQUEUE_PRIVATE no waiters", futex(w1, FUTEX_REQUEUE | FUTEX_PRIVATE_FLAG, 0x7fffffff, (void *)0x7fffffff, w2, 0));
	report("REQUEUE onto itself", futex(w1, FUTEX_REQUEUE, 1, (void *)1, w1, 0));
	report("REQUEUE negative wake count", futex(w1, FUTEX_REQUEUE, -1, (void *)1, w2, 0));
	report("REQUEUE negative requeue count", futex(w1, FUTEX_REQUEUE, 1, (void *)-1, w2, 0));
	report("REQUEUE PROT_NONE target", futex(w1, FUTEX_REQUEUE, 1, (void *)1, none, 0));
	report("REQUEUE_PRIVATE PROT_NONE target", futex(w1, FUTEX_REQUEUE | FUTEX_PRIVATE_FLAG, 1, (void *)1, none, 0));
	report("REQUEUE misaligned target", futex(w1, FUTEX_REQUEUE, 1, (void *)1, (char *)w2 + 2, 0));
	report("CMP_REQUEUE equal", futex(w1, FUTEX_CMP_REQUEUE, 1, (void *)1, w2, 5));
	report("CMP_REQUEUE different", futex(w1, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 1, (void *)1, w2, 6));
	report("CMP_REQUEUE_PRIVATE PROT_NONE word", futex(none, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 1, (void *)1, w2, 0));
	report("CMP_REQUEUE_PRIVATE PROT_NONE target", futex(w1, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 1, (void *)1, none, 5));
	report("CMP_REQUEUE | CLOCK_REALTIME", futex(w1, FUTEX_CMP_REQUEUE | FUTEX_CLOCK_REALTIME, 1, (void *)1, w2, 5));
}

struct robust_head {
	void *next;
	long futex_offset;
	void *pending;
};

static void robust_calls(char *none) {
	static struct robust_head head = {&head, 0, NULL};
	report("set_robust_list", syscall(SYS_set_robust_list, &head, sizeof head));
	report("set_robust_list len 23", syscall(SYS_set_robust_list, &head, 23));
	struct robust_head *got = NULL;
	size_t len = 0;
	report("get_robust_list 0", syscall(SYS_get_robust_list, 0, &got, &len));
	printf("  head is ours: %d, len %zu\n", got == &head, len);
	got = NULL;
	report("get_robust_list own tid", syscall(SYS_get_robust_list, syscall(SYS_gettid), &got, &len));
	printf("  head is ours: %d\n", got == &head);
	report("get_robust_list no such pid", syscall(SYS_get_robust_list, 999999, &got, &len));
	report("get_robust_list -1", syscall(SYS_get_robust_list, -1, &got, &len));
	report("get_robust_list bad len pointer", syscall(SYS_get_robust_list, 0, &got, none));
	report("get_robust_list bad head pointer", syscall(SYS_get_robust_list, 0, none, &len));
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && strcmp(argv[1], "forever") == 0) {
		report("WAIT forever", futex(&words[0], FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0));
		return 1;
	}
	char *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	// A read-only page that has been written, so that it has a page of its
	// own: Linux refuses shared futexes on the shared zero page.
	char *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (none == MAP_FAILED || ro == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(ro, 0, 4096);
	mprotect(ro, 4096, PROT_READ);
	wait_calls(none, ro);
	wake_calls(none);
	wake_op_calls(none, ro);
	requeue_calls(none);
	robust_calls(none);
	return 0;
}
