// outbound.c: the sandbox's side of the outbound network tests. Each
// command prints one line: what it got, or the call that failed and its
// errno name (or getaddrinfo's message).
//
//   tcp HOST PORT MSG   resolve HOST, connect, send MSG, half-close, print
//                       the reply up to the peer's end of stream
//   udp HOST PORT MSG   send MSG in a datagram, print the reply
//   resolve HOST        print HOST's IPv4 addresses (getaddrinfo)
//   dns NAME            ask 10.0.2.3:53 for NAME's A records, print the
//                       rcode and addresses
//   bind ADDR           bind a TCP socket to ADDR:0
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "errname.h"

static int fail(const char *call) {
	printf("%s: %s\n", call, ename(errno));
	return 1;
}

static int lookup(const char *host, const char *port, int type, struct sockaddr_in *sa) {
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = type}, *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		printf("getaddrinfo: %s\n", rc == EAI_SYSTEM ? ename(errno) : "failed");
		return -1;
	}
	memcpy(sa, res->ai_addr, sizeof *sa);
	freeaddrinfo(res);
	return 0;
}

static int tcp(const char *host, const char *port, const char *msg) {
	struct sockaddr_in sa;
	if (lookup(host, port, SOCK_STREAM, &sa) < 0)
		return 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return fail("connect");
	if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
		return fail("write");
	if (shutdown(fd, SHUT_WR) < 0)
		return fail("shutdown");
	char buf[4096];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
		if (n < 0)
			return fail("read");
		if (n == 0)
			break;
		got += n;
	}
	buf[got] = 0;
	printf("got: %s\n", buf);
	return 0;
}

static int udp(const char *host, const char *port, const char *msg) {
	struct sockaddr_in sa;
	if (lookup(host, port, SOCK_DGRAM, &sa) < 0)
		return 1;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return fail("connect");
	if (send(fd, msg, strlen(msg), 0) < 0)
		return fail("send");
	char buf[2048];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	if (n < 0)
		return fail("recv");
	buf[n] = 0;
	printf("got: %s\n", buf);
	return 0;
}

static int resolve(const char *host) {
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		printf("getaddrinfo: failed\n");
		return 1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		printf("%s\n", inet_ntoa(((struct sockaddr_in *)ai->ai_addr)->sin_addr));
	freeaddrinfo(res);
	return 0;
}

static int dns(const char *name) {
	unsigned char q[512] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	size_t off = 12;
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (len == 0 || len > 63 || off + len + 6 > sizeof q)
			return fail("name");
		q[off++] = len;
		memcpy(q + off, p, len);
		off += len;
		p += len + (dot != NULL);
	}
	q[off++] = 0;
	q[off++] = 0, q[off++] = 1, q[off++] = 0, q[off++] = 1;
	size_t qlen = off;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	inet_pton(AF_INET, "10.0.2.3", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (sendto(fd, q, qlen, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
		return fail("sendto");
	unsigned char r[512];
	ssize_t n = recv(fd, r, sizeof r, 0);
	if (n < 0)
		return fail("recv");
	if (n < (ssize_t)qlen || r[0] != 0x12 || r[1] != 0x34 || !(r[2] & 0x80)) {
		printf("bad answer\n");
		return 1;
	}
	printf("rcode %d", r[3] & 0xf);
	int an = r[6] << 8 | r[7];
	size_t at = qlen;
	for (int i = 0; i < an && at + 16 <= (size_t)n; i++, at += 16) {
		// Each answer: a 2-byte name pointer, type, class, TTL, length, 4 bytes.
		printf(" %d.%d.%d.%d", r[at + 12], r[at + 13], r[at + 14], r[at + 15]);
	}
	printf("\n");
	return 0;
}

static int bindto(const char *addr) {
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, addr, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return fail("bind");
	printf("bound\n");
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 5 && strcmp(argv[1], "tcp") == 0)
		return tcp(argv[2], argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "udp") == 0)
		return udp(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "resolve") == 0)
		return resolve(argv[2]);
	if (argc == 3 && strcmp(argv[1], "dns") == 0)
		return dns(argv[2]);
	if (argc == 3 && strcmp(argv[1], "bind") == 0)
		return bindto(argv[2]);
	fprintf(stderr, "usage: outbound tcp|udp HOST PORT MSG | resolve HOST | dns NAME | bind ADDR\n");
	return 2;
}
