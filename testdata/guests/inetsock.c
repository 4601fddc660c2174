// inetsock exercises TCP and UDP sockets over IPv4 and IPv6 on loopback:
// creation and options, binding (port 0, EADDRINUSE), listen, accept4,
// blocking and non-blocking connect, data both ways with the flags and
// calls servers use, shutdown, SIGPIPE, timeouts, signals, datagrams
// with addresses, and v4-mapped addresses on IPv6 sockets. It binds
// port 0 only and prints no port numbers, so that a native run and a
// sandboxed one compare equal.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errname.h"

static long report(const char *expr, long r) {
	if (r == -1)
		printf("%s = -1 %s\n", expr, ename(errno));
	else
		printf("%s = %ld\n", expr, r);
	fflush(stdout);
	return r;
}
#define T(e) (errno = 0, report(#e, (long)(e)))

static volatile int sigpipes, alarms;
static void on_sigpipe(int sig) {
	(void)sig;
	sigpipes++;
}
static void on_alarm(int sig) {
	(void)sig;
	alarms++;
}

static char *bad = (char *)1;

static int opt(int fd, int level, int name) {
	int v = -1;
	socklen_t len = sizeof v;
	if (getsockopt(fd, level, name, &v, &len) < 0)
		return -errno;
	return v;
}

static void setint(const char *what, int fd, int level, int name, int v) {
	errno = 0;
	int r = setsockopt(fd, level, name, &v, sizeof v);
	printf("set %s %d = %d %s\n", what, v, r, r ? ename(errno) : "");
}

// port is the port of an address of either family.
static int port(struct sockaddr_storage *ss) {
	if (ss->ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)ss)->sin6_port);
}

// showaddr prints an address without its port: its length, family and
// host, and whether the port is set.
static void showaddr(const char *what, struct sockaddr_storage *ss, socklen_t len) {
	char host[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr, host, sizeof host);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof host);
	printf("%s: len %u family %d host %s port %s\n", what, (unsigned)len, ss->ss_family, host,
	       port(ss) ? "set" : "0");
}

static void showname(const char *what, int fd, int peer) {
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len)) < 0) {
		printf("%s: -1 %s\n", what, ename(errno));
		return;
	}
	showaddr(what, &ss, len);
}

// name returns fd's bound address.
static socklen_t name(int fd, struct sockaddr_storage *ss) {
	socklen_t len = sizeof *ss;
	memset(ss, 0, sizeof *ss);
	getsockname(fd, (struct sockaddr *)ss, &len);
	return len;
}

static void showpoll(const char *what, int fd) {
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP | POLLPRI};
	int n = poll(&p, 1, 0);
	printf("poll %s: %d revents 0x%x\n", what, n, p.revents);
}

// waitfor polls fd until one of events, for at most ten seconds.
static int waitfor(int fd, short events) {
	struct pollfd p = {.fd = fd, .events = events};
	int n = poll(&p, 1, 10000);
	return n == 1 ? p.revents : -1;
}

static void showrecv(const char *what, int fd, size_t n, int flags) {
	char buf[256];
	memset(buf, 0, sizeof buf);
	errno = 0;
	ssize_t r = recv(fd, buf, n, flags);
	if (r < 0)
		printf("%s = -1 %s\n", what, ename(errno));
	else
		printf("%s = %zd \"%.*s\"\n", what, r, (int)(r < (ssize_t)n ? r : (ssize_t)n), buf);
}

static struct sockaddr_in in4(const char *host, int p) {
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p)};
	inet_pton(AF_INET, host, &sa.sin_addr);
	return sa;
}

static struct sockaddr_in6 in6(const char *host, int p) {
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(p)};
	inet_pton(AF_INET6, host, &sa.sin6_addr);
	return sa;
}

// listener returns a TCP socket of family listening on host, port 0.
static int listener(int family, const char *host) {
	int l = socket(family, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	socklen_t len;
	if (family == AF_INET) {
		*(struct sockaddr_in *)&ss = in4(host, 0);
		len = sizeof(struct sockaddr_in);
	} else {
		*(struct sockaddr_in6 *)&ss = in6(host, 0);
		len = sizeof(struct sockaddr_in6);
	}
	if (bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 16) < 0) {
		perror("listener");
		exit(1);
	}
	return l;
}

// dial connects a new socket of family to l's port on host.
static int dial(int family, const char *host, int l) {
	struct sockaddr_storage ss;
	name(l, &ss);
	int c = socket(family, SOCK_STREAM, 0);
	int r;
	if (family == AF_INET) {
		struct sockaddr_in sa = in4(host, port(&ss));
		r = connect(c, (struct sockaddr *)&sa, sizeof sa);
	} else {
		struct sockaddr_in6 sa = in6(host, port(&ss));
		r = connect(c, (struct sockaddr *)&sa, sizeof sa);
	}
	if (r < 0) {
		printf("dial: %s\n", ename(errno));
		close(c);
		return -1;
	}
	return c;
}

// closedport returns a port nothing listens on: one bound and released.
static int closedport(int family) {
	int s = socket(family, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	ss.ss_family = family;
	bind(s, (struct sockaddr *)&ss, family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	name(s, &ss);
	close(s);
	return port(&ss);
}

static void creation(void) {
	puts("== creation");
	T(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
	T(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP));
	T(socket(AF_INET6, SOCK_STREAM, 99));
	T(socket(AF_INET, SOCK_STREAM | 0x100, 0));
	int sv[2];
	T(socketpair(AF_INET, SOCK_STREAM, 0, sv));
	int s = T(socket(AF_INET, SOCK_STREAM, 0));
	printf("SO_TYPE %d SO_DOMAIN %d SO_PROTOCOL %d SO_ACCEPTCONN %d SO_ERROR %d\n", opt(s, SOL_SOCKET, SO_TYPE),
	       opt(s, SOL_SOCKET, SO_DOMAIN), opt(s, SOL_SOCKET, SO_PROTOCOL), opt(s, SOL_SOCKET, SO_ACCEPTCONN),
	       opt(s, SOL_SOCKET, SO_ERROR));
	int u = T(socket(AF_INET6, SOCK_DGRAM, 0));
	printf("SO_TYPE %d SO_DOMAIN %d SO_PROTOCOL %d IPV6_V6ONLY %d\n", opt(u, SOL_SOCKET, SO_TYPE),
	       opt(u, SOL_SOCKET, SO_DOMAIN), opt(u, SOL_SOCKET, SO_PROTOCOL), opt(u, IPPROTO_IPV6, IPV6_V6ONLY));
	showname("unbound v4", s, 0);
	showname("unbound v4 peer", s, 1);
	showname("unbound v6", u, 0);
	close(u);
	close(s);
}

static void options(void) {
	puts("== options");
	int s = socket(AF_INET, SOCK_STREAM, 0);
	setint("SO_REUSEADDR", s, SOL_SOCKET, SO_REUSEADDR, 5);
	setint("SO_REUSEPORT", s, SOL_SOCKET, SO_REUSEPORT, 1);
	setint("SO_KEEPALIVE", s, SOL_SOCKET, SO_KEEPALIVE, 1);
	printf("SO_REUSEADDR %d SO_REUSEPORT %d SO_KEEPALIVE %d\n", opt(s, SOL_SOCKET, SO_REUSEADDR),
	       opt(s, SOL_SOCKET, SO_REUSEPORT), opt(s, SOL_SOCKET, SO_KEEPALIVE));
	setint("SO_SNDBUF", s, SOL_SOCKET, SO_SNDBUF, 65536);
	setint("SO_RCVBUF", s, SOL_SOCKET, SO_RCVBUF, 1);
	printf("SO_SNDBUF %d SO_RCVBUF %d\n", opt(s, SOL_SOCKET, SO_SNDBUF), opt(s, SOL_SOCKET, SO_RCVBUF));
	int v = 1;
	T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, 3));
	T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, bad, sizeof v));
	T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, -1));
	T(setsockopt(s, SOL_SOCKET, 9999, &v, sizeof v));
	T(setsockopt(s, 9999, 1, &v, sizeof v));
	T(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v));

	struct linger lg = {.l_onoff = 7, .l_linger = 3};
	T(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg - 1));
	T(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
	memset(&lg, 0xff, sizeof lg);
	socklen_t len = sizeof lg;
	T(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &len));
	printf("SO_LINGER %d %d len %u\n", lg.l_onoff, lg.l_linger, (unsigned)len);

	struct timeval tv = {.tv_sec = 1, .tv_usec = 2000000};
	T(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
	T(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv - 1));
	tv.tv_usec = 500000;
	T(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
	memset(&tv, 0xff, sizeof tv);
	len = sizeof tv;
	T(getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &len));
	printf("SO_SNDTIMEO %ld.%06ld len %u\n", (long)tv.tv_sec, (long)tv.tv_usec, (unsigned)len);
	len = sizeof tv;
	T(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
	printf("SO_RCVTIMEO %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);

	printf("TCP_NODELAY %d TCP_CORK %d TCP_KEEPIDLE %d TCP_KEEPINTVL %d TCP_KEEPCNT %d\n", opt(s, IPPROTO_TCP, TCP_NODELAY),
	       opt(s, IPPROTO_TCP, TCP_CORK), opt(s, IPPROTO_TCP, TCP_KEEPIDLE), opt(s, IPPROTO_TCP, TCP_KEEPINTVL),
	       opt(s, IPPROTO_TCP, TCP_KEEPCNT));
	setint("TCP_NODELAY", s, IPPROTO_TCP, TCP_NODELAY, 2);
	setint("TCP_CORK", s, IPPROTO_TCP, TCP_CORK, 1);
	setint("TCP_KEEPIDLE", s, IPPROTO_TCP, TCP_KEEPIDLE, 0);
	setint("TCP_KEEPIDLE", s, IPPROTO_TCP, TCP_KEEPIDLE, 60);
	setint("TCP_KEEPINTVL", s, IPPROTO_TCP, TCP_KEEPINTVL, 40000);
	setint("TCP_KEEPINTVL", s, IPPROTO_TCP, TCP_KEEPINTVL, 10);
	setint("TCP_KEEPCNT", s, IPPROTO_TCP, TCP_KEEPCNT, 128);
	setint("TCP_KEEPCNT", s, IPPROTO_TCP, TCP_KEEPCNT, 4);
	printf("TCP_NODELAY %d TCP_CORK %d TCP_KEEPIDLE %d TCP_KEEPINTVL %d TCP_KEEPCNT %d\n", opt(s, IPPROTO_TCP, TCP_NODELAY),
	       opt(s, IPPROTO_TCP, TCP_CORK), opt(s, IPPROTO_TCP, TCP_KEEPIDLE), opt(s, IPPROTO_TCP, TCP_KEEPINTVL),
	       opt(s, IPPROTO_TCP, TCP_KEEPCNT));
	T(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, 2));
	T(setsockopt(s, IPPROTO_TCP, 9999, &v, sizeof v));

	setint("IP_TOS", s, IPPROTO_IP, IP_TOS, 0x13);
	printf("IP_TOS 0x%x\n", opt(s, IPPROTO_IP, IP_TOS));
	unsigned char c = 0;
	len = 1;
	T(getsockopt(s, IPPROTO_IP, IP_TOS, &c, &len));
	printf("IP_TOS byte 0x%x len %u\n", c, (unsigned)len);
	T(setsockopt(s, IPPROTO_IP, 9999, &v, sizeof v));
	printf("IP_TTL %d\n", opt(s, IPPROTO_IP, IP_TTL));
	setint("IP_TTL", s, IPPROTO_IP, IP_TTL, 0);
	setint("IP_TTL", s, IPPROTO_IP, IP_TTL, 256);
	setint("IP_TTL", s, IPPROTO_IP, IP_TTL, 32);
	printf("IP_TTL %d\n", opt(s, IPPROTO_IP, IP_TTL));
	setint("IP_TTL", s, IPPROTO_IP, IP_TTL, -1);
	printf("IP_TTL %d\n", opt(s, IPPROTO_IP, IP_TTL));
	len = sizeof v;
	T(getsockopt(s, SOL_SOCKET, SO_TYPE, bad, &len));
	T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, (socklen_t *)bad));
	len = (socklen_t)-1;
	T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &len));
	len = 2;
	v = 0;
	T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &len));
	printf("SO_TYPE short: %d len %u\n", v, (unsigned)len);
	close(s);

	int u = socket(AF_INET, SOCK_DGRAM, 0);
	T(setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v));
	setint("IP_TOS", u, IPPROTO_IP, IP_TOS, 0x13);
	printf("IP_TOS 0x%x\n", opt(u, IPPROTO_IP, IP_TOS));
	// glibc's resolver sets IP_RECVERR on its socket.
	printf("IP_RECVERR %d\n", opt(u, IPPROTO_IP, IP_RECVERR));
	setint("IP_RECVERR", u, IPPROTO_IP, IP_RECVERR, 7);
	printf("IP_RECVERR %d\n", opt(u, IPPROTO_IP, IP_RECVERR));
	close(u);

	int s6 = socket(AF_INET6, SOCK_STREAM, 0);
	setint("IPV6_V6ONLY", s6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	printf("IPV6_V6ONLY %d\n", opt(s6, IPPROTO_IPV6, IPV6_V6ONLY));
	printf("IPV6_UNICAST_HOPS %d\n", opt(s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS));
	setint("IPV6_UNICAST_HOPS", s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 256);
	setint("IPV6_UNICAST_HOPS", s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7);
	printf("IPV6_UNICAST_HOPS %d\n", opt(s6, IPPROTO_IPV6, IPV6_UNICAST_HOPS));
	setint("IPV6_RECVERR", s6, IPPROTO_IPV6, IPV6_RECVERR, 1);
	printf("IPV6_RECVERR %d\n", opt(s6, IPPROTO_IPV6, IPV6_RECVERR));
	struct sockaddr_in6 sa6 = in6("::1", 0);
	T(bind(s6, (struct sockaddr *)&sa6, sizeof sa6));
	setint("IPV6_V6ONLY after bind", s6, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	close(s6);
}

static void addresses(void) {
	puts("== addresses");
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = in4("127.0.0.1", 0);
	T(bind(s, (struct sockaddr *)&sa, sizeof sa - 1));
	T(bind(s, (struct sockaddr *)bad, sizeof sa));
	T(bind(s, (struct sockaddr *)&sa, -1));
	T(bind(s, (struct sockaddr *)&sa, 200));
	sa.sin_family = AF_INET6;
	T(bind(s, (struct sockaddr *)&sa, sizeof sa));
	sa.sin_family = AF_UNSPEC;
	T(bind(s, (struct sockaddr *)&sa, sizeof sa));
	sa = in4("10.1.2.3", 0);
	T(bind(s, (struct sockaddr *)&sa, sizeof sa));
	sa = in4("127.0.0.1", 0);
	T(bind(s, (struct sockaddr *)&sa, sizeof sa + 8));
	showname("bound", s, 0);
	T(bind(s, (struct sockaddr *)&sa, sizeof sa));
	struct sockaddr_storage ss;
	name(s, &ss);
	int o = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = htons(port(&ss));
	T(bind(o, (struct sockaddr *)&sa, sizeof sa));
	close(o);
	close(s);

	int s6 = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 sa6 = in6("::1", 0);
	T(bind(s6, (struct sockaddr *)&sa6, 23));
	sa6.sin6_family = AF_INET;
	T(bind(s6, (struct sockaddr *)&sa6, sizeof sa6));
	sa6 = in6("fe80::1", 0);
	T(bind(s6, (struct sockaddr *)&sa6, sizeof sa6));
	sa6.sin6_scope_id = 99;
	T(bind(s6, (struct sockaddr *)&sa6, sizeof sa6));
	close(s6);
	// A failed bind can leave the socket tied to the interface it named,
	// so the last one is a fresh socket's.
	s6 = socket(AF_INET6, SOCK_STREAM, 0);
	sa6 = in6("::1", 0);
	T(bind(s6, (struct sockaddr *)&sa6, 24));
	showname("bound v6", s6, 0);
	close(s6);

	int c = socket(AF_INET, SOCK_STREAM, 0);
	sa = in4("127.0.0.1", closedport(AF_INET));
	T(connect(c, (struct sockaddr *)&sa, sizeof sa - 1));
	sa.sin_family = AF_INET6;
	T(connect(c, (struct sockaddr *)&sa, sizeof sa));
	sa.sin_family = AF_INET;
	T(connect(c, (struct sockaddr *)&sa, sizeof sa));
	close(c);
}

// misuse calls TCP and UDP sockets in states that do not allow the call.
static void misuse(void) {
	puts("== misuse");
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char b[4];
	showpoll("unconnected tcp", s);
	T(accept(s, NULL, NULL));
	showrecv("recv unconnected", s, 4, 0);
	sigpipes = 0;
	T(send(s, "x", 1, 0));
	printf("sigpipes %d\n", sigpipes);
	T(shutdown(s, SHUT_RDWR));
	T(read(s, b, sizeof b));
	showpoll("unconnected tcp after shutdown", s);
	int l = listener(AF_INET, "127.0.0.1");
	struct sockaddr_storage ss;
	socklen_t len = name(l, &ss);
	T(connect(l, (struct sockaddr *)&ss, len));
	T(listen(l, 5));
	showname("listener peer", l, 1);
	T(shutdown(l, SHUT_WR));
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	T(listen(u, 1));
	T(accept(u, NULL, NULL));
	showrecv("udp recv nothing", u, 4, MSG_DONTWAIT);
	close(u);
	close(l);
	close(s);
}

static void tcp(int family, const char *host) {
	printf("== tcp %s\n", host);
	int l = listener(family, host);
	printf("SO_ACCEPTCONN %d\n", opt(l, SOL_SOCKET, SO_ACCEPTCONN));
	showname("listener", l, 0);
	showpoll("listener idle", l);
	int ln = fcntl(l, F_GETFL);
	fcntl(l, F_SETFL, ln | O_NONBLOCK);
	T(accept(l, NULL, NULL));
	fcntl(l, F_SETFL, ln);
	int c = dial(family, host, l);
	printf("connected %s\n", c >= 0 ? "yes" : "no");
	printf("listener readable %s\n", waitfor(l, POLLIN) == POLLIN ? "yes" : "no");
	struct sockaddr_storage peer, cname;
	socklen_t plen = sizeof peer;
	int a = T(accept4(l, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK));
	showaddr("accepted peer", &peer, plen);
	socklen_t clen = name(c, &cname);
	printf("peer is client: %s\n", clen == plen && !memcmp(&peer, &cname, clen) ? "yes" : "no");
	printf("accepted cloexec %d nonblock %d\n", fcntl(a, F_GETFD) & FD_CLOEXEC, (fcntl(a, F_GETFL) & O_NONBLOCK) != 0);
	T(syscall(SYS_accept4, l, NULL, NULL, 0x7));
	showname("client peer", c, 1);
	showname("accepted name", a, 0);
	showpoll("client", c);
	showpoll("accepted", a);

	showrecv("recv nothing", a, 10, 0);
	T(send(c, "hello", 5, 0));
	waitfor(a, POLLIN);
	int n = -1;
	T(ioctl(a, FIONREAD, &n));
	printf("FIONREAD %d\n", n);
	showpoll("accepted with data", a);
	showrecv("peek", a, 3, MSG_PEEK);
	showrecv("recv", a, 10, 0);
	T(write(a, "abc", 3));
	T(write(a, "def", 3));
	char buf[64] = {0};
	T(recv(c, buf, 6, MSG_WAITALL));
	printf("waitall \"%s\"\n", buf);
	showrecv("dontwait", c, 10, MSG_DONTWAIT);
	T(send(a, "abcdef", 6, 0));
	waitfor(c, POLLIN);
	memset(buf, 0, sizeof buf);
	T(recv(c, buf, 3, MSG_TRUNC | MSG_WAITALL));
	printf("trunc left \"%s\"\n", buf);
	showrecv("after trunc", c, 10, 0);

	struct iovec iov[2] = {{.iov_base = "one ", .iov_len = 4}, {.iov_base = "two", .iov_len = 3}};
	T(writev(c, iov, 2));
	char b1[3] = {0}, b2[8] = {0};
	struct iovec riov[2] = {{.iov_base = b1, .iov_len = 3}, {.iov_base = b2, .iov_len = 4}};
	fcntl(a, F_SETFL, 0);
	T(readv(a, riov, 2));
	printf("readv \"%.3s\" \"%.4s\"\n", b1, b2);

	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	T(sendmsg(a, &mh, 0));
	memset(buf, 0, sizeof buf);
	struct iovec one = {.iov_base = buf, .iov_len = 7};
	struct sockaddr_storage from;
	struct msghdr rh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &one, .msg_iovlen = 1};
	T(recvmsg(c, &rh, MSG_WAITALL));
	printf("recvmsg \"%s\" namelen %u flags 0x%x\n", buf, (unsigned)rh.msg_namelen, rh.msg_flags);
	T(sendto(c, "x", 1, 0, (struct sockaddr *)&cname, clen));
	socklen_t flen = sizeof from;
	T(recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen));
	printf("recvfrom addrlen %u\n", (unsigned)flen);

	// A receive timeout, then a signal without SA_RESTART.
	struct timeval tv = {.tv_usec = 100000};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	showrecv("recv timeout", c, 10, 0);
	tv.tv_usec = 0;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sigaction act = {.sa_handler = on_alarm};
	sigaction(SIGALRM, &act, NULL);
	struct itimerval it = {.it_value = {.tv_usec = 50000}};
	setitimer(ITIMER_REAL, &it, NULL);
	showrecv("recv interrupted", c, 10, 0);
	printf("alarms %d\n", alarms);

	T(shutdown(c, SHUT_WR));
	showrecv("recv after peer shutdown", a, 10, 0);
	showpoll("accepted after peer shutdown", a);
	T(shutdown(c, 99));
	sigpipes = 0;
	T(send(c, "z", 1, 0));
	printf("sigpipes %d\n", sigpipes);
	T(send(c, "z", 1, MSG_NOSIGNAL));
	printf("sigpipes %d\n", sigpipes);
	T(send(a, "bye", 3, 0));
	showrecv("recv bye", c, 10, 0);
	close(a);
	waitfor(c, POLLRDHUP);
	showpoll("peer closed", c);
	showrecv("recv after close", c, 10, 0);
	close(c);

	// Writing to a connection the peer closed: the peer resets it, and
	// the next write is EPIPE.
	c = dial(family, host, l);
	a = accept(l, NULL, NULL);
	close(a);
	waitfor(c, POLLIN);
	showrecv("recv eof", c, 10, 0);
	T(send(c, "x", 1, 0));
	waitfor(c, POLLERR | POLLHUP);
	sigpipes = 0;
	T(send(c, "x", 1, 0));
	printf("sigpipes %d\n", sigpipes);
	close(c);

	// Unread data at close resets the connection.
	c = dial(family, host, l);
	a = accept(l, NULL, NULL);
	send(c, "unread", 6, 0);
	waitfor(a, POLLIN);
	close(a);
	printf("client error event %s\n", waitfor(c, POLLERR) & POLLERR ? "yes" : "no");
	showpoll("reset", c);
	showrecv("recv reset", c, 10, 0);
	showrecv("recv after reset", c, 10, 0);
	close(c);

	// A closed port refuses, blocking and not.
	c = socket(family, SOCK_STREAM, 0);
	struct sockaddr_storage to;
	memset(&to, 0, sizeof to);
	socklen_t tolen;
	int p = closedport(family);
	if (family == AF_INET) {
		*(struct sockaddr_in *)&to = in4(host, p);
		tolen = sizeof(struct sockaddr_in);
	} else {
		*(struct sockaddr_in6 *)&to = in6(host, p);
		tolen = sizeof(struct sockaddr_in6);
	}
	T(connect(c, (struct sockaddr *)&to, tolen));
	close(c);
	c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	T(connect(c, (struct sockaddr *)&to, tolen));
	waitfor(c, POLLOUT);
	printf("SO_ERROR %s\n", ename(opt(c, SOL_SOCKET, SO_ERROR)));
	printf("SO_ERROR again %s\n", ename(opt(c, SOL_SOCKET, SO_ERROR)));
	close(c);

	// A non-blocking connect that succeeds.
	name(l, &to);
	if (family == AF_INET)
		((struct sockaddr_in *)&to)->sin_addr = in4(host, 0).sin_addr;
	else
		((struct sockaddr_in6 *)&to)->sin6_addr = in6(host, 0).sin6_addr;
	c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	T(connect(c, (struct sockaddr *)&to, tolen));
	printf("writable %s\n", waitfor(c, POLLOUT) & POLLOUT ? "yes" : "no");
	printf("SO_ERROR %s\n", ename(opt(c, SOL_SOCKET, SO_ERROR)));
	T(connect(c, (struct sockaddr *)&to, tolen));
	a = accept(l, NULL, NULL);

	// epoll sees data arrive.
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = a};
	T(epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
	T(epoll_wait(ep, &ev, 1, 0));
	send(c, "ping", 4, 0);
	T(epoll_wait(ep, &ev, 1, 10000));
	printf("epoll events 0x%x\n", ev.events);
	close(ep);

	// A splice into a full socket takes nothing from the pipe.
	int sp[2];
	if (pipe(sp) < 0 || write(sp[1], "spliced", 7) != 7)
		return;
	static char fill[1 << 16];
	// Full for good: once no acknowledgment has made room for half a
	// second, the peer's window is closed too; a last fill takes what
	// room the last ones made.
	struct pollfd full = {.fd = c, .events = POLLOUT};
	do {
		while (send(c, fill, sizeof fill, MSG_DONTWAIT) > 0) {
		}
	} while (poll(&full, 1, 500) > 0);
	while (send(c, fill, sizeof fill, MSG_DONTWAIT) > 0) {
	}
	T(splice(sp[0], NULL, c, NULL, 7, SPLICE_F_NONBLOCK));
	n = -1;
	ioctl(sp[0], FIONREAD, &n);
	printf("pipe keeps %d\n", n);
	close(sp[0]);
	close(sp[1]);
	close(a);
	close(c);
	close(l);
}

static void udp(int family, const char *host) {
	printf("== udp %s\n", host);
	int a = socket(family, SOCK_DGRAM, 0), b = socket(family, SOCK_DGRAM, 0);
	struct sockaddr_storage an, bn, from;
	memset(&an, 0, sizeof an);
	socklen_t alen;
	if (family == AF_INET) {
		*(struct sockaddr_in *)&an = in4(host, 0);
		alen = sizeof(struct sockaddr_in);
	} else {
		*(struct sockaddr_in6 *)&an = in6(host, 0);
		alen = sizeof(struct sockaddr_in6);
	}
	T(bind(a, (struct sockaddr *)&an, alen));
	alen = name(a, &an);
	showpoll("unbound", b);
	showpoll("bound", a);
	T(send(b, "x", 1, 0));
	T(sendto(b, "x", 1, 0, (struct sockaddr *)&an, family == AF_INET ? 15 : 23));
	int p = port(&an);
	if (family == AF_INET)
		((struct sockaddr_in *)&an)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&an)->sin6_port = 0;
	T(sendto(b, "x", 1, 0, (struct sockaddr *)&an, alen));
	if (family == AF_INET)
		((struct sockaddr_in *)&an)->sin_port = htons(p);
	else
		((struct sockaddr_in6 *)&an)->sin6_port = htons(p);
	T(sendto(b, "datagram", 8, 0, (struct sockaddr *)&an, alen));
	T(sendto(b, "", 0, 0, (struct sockaddr *)&an, alen));
	static char big[70000];
	T(sendto(b, big, sizeof big, 0, (struct sockaddr *)&an, alen));
	T(sendto(b, big, 65507 - (family == AF_INET6 ? 20 : 0), 0, (struct sockaddr *)&an, alen));
	name(b, &bn);
	printf("sender bound %s\n", port(&bn) ? "yes" : "no");
	waitfor(a, POLLIN);
	int n = -1;
	T(ioctl(a, FIONREAD, &n));
	printf("FIONREAD %d\n", n);
	char buf[16] = {0};
	socklen_t flen = sizeof from;
	T(recvfrom(a, buf, 4, MSG_PEEK, (struct sockaddr *)&from, &flen));
	T(recvfrom(a, buf, 4, MSG_TRUNC, (struct sockaddr *)&from, &flen));
	printf("from sender: %s \"%.4s\"\n", port(&from) == port(&bn) ? "yes" : "no", buf);
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
	struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
	T(recvmsg(a, &mh, 0));
	printf("empty datagram flags 0x%x namelen %u\n", mh.msg_flags, (unsigned)mh.msg_namelen);
	iov.iov_len = 10;
	T(recvmsg(a, &mh, 0));
	printf("big datagram flags 0x%x\n", mh.msg_flags);
	showrecv("nothing left", a, 10, MSG_DONTWAIT);

	// Several datagrams in one call each way.
	struct mmsghdr mm[3];
	struct iovec mv[3];
	char *words[] = {"one", "three", "seven"};
	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 3; i++) {
		mv[i].iov_base = words[i];
		mv[i].iov_len = strlen(words[i]);
		mm[i].msg_hdr.msg_iov = &mv[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &an;
		mm[i].msg_hdr.msg_namelen = alen;
	}
	T(sendmmsg(b, mm, 3, 0));
	printf("sent lens %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
	T(syscall(SYS_sendmmsg, b, bad, 1, 0));
	char rb[4][16];
	struct iovec rv[4];
	struct mmsghdr rm[4];
	memset(rm, 0, sizeof rm);
	memset(rb, 0, sizeof rb);
	for (int i = 0; i < 4; i++) {
		rv[i].iov_base = rb[i];
		rv[i].iov_len = sizeof rb[i];
		rm[i].msg_hdr.msg_iov = &rv[i];
		rm[i].msg_hdr.msg_iovlen = 1;
	}
	T(recvmmsg(a, rm, 3, 0, NULL));
	printf("received \"%s\" %u \"%s\" %u \"%s\" %u\n", rb[0], rm[0].msg_len, rb[1], rm[1].msg_len, rb[2], rm[2].msg_len);
	sendto(b, "last", 4, 0, (struct sockaddr *)&an, alen);
	T(recvmmsg(a, rm, 4, MSG_WAITFORONE, NULL));
	printf("received \"%.4s\" %u\n", rb[0], rm[0].msg_len);
	T(recvmmsg(a, rm, 4, MSG_DONTWAIT, NULL));

	// Connected: the peer is the default destination and the only source.
	T(connect(a, (struct sockaddr *)&bn, sizeof bn));
	showname("connected peer", a, 1);
	T(send(a, "reply", 5, 0));
	showrecv("reply", b, 10, 0);
	struct sockaddr_storage un;
	memset(&un, 0, sizeof un);
	un.ss_family = AF_UNSPEC;
	T(connect(a, (struct sockaddr *)&un, sizeof un));
	showname("disconnected peer", a, 1);
	T(shutdown(b, SHUT_RD));
	close(a);
	close(b);
}

// mapped checks that an IPv6 socket bound to :: takes IPv4 connections
// and datagrams unless IPV6_V6ONLY is on.
static void mapped(void) {
	puts("== mapped");
	int l = listener(AF_INET6, "::");
	int c = dial(AF_INET, "127.0.0.1", l);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	int a = T(accept(l, (struct sockaddr *)&peer, &plen));
	showaddr("mapped peer", &peer, plen);
	showname("mapped name", a, 0);
	showname("v4 client peer", c, 1);
	close(a);
	close(c);
	close(l);

	l = socket(AF_INET6, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	struct sockaddr_in6 any = in6("::", 0);
	bind(l, (struct sockaddr *)&any, sizeof any);
	listen(l, 1);
	c = dial(AF_INET, "127.0.0.1", l);
	printf("v6only refuses v4: %s\n", c < 0 ? "yes" : "no");
	close(l);

	int u = socket(AF_INET6, SOCK_DGRAM, 0);
	T(bind(u, (struct sockaddr *)&any, sizeof any));
	struct sockaddr_storage un;
	name(u, &un);
	struct sockaddr_in to = in4("127.0.0.1", port(&un));
	int v4 = socket(AF_INET, SOCK_DGRAM, 0);
	T(sendto(v4, "v4", 2, 0, (struct sockaddr *)&to, sizeof to));
	char buf[8] = {0};
	struct sockaddr_storage from;
	socklen_t flen = sizeof from;
	T(recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen));
	showaddr("datagram from", &from, flen);
	T(sendto(u, "v6", 2, 0, (struct sockaddr *)&from, flen));
	struct sockaddr_storage v4n;
	name(v4, &v4n);
	to.sin_port = htons(port(&v4n));
	T(sendto(u, "v4", 2, 0, (struct sockaddr *)&to, sizeof to));
	showrecv("v4 got", v4, 8, 0);
	showrecv("v4 got", v4, 8, 0);
	close(v4);
	close(u);
}

// hang blocks for good in the call how names (accept, recv, send,
// connect), after saying so.
static int hang(const char *how) {
	int l = listener(AF_INET, "127.0.0.1");
	int c = dial(AF_INET, "127.0.0.1", l);
	puts("blocking");
	fflush(stdout);
	if (!strcmp(how, "accept")) {
		int l2 = listener(AF_INET6, "::1");
		accept(l2, NULL, NULL);
	} else if (!strcmp(how, "recv")) {
		char b;
		recv(c, &b, 1, 0);
	} else if (!strcmp(how, "send")) {
		static char big[1 << 20];
		for (;;)
			send(c, big, sizeof big, 0);
	} else if (!strcmp(how, "udp")) {
		int u = socket(AF_INET, SOCK_DGRAM, 0);
		char b;
		recv(u, &b, 1, 0);
	} else if (!strcmp(how, "connect")) {
		// A full backlog: the last connect waits for room.
		int l2 = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = in4("127.0.0.1", 0);
		bind(l2, (struct sockaddr *)&sa, sizeof sa);
		listen(l2, 0);
		for (;;)
			dial(AF_INET, "127.0.0.1", l2);
	}
	return 1;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "hang"))
		return hang(argv[2]);
	signal(SIGPIPE, on_sigpipe);
	creation();
	options();
	addresses();
	misuse();
	tcp(AF_INET, "127.0.0.1");
	tcp(AF_INET6, "::1");
	udp(AF_INET, "127.0.0.1");
	udp(AF_INET6, "::1");
	mapped();
	return 0;
}
