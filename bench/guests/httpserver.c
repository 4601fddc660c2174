/* httpserver: a single-threaded HTTP/1.1 server for the published-port
 * workload. "httpserver ADDR PORT" listens on ADDR:PORT, prints "ready",
 * and answers every request (a header block ending in an empty line) on a
 * kept-alive connection with the same small page, as a static file
 * server would. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536

static const char page[] =
	"<html><body>kvmbox published port: a small static page, as a web "
	"server hands out its index.html.</body></html>\n";

/* matched counts the bytes of "\r\n\r\n" each connection has seen last,
 * so that a request split across reads is still found. */
static unsigned char matched[MAX_FDS];

static void die(const char *what) {
	perror(what);
	exit(1);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: httpserver ADDR PORT\n");
		return 2;
	}
	char response[512];
	int rlen = snprintf(response, sizeof response,
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n\r\n%s",
		sizeof page - 1, page);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "httpserver: bad address %s\n", argv[1]);
		return 2;
	}
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("socket");
	if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 128) < 0)
		die("bind");
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
		die("epoll");
	printf("ready\n");
	fflush(stdout);
	static char buf[16384];
	static const char end[] = "\r\n\r\n";
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == l) {
				int c;
				while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					if (c >= MAX_FDS) {
						close(c);
						continue;
					}
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					matched[c] = 0;
					ev.data.fd = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						die("epoll_ctl");
				}
				continue;
			}
			ssize_t got = read(fd, buf, sizeof buf);
			if (got < 0 && errno == EAGAIN)
				continue;
			if (got <= 0) {
				close(fd);
				continue;
			}
			int requests = 0;
			for (ssize_t j = 0; j < got; j++) {
				if (buf[j] == end[matched[fd]])
					matched[fd]++;
				else
					matched[fd] = buf[j] == '\r';
				if (matched[fd] == 4) {
					requests++;
					matched[fd] = 0;
				}
			}
			for (; requests > 0; requests--)
				if (write(fd, response, rlen) != rlen) {
					close(fd);
					break;
				}
		}
	}
}
