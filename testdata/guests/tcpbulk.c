// tcpbulk moves megabytes through one TCP connection on loopback with the
// calls that take a large or scattered buffer (write and read beyond
// 1 MiB, writev and readv of odd pieces, recv with MSG_WAITALL and
// MSG_PEEK) and checks every byte; then a receive into memory that a fork
// made copy-on-write, which must not show in the child's copy. It prints
// no ports, so that a native run and a sandboxed one compare equal.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
	printf("%s: %s\n", what, strerror(errno));
	exit(1);
}

// pattern is the byte at offset i of the stream.
static unsigned char pattern(long i) { return (unsigned char)(i * 7 + i / 4093); }

enum { total = 5 * (1 << 20) + 12345 };

static void connected(int *c, int *a) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, len) || listen(l, 1) || getsockname(l, (struct sockaddr *)&sa, &len))
		die("listen");
	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&sa, len)) die("connect");
	*a = accept(l, NULL, NULL);
	if (*a < 0) die("accept");
	close(l);
}

static unsigned char *out;

// sender writes the stream: a 3 MiB write, then writev of three odd
// pieces, then the rest, and shuts its end.
static void *sender(void *arg) {
	int fd = *(int *)arg;
	long off = 0;
	while (off < 3 << 20) {
		ssize_t n = write(fd, out + off, (3 << 20) - off);
		if (n <= 0) die("write");
		off += n;
	}
	long firstv = off;
	struct iovec iov[3] = {{out + off, 1}, {out + off + 1, 700001}, {out + off + 700002, 999999}};
	long want = 1 + 700001 + 999999;
	ssize_t n = writev(fd, iov, 3);
	if (n != want) die("writev");
	off = firstv + want;
	while (off < total) {
		n = write(fd, out + off, total - off);
		if (n <= 0) die("write rest");
		off += n;
	}
	if (shutdown(fd, SHUT_WR)) die("shutdown");
	return NULL;
}

static long mismatches(const unsigned char *b, long from, long n) {
	long bad = 0;
	for (long i = 0; i < n; i++)
		bad += b[i] != pattern(from + i);
	return bad;
}

static void bulk(void) {
	int c, a;
	connected(&c, &a);
	out = malloc(total);
	unsigned char *in = malloc(total);
	if (!out || !in) die("malloc");
	for (long i = 0; i < total; i++) out[i] = pattern(i);
	pthread_t th;
	if (pthread_create(&th, NULL, sender, &c)) die("pthread_create");
	long got = 0, bad = 0;
	// All of 2 MiB and a byte: past one pinned piece.
	ssize_t n = recv(a, in, (2 << 20) + 1, MSG_WAITALL);
	printf("recv MSG_WAITALL of 2 MiB + 1 = %s\n", n == (2 << 20) + 1 ? "all" : "short");
	if (n > 0) got += n;
	n = recv(a, in + got, 3, MSG_PEEK | MSG_WAITALL);
	printf("recv MSG_PEEK of 3 = %zd, %s\n", n, n > 0 && !mismatches(in + got, got, n) ? "right bytes" : "wrong bytes");
	while (got < total) {
		struct iovec iov[3] = {{in + got, 1}, {in + got + 1, 0}, {in + got + 1, 1 << 20}};
		n = readv(a, iov, 3);
		if (n <= 0) break;
		got += n;
		if (got >= total) break;
		n = read(a, in + got, total - got);
		if (n <= 0) break;
		got += n;
	}
	bad = mismatches(in, 0, got);
	n = read(a, in, 1);
	printf("received %ld of %d bytes, %ld wrong; then read = %zd\n", got, total, bad, n);
	pthread_join(th, NULL);
	close(a);
	close(c);
	free(in);
	free(out);
}

struct cow {
	int fd;
	unsigned char *buf;
};

static void *receiver(void *arg) {
	struct cow *w = arg;
	ssize_t n = recv(w->fd, w->buf, 4096, MSG_WAITALL);
	printf("parent's recv = %zd, first byte %c\n", n, n > 0 ? w->buf[0] : '-');
	return NULL;
}

// cow blocks a thread in recv into a buffer, forks, then sends: the data
// lands in the parent's buffer and not in the child's copy.
static void cow(void) {
	int c, a;
	connected(&c, &a);
	unsigned char *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) die("mmap");
	memset(buf, '0', 4096);
	struct cow w = {a, buf};
	pthread_t th;
	if (pthread_create(&th, NULL, receiver, &w)) die("pthread_create");
	usleep(100000);
	int go[2];
	if (pipe(go)) die("pipe");
	fflush(stdout);
	pid_t child = fork();
	if (child < 0) die("fork");
	if (child == 0) {
		char x;
		if (read(go[0], &x, 1) != 1) _exit(1);
		printf("child's copy starts with %c\n", buf[0]);
		_exit(0);
	}
	static char data[4096];
	memset(data, 'D', sizeof data);
	if (write(c, data, sizeof data) != sizeof data) die("write");
	pthread_join(th, NULL);
	fflush(stdout);
	if (write(go[1], "x", 1) != 1) die("write pipe");
	int status;
	waitpid(child, &status, 0);
	printf("child exited %d\n", WEXITSTATUS(status));
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	bulk();
	cow();
	return 0;
}
