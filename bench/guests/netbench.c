// Network workloads for the benchmark harness, all on 127.0.0.1. Each
// prints the nanoseconds its timed part took, per operation:
//   netbench tcp MIB      MIB MiB through one TCP connection, written by
//                         this thread and read by another, 256 KiB at a
//                         time; per MiB, until the reader has all of it
//   netbench connect N    N times socket+connect to a listener, accept,
//                         close of both ends; per connection
//   netbench udp N        N round trips of a 64-byte datagram between two
//                         threads over two connected UDP sockets
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what) { perror(what); exit(1); }

enum { piece = 256 << 10, datagram = 64 };

// bound returns a socket of type bound to 127.0.0.1 on a free port, and
// its address in sa.
static int bound(int type, struct sockaddr_in *sa) {
	socklen_t len = sizeof *sa;
	*sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, type, 0);
	if (s < 0 || bind(s, (struct sockaddr *)sa, len) || getsockname(s, (struct sockaddr *)sa, &len)) die("bind");
	return s;
}

static int connectTo(int type, const struct sockaddr_in *sa) {
	int s = socket(AF_INET, type, 0);
	if (s < 0 || connect(s, (const struct sockaddr *)sa, sizeof *sa)) die("connect");
	return s;
}

static void *drain(void *arg) {
	int fd = *(int *)arg;
	static char in[piece];
	ssize_t got;
	while ((got = read(fd, in, sizeof in)) > 0) {
	}
	if (got < 0) die("read socket");
	return NULL;
}

static long long tcp(long mib) {
	struct sockaddr_in sa;
	int l = bound(SOCK_STREAM, &sa);
	if (listen(l, 1)) die("listen");
	int c = connectTo(SOCK_STREAM, &sa);
	int a = accept(l, NULL, NULL);
	if (a < 0) die("accept");
	static char out[piece];
	memset(out, 'x', sizeof out);
	pthread_t reader;
	long long t = now();
	if (pthread_create(&reader, NULL, drain, &a)) die("pthread_create");
	for (long i = 0; i < mib * ((1 << 20) / piece); i++) {
		for (ssize_t done = 0; done < piece;) {
			ssize_t w = write(c, out + done, piece - done);
			if (w <= 0) die("write socket");
			done += w;
		}
	}
	if (shutdown(c, SHUT_WR)) die("shutdown");
	pthread_join(reader, NULL);
	return (now() - t) / mib;
}

static long long connects(long n) {
	struct sockaddr_in sa;
	int l = bound(SOCK_STREAM, &sa);
	if (listen(l, 16)) die("listen");
	long long t = now();
	for (long i = 0; i < n; i++) {
		int c = connectTo(SOCK_STREAM, &sa);
		int a = accept(l, NULL, NULL);
		if (a < 0) die("accept");
		close(c);
		close(a);
	}
	return (now() - t) / n;
}

struct echo {
	int fd;
	long n;
};

static void *echo(void *arg) {
	struct echo *e = arg;
	char d[datagram];
	for (long i = 0; i < e->n; i++) {
		if (recv(e->fd, d, sizeof d, 0) != sizeof d) die("echo recv");
		if (send(e->fd, d, sizeof d, 0) != sizeof d) die("echo send");
	}
	return NULL;
}

static long long udp(long n) {
	struct sockaddr_in sa, sb;
	int a = bound(SOCK_DGRAM, &sa), b = bound(SOCK_DGRAM, &sb);
	if (connect(a, (struct sockaddr *)&sb, sizeof sb) || connect(b, (struct sockaddr *)&sa, sizeof sa)) die("connect");
	struct echo e = {b, n};
	pthread_t peer;
	if (pthread_create(&peer, NULL, echo, &e)) die("pthread_create");
	char d[datagram];
	memset(d, 'x', sizeof d);
	long long t = now();
	for (long i = 0; i < n; i++) {
		if (send(a, d, sizeof d, 0) != sizeof d) die("send");
		if (recv(a, d, sizeof d, 0) != sizeof d) die("recv");
	}
	long long ns = (now() - t) / n;
	pthread_join(peer, NULL);
	return ns;
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	const char *op = argv[1];
	long n = atol(argv[2]);
	if (n < 1) return 2;
	if (!strcmp(op, "tcp")) {
		printf("%lld\n", tcp(n));
	} else if (!strcmp(op, "connect")) {
		printf("%lld\n", connects(n));
	} else if (!strcmp(op, "udp")) {
		printf("%lld\n", udp(n));
	} else {
		return 2;
	}
	return 0;
}
