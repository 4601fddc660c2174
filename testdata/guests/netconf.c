// netconf reads the network's configuration the ways programs do:
// NETLINK_ROUTE sockets (binding, dumps of links, addresses and routes,
// acknowledgements and errors, peeking and truncation, options),
// getifaddrs, if_nameindex and getaddrinfo with AI_ADDRCONFIG, and the
// interface ioctls. It prints no port ids or inode numbers, so that a
// native run in a network namespace holding only lo and a sandboxed one
// compare equal. Run as root, it ends with setresuid to nobody and checks
// what an unprivileged process may not do.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "errname.h"

// The netlink ABI, from <linux/netlink.h> and <linux/rtnetlink.h>, which
// musl's toolchain lacks.
#define NETLINK_ROUTE 0
#define SOL_NETLINK 270
#define NETLINK_ADD_MEMBERSHIP 1
#define NETLINK_LIST_MEMBERSHIPS 9
#define NETLINK_EXT_ACK 11
#define NETLINK_GET_STRICT_CHK 12
#define NLM_F_REQUEST 0x01
#define NLM_F_MULTI 0x02
#define NLM_F_ACK 0x04
#define NLM_F_DUMP 0x300
#define NLM_F_CREATE 0x400
#define NLMSG_NOOP 1
#define NLMSG_ERROR 2
#define NLMSG_DONE 3
#define RTM_NEWLINK 16
#define RTM_GETLINK 18
#define RTM_SETLINK 19
#define RTM_NEWADDR 20
#define RTM_GETADDR 22
#define RTM_NEWROUTE 24
#define RTM_GETROUTE 26
#define RTMGRP_LINK 1
#define RTNLGRP_IPV4_IFADDR 5
#define IFLA_ADDRESS 1
#define IFLA_BROADCAST 2
#define IFLA_IFNAME 3
#define IFLA_MTU 4
#define IFLA_STATS 7
#define IFLA_TXQLEN 13
#define IFLA_OPERSTATE 16
#define IFLA_QDISC 6
#define IFA_ADDRESS 1
#define IFA_LOCAL 2
#define IFA_LABEL 3
#define IFA_BROADCAST 4
#define IFA_CACHEINFO 6
#define IFA_FLAGS 8
#define RTA_DST 1
#define RTA_OIF 4
#define RTA_GATEWAY 5
#define RTA_PRIORITY 6
#define RTA_PREFSRC 7
#define RTA_TABLE 15
#define RTA_PREF 20
#define RT_TABLE_MAIN 254
#define RT_TABLE_LOCAL 255
struct sockaddr_nl {
	unsigned short nl_family, nl_pad;
	unsigned nl_pid, nl_groups;
};
struct nlmsghdr {
	unsigned nlmsg_len;
	unsigned short nlmsg_type, nlmsg_flags;
	unsigned nlmsg_seq, nlmsg_pid;
};
struct nlmsgerr {
	int error;
	struct nlmsghdr msg;
};
struct rtgenmsg {
	unsigned char rtgen_family;
};
struct ifinfomsg {
	unsigned char ifi_family, ifi_pad;
	unsigned short ifi_type;
	int ifi_index;
	unsigned ifi_flags, ifi_change;
};
struct ifaddrmsg {
	unsigned char ifa_family, ifa_prefixlen, ifa_flags, ifa_scope;
	unsigned ifa_index;
};
struct ifa_cacheinfo {
	unsigned ifa_prefered, ifa_valid, cstamp, tstamp;
};
struct rtmsg {
	unsigned char rtm_family, rtm_dst_len, rtm_src_len, rtm_tos, rtm_table, rtm_protocol, rtm_scope, rtm_type;
	unsigned rtm_flags;
};
struct rtattr {
	unsigned short rta_len, rta_type;
};
#define NLMSG_ALIGN(len) (((len) + 3) & ~3)
#define NLMSG_HDRLEN ((int)NLMSG_ALIGN(sizeof(struct nlmsghdr)))
#define NLMSG_LENGTH(len) ((len) + NLMSG_HDRLEN)
#define NLMSG_DATA(h) ((void *)((char *)(h) + NLMSG_HDRLEN))
#define NLMSG_OK(h, len) ((len) >= (int)sizeof(struct nlmsghdr) && (h)->nlmsg_len >= sizeof(struct nlmsghdr) && (h)->nlmsg_len <= (unsigned)(len))
#define NLMSG_NEXT(h, len) ((len) -= NLMSG_ALIGN((h)->nlmsg_len), (struct nlmsghdr *)((char *)(h) + NLMSG_ALIGN((h)->nlmsg_len)))
#define RTA_ALIGN(len) (((len) + 3) & ~3)
#define RTA_OK(a, len) ((len) >= (int)sizeof(struct rtattr) && (a)->rta_len >= sizeof(struct rtattr) && (a)->rta_len <= (len))
#define RTA_NEXT(a, len) ((len) -= RTA_ALIGN((a)->rta_len), (struct rtattr *)((char *)(a) + RTA_ALIGN((a)->rta_len)))
#define RTA_LENGTH(len) (RTA_ALIGN(sizeof(struct rtattr)) + (len))
#define RTA_DATA(a) ((void *)((char *)(a) + RTA_LENGTH(0)))
#define RTA_PAYLOAD(a) ((int)((a)->rta_len) - RTA_LENGTH(0))
#define PAYLOAD(h, hdr) ((int)(h)->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(hdr))))
#define FIRST_RTA(p, hdr) ((struct rtattr *)((char *)(p) + NLMSG_ALIGN(sizeof(hdr))))

#ifndef SIOCOUTQ
#define SIOCOUTQ TIOCOUTQ
#endif
#ifndef SIOCINQ
#define SIOCINQ FIONREAD
#endif

static long report(const char *expr, long r) {
	if (r == -1)
		printf("%s = -1 %s\n", expr, ename(errno));
	else
		printf("%s = %ld\n", expr, r);
	fflush(stdout);
	return r;
}
#define T(e) (errno = 0, report(#e, (long)(e)))

static unsigned seq = 100;
static unsigned myport;

// request sends one rtnetlink message of type with the payload given.
static long request(int fd, int type, int flags, const void *payload, int len) {
	char buf[512];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	memset(buf, 0, sizeof buf);
	h->nlmsg_len = NLMSG_LENGTH(len);
	h->nlmsg_type = type;
	h->nlmsg_flags = flags;
	h->nlmsg_seq = ++seq;
	memcpy(NLMSG_DATA(h), payload, len);
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	return sendto(fd, buf, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
}

static void addr(int family, const void *a, char *out) {
	inet_ntop(family, a, out, 64);
}

static void print_link(struct nlmsghdr *h) {
	struct ifinfomsg *ifi = NLMSG_DATA(h);
	printf("  link %d type %u flags %#x", ifi->ifi_index, ifi->ifi_type, ifi->ifi_flags);
	int len = PAYLOAD(h, struct ifinfomsg);
	for (struct rtattr *a = FIRST_RTA(ifi, struct ifinfomsg); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		unsigned char *d = RTA_DATA(a);
		switch (a->rta_type) {
		case IFLA_IFNAME: printf(" name %s", (char *)d); break;
		case IFLA_MTU: printf(" mtu %u", *(unsigned *)d); break;
		case IFLA_TXQLEN: printf(" qlen %u", *(unsigned *)d); break;
		case IFLA_OPERSTATE: printf(" oper %u", d[0]); break;
		case IFLA_QDISC: printf(" qdisc %s", (char *)d); break;
		case IFLA_ADDRESS:
		case IFLA_BROADCAST:
			printf(" %s", a->rta_type == IFLA_ADDRESS ? "hw" : "brd");
			for (unsigned i = 0; i < RTA_PAYLOAD(a); i++)
				printf("%c%02x", i ? ':' : ' ', d[i]);
			break;
		case IFLA_STATS: printf(" stats %u", (unsigned)RTA_PAYLOAD(a)); break;
		}
	}
	printf("\n");
}

static void print_addr(struct nlmsghdr *h) {
	struct ifaddrmsg *ifa = NLMSG_DATA(h);
	printf("  addr family %u len %u flags %#x scope %u index %u", ifa->ifa_family, ifa->ifa_prefixlen,
	       ifa->ifa_flags, ifa->ifa_scope, ifa->ifa_index);
	int len = PAYLOAD(h, struct ifaddrmsg);
	char s[64];
	for (struct rtattr *a = FIRST_RTA(ifa, struct ifaddrmsg); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		switch (a->rta_type) {
		case IFA_ADDRESS: addr(ifa->ifa_family, RTA_DATA(a), s); printf(" address %s", s); break;
		case IFA_LOCAL: addr(ifa->ifa_family, RTA_DATA(a), s); printf(" local %s", s); break;
		case IFA_BROADCAST: addr(ifa->ifa_family, RTA_DATA(a), s); printf(" brd %s", s); break;
		case IFA_LABEL: printf(" label %s", (char *)RTA_DATA(a)); break;
		case IFA_FLAGS: printf(" ifa_flags %#x", *(unsigned *)RTA_DATA(a)); break;
		case IFA_CACHEINFO: {
			struct ifa_cacheinfo *ci = RTA_DATA(a);
			printf(" lft %#x/%#x", ci->ifa_prefered, ci->ifa_valid);
			break;
		}
		}
	}
	printf("\n");
}

static void print_route(struct nlmsghdr *h) {
	struct rtmsg *r = NLMSG_DATA(h);
	printf("  route family %u dst_len %u table %u proto %u scope %u type %u", r->rtm_family, r->rtm_dst_len,
	       r->rtm_table, r->rtm_protocol, r->rtm_scope, r->rtm_type);
	int len = PAYLOAD(h, struct rtmsg);
	char s[64];
	for (struct rtattr *a = FIRST_RTA(r, struct rtmsg); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		switch (a->rta_type) {
		case RTA_DST: addr(r->rtm_family, RTA_DATA(a), s); printf(" dst %s", s); break;
		case RTA_PREFSRC: addr(r->rtm_family, RTA_DATA(a), s); printf(" src %s", s); break;
		case RTA_GATEWAY: addr(r->rtm_family, RTA_DATA(a), s); printf(" via %s", s); break;
		case RTA_OIF: printf(" oif %u", *(unsigned *)RTA_DATA(a)); break;
		case RTA_TABLE: printf(" rta_table %u", *(unsigned *)RTA_DATA(a)); break;
		case RTA_PRIORITY: printf(" metric %u", *(unsigned *)RTA_DATA(a)); break;
		case RTA_PREF: printf(" pref %u", *(unsigned char *)RTA_DATA(a)); break;
		}
	}
	printf("\n");
}

// replies reads until NLMSG_DONE, an error, or nothing more is queued,
// printing each message; the header fields are checked, not printed.
static void replies(int fd) {
	static char buf[32768];
	for (;;) {
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof from;
		memset(&from, 0xff, sizeof from);
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			printf("  recv: %s\n", ename(errno));
			return;
		}
		if (fromlen != sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0 || from.nl_groups != 0)
			printf("  odd sender\n");
		int len = n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != seq || h->nlmsg_pid != myport)
				printf("  seq %u pid ok %d\n", h->nlmsg_seq, h->nlmsg_pid == myport);
			switch (h->nlmsg_type) {
			case NLMSG_DONE:
				printf("  done %d flags %#x\n", *(int *)NLMSG_DATA(h), h->nlmsg_flags);
				return;
			case NLMSG_ERROR: {
				struct nlmsgerr *e = NLMSG_DATA(h);
				printf("  error %s len %u flags %#x quoted type %u len %u\n", ename(-e->error), h->nlmsg_len,
				       h->nlmsg_flags, e->msg.nlmsg_type, e->msg.nlmsg_len);
				if (e->error)
					return;
				break;
			}
			case RTM_NEWLINK: print_link(h); break;
			case RTM_NEWADDR: print_addr(h); break;
			case RTM_NEWROUTE: print_route(h); break;
			default: printf("  type %u\n", h->nlmsg_type);
			}
			if (!(h->nlmsg_flags & NLM_F_MULTI) && h->nlmsg_type != NLMSG_ERROR)
				printf("  (single)\n");
		}
	}
}

static void netlink_basics(void) {
	printf("-- netlink sockets\n");
	T(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE));
	T(socket(AF_NETLINK, SOCK_RAW, 31));
	T(socket(AF_NETLINK, SOCK_RAW, 32));
	T(socket(AF_NETLINK, SOCK_RAW, -1));
	int fd = T(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE));
	struct sockaddr_nl sa;
	socklen_t len = sizeof sa;
	T(getsockname(fd, (struct sockaddr *)&sa, &len));
	printf("unbound: len %u family %u pid %u groups %u\n", len, sa.nl_family, sa.nl_pid, sa.nl_groups);
	T(getpeername(fd, (struct sockaddr *)&sa, &len));
	printf("peer: family %u pid %u\n", sa.nl_family, sa.nl_pid);
	struct sockaddr_nl b = {.nl_family = AF_NETLINK};
	T(bind(fd, (struct sockaddr *)&b, sizeof b - 1));
	b.nl_family = AF_INET;
	T(bind(fd, (struct sockaddr *)&b, sizeof b));
	b.nl_family = AF_NETLINK;
	b.nl_groups = RTMGRP_LINK;
	T(bind(fd, (struct sockaddr *)&b, sizeof b));
	len = sizeof sa;
	T(getsockname(fd, (struct sockaddr *)&sa, &len));
	printf("bound: pid is getpid %d groups %u\n", sa.nl_pid == (unsigned)getpid(), sa.nl_groups);
	b.nl_pid = 12345;
	T(bind(fd, (struct sockaddr *)&b, sizeof b));
	int fd2 = T(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	b.nl_pid = getpid();
	T(bind(fd2, (struct sockaddr *)&b, sizeof b));
	b.nl_pid = 0;
	T(bind(fd2, (struct sockaddr *)&b, sizeof b));
	len = sizeof sa;
	T(getsockname(fd2, (struct sockaddr *)&sa, &len));
	printf("second: negative %d\n", (int)sa.nl_pid < 0);
	T(listen(fd, 1));
	T(shutdown(fd, SHUT_RD));
	int v = 1;
	T(setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof v));
	v = -1;
	len = sizeof v;
	T(getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len));
	printf("ext_ack %d len %u\n", v, len);
	len = 2;
	T(getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len));
	v = 0;
	T(setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &v, sizeof v));
	v = RTNLGRP_IPV4_IFADDR;
	T(setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &v, sizeof v));
	unsigned groups[4] = {0};
	len = sizeof groups;
	T(getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len));
	printf("memberships %#x %#x\n", groups[0], groups[1]);
	T(setsockopt(fd, SOL_NETLINK, 99, &v, sizeof v));
	T(setsockopt(fd, SOL_IP, IP_TTL, &v, sizeof v));
	v = 32768;
	T(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
	len = sizeof v;
	T(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len));
	printf("rcvbuf %d\n", v);
	T(getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len));
	printf("protocol %d\n", v);
	T(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len));
	printf("domain %d\n", v);
	T(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len));
	printf("type %d\n", v);
	close(fd2);
	close(fd);
}

static void netlink_dumps(void) {
	printf("-- netlink dumps\n");
	int fd = T(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	struct sockaddr_nl sa;
	socklen_t len = sizeof sa;
	// The first send binds the socket.
	struct rtgenmsg g = {.rtgen_family = AF_UNSPEC};
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &g, sizeof g));
	T(getsockname(fd, (struct sockaddr *)&sa, &len));
	myport = sa.nl_pid;
	printf("autobound: %d\n", myport == (unsigned)getpid());
	replies(fd);
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, &ifi, sizeof ifi));
	replies(fd);
	for (int fam = 0; fam < 3; fam++) {
		struct ifaddrmsg ifa = {.ifa_family = fam == 0 ? AF_UNSPEC : fam == 1 ? AF_INET : AF_INET6};
		T(request(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifa, sizeof ifa));
		replies(fd);
	}
	struct rtmsg rt = {.rtm_family = AF_UNSPEC};
	T(request(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &rt, sizeof rt));
	replies(fd);
	rt.rtm_family = AF_INET6;
	T(request(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &rt, sizeof rt));
	replies(fd);

	printf("-- netlink requests\n");
	ifi.ifi_index = 1;
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi));
	replies(fd);
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi));
	replies(fd);
	replies(fd);
	ifi.ifi_index = 99;
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi));
	replies(fd);
	ifi.ifi_index = 0;
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi));
	replies(fd);
	struct {
		struct ifinfomsg ifi;
		struct rtattr a;
		char name[4];
	} byname = {{.ifi_family = AF_UNSPEC}, {RTA_LENGTH(3), IFLA_IFNAME}, "lo"};
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST, &byname, sizeof byname));
	replies(fd);
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, 2));
	replies(fd);
	T(request(fd, 0x7fff, NLM_F_REQUEST | NLM_F_ACK, &g, sizeof g));
	replies(fd);
	T(request(fd, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, &g, sizeof g));
	replies(fd);
	T(request(fd, RTM_GETLINK, NLM_F_ACK, &g, sizeof g));
	replies(fd);
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, &g, 0));
	replies(fd);

	// A message longer than what was sent is dropped; two in one send
	// are both answered.
	char two[64] = {0};
	struct nlmsghdr *h = (struct nlmsghdr *)two;
	h->nlmsg_len = 40;
	h->nlmsg_type = RTM_GETLINK;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = ++seq;
	T(send(fd, two, 24, 0));
	replies(fd);
	h->nlmsg_len = 17;
	h->nlmsg_type = NLMSG_NOOP;
	memcpy(two + 20, two, 20);
	T(send(fd, two, 40, 0));
	replies(fd);
	replies(fd);

	printf("-- netlink peek and truncation\n");
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST, &(struct ifinfomsg){.ifi_index = 1}, sizeof ifi));
	char small[8];
	long full = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
	struct iovec iov = {small, sizeof small};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	long got = T(recvmsg(fd, &m, MSG_PEEK));
	printf("peeked %ld, full length over 256 %d, flags %#x\n", got, full > 256, m.msg_flags);
	T(recv(fd, small, sizeof small, MSG_TRUNC) == full);
	T(recv(fd, small, sizeof small, MSG_DONTWAIT));
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST, &(struct ifinfomsg){.ifi_index = 1}, sizeof ifi));
	int q = -1;
	T(ioctl(fd, FIONREAD, &q));
	T(read(fd, small, sizeof small));
	T(write(fd, small, 0));
	struct sockaddr_nl bad = {.nl_family = AF_INET};
	T(sendto(fd, two, 20, 0, (struct sockaddr *)&bad, sizeof bad));
	T(sendto(fd, two, 20, 0, (struct sockaddr *)&bad, 4));
	T(sendto(fd, two, 20, MSG_OOB, NULL, 0));
	close(fd);
}

// strict repeats dumps with NETLINK_GET_STRICT_CHK on, as iproute2 sends
// them, and with headers strict checking refuses.
static void strict(void) {
	printf("-- netlink strict checking\n");
	int fd = T(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	socklen_t len = sizeof sa;
	T(bind(fd, (struct sockaddr *)&sa, sizeof sa));
	T(getsockname(fd, (struct sockaddr *)&sa, &len));
	myport = sa.nl_pid;
	int on = 1;
	T(setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &on, sizeof on));
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi));
	replies(fd);
	ifi.ifi_index = 1;
	T(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi));
	replies(fd);
	struct ifaddrmsg ifa = {.ifa_family = AF_INET6, .ifa_index = 1};
	T(request(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifa, sizeof ifa));
	replies(fd);
	ifa.ifa_index = 7;
	T(request(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifa, sizeof ifa));
	replies(fd);
	ifa.ifa_scope = 1;
	T(request(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifa, sizeof ifa));
	replies(fd);
	struct {
		struct rtmsg r;
		struct rtattr a;
		unsigned table;
	} rt = {{.rtm_family = AF_INET}, {RTA_LENGTH(4), RTA_TABLE}, RT_TABLE_MAIN};
	T(request(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &rt, sizeof rt));
	replies(fd);
	rt.table = RT_TABLE_LOCAL;
	T(request(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &rt, sizeof rt));
	replies(fd);
	rt.a.rta_type = RTA_DST;
	T(request(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &rt, sizeof rt));
	replies(fd);
	close(fd);
}

static void ifaddrs(void) {
	printf("-- getifaddrs\n");
	struct ifaddrs *list;
	if (T(getifaddrs(&list)) != 0)
		return;
	char a[64], m[64], b[64];
	for (struct ifaddrs *i = list; i; i = i->ifa_next) {
		int fam = i->ifa_addr ? i->ifa_addr->sa_family : -1;
		printf("%s family %d flags %#x", i->ifa_name, fam, i->ifa_flags);
		if (fam == AF_INET || fam == AF_INET6) {
			int off = fam == AF_INET ? offsetof(struct sockaddr_in, sin_addr) : offsetof(struct sockaddr_in6, sin6_addr);
			addr(fam, (char *)i->ifa_addr + off, a);
			addr(fam, (char *)i->ifa_netmask + off, m);
			printf(" %s mask %s", a, m);
			if (i->ifa_broadaddr && (i->ifa_flags & IFF_BROADCAST)) {
				addr(fam, (char *)i->ifa_broadaddr + off, b);
				printf(" brd %s", b);
			}
		}
		printf("\n");
	}
	freeifaddrs(list);
	struct if_nameindex *ni = if_nameindex();
	for (struct if_nameindex *p = ni; p && p->if_index; p++)
		printf("if_nameindex %u %s\n", p->if_index, p->if_name);
	if_freenameindex(ni);
	T(if_nametoindex("lo"));
	T(if_nametoindex("nope"));
	char name[IF_NAMESIZE];
	printf("if_indextoname %s\n", if_indextoname(1, name));

	struct addrinfo hints = {.ai_flags = AI_ADDRCONFIG | AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *res;
	int r = getaddrinfo(NULL, "80", &hints, &res);
	printf("getaddrinfo AI_ADDRCONFIG: %d\n", r);
	for (struct addrinfo *p = r == 0 ? res : NULL; p; p = p->ai_next)
		printf("  family %d\n", p->ai_family);
	if (r == 0)
		freeaddrinfo(res);
	hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICHOST;
	r = getaddrinfo("::1", "80", &hints, &res);
	printf("getaddrinfo ::1 AI_ADDRCONFIG: %d\n", r);
	if (r == 0)
		freeaddrinfo(res);
}

static void ioctls(void) {
	printf("-- interface ioctls\n");
	int socks[] = {socket(AF_INET, SOCK_DGRAM, 0), socket(AF_INET6, SOCK_STREAM, 0), socket(AF_UNIX, SOCK_STREAM, 0)};
	for (int k = 0; k < 3; k++) {
		int fd = socks[k];
		struct ifconf ifc = {.ifc_len = 0, .ifc_buf = NULL};
		T(ioctl(fd, SIOCGIFCONF, &ifc));
		printf("ifconf needs %d\n", ifc.ifc_len);
		struct ifreq reqs[8];
		ifc.ifc_len = sizeof reqs;
		ifc.ifc_req = reqs;
		T(ioctl(fd, SIOCGIFCONF, &ifc));
		for (int i = 0; i < ifc.ifc_len / (int)sizeof(struct ifreq); i++) {
			char a[64];
			addr(AF_INET, &((struct sockaddr_in *)&reqs[i].ifr_addr)->sin_addr, a);
			printf("ifconf %s family %d %s\n", reqs[i].ifr_name, reqs[i].ifr_addr.sa_family, a);
		}
		ifc.ifc_len = sizeof(struct ifreq) - 1;
		T(ioctl(fd, SIOCGIFCONF, &ifc));
		printf("ifconf short len %d\n", ifc.ifc_len);
		ifc.ifc_len = sizeof reqs;
		ifc.ifc_buf = (char *)8;
		T(ioctl(fd, SIOCGIFCONF, &ifc));
		T(ioctl(fd, SIOCGIFCONF, (void *)8));

		struct ifreq r;
		memset(&r, 0, sizeof r);
		strcpy(r.ifr_name, "lo");
		T(ioctl(fd, SIOCGIFFLAGS, &r));
		printf("flags %#x\n", r.ifr_flags);
		T(ioctl(fd, SIOCGIFINDEX, &r));
		printf("index %d\n", r.ifr_ifindex);
		T(ioctl(fd, SIOCGIFMTU, &r));
		printf("mtu %d\n", r.ifr_mtu);
		T(ioctl(fd, SIOCGIFHWADDR, &r));
		printf("hwaddr family %d %02x%02x%02x%02x%02x%02x\n", r.ifr_hwaddr.sa_family, r.ifr_hwaddr.sa_data[0],
		       r.ifr_hwaddr.sa_data[1], r.ifr_hwaddr.sa_data[2], r.ifr_hwaddr.sa_data[3], r.ifr_hwaddr.sa_data[4],
		       r.ifr_hwaddr.sa_data[5]);
		char a[64];
		if (T(ioctl(fd, SIOCGIFADDR, &r)) == 0) {
			addr(AF_INET, &((struct sockaddr_in *)&r.ifr_addr)->sin_addr, a);
			printf("addr family %d %s\n", r.ifr_addr.sa_family, a);
		}
		if (T(ioctl(fd, SIOCGIFNETMASK, &r)) == 0) {
			addr(AF_INET, &((struct sockaddr_in *)&r.ifr_netmask)->sin_addr, a);
			printf("netmask family %d %s\n", r.ifr_netmask.sa_family, a);
		}
		T(ioctl(fd, SIOCGIFBRDADDR, &r));
		memset(&r, 0, sizeof r);
		r.ifr_ifindex = 1;
		T(ioctl(fd, SIOCGIFNAME, &r));
		printf("name %s\n", r.ifr_name);
		r.ifr_ifindex = 99;
		T(ioctl(fd, SIOCGIFNAME, &r));
		strcpy(r.ifr_name, "nope");
		T(ioctl(fd, SIOCGIFFLAGS, &r));
		T(ioctl(fd, SIOCGIFINDEX, &r));
		memset(r.ifr_name, 'x', sizeof r.ifr_name);
		T(ioctl(fd, SIOCGIFFLAGS, &r));
		T(ioctl(fd, SIOCGIFFLAGS, (void *)8));
		close(fd);
	}
	printf("-- queue ioctls\n");
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sin;
	bind(l, (struct sockaddr *)&sin, sizeof sin);
	listen(l, 1);
	getsockname(l, (struct sockaddr *)&sin, &len);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	int n = -1;
	T(ioctl(c, SIOCOUTQ, &n));
	printf("unconnected outq %d\n", n);
	T(ioctl(c, SIOCINQ, &n));
	printf("unconnected inq %d\n", n);
	T(ioctl(l, SIOCINQ, &n));
	connect(c, (struct sockaddr *)&sin, sizeof sin);
	int a = accept(l, NULL, NULL);
	T(ioctl(c, SIOCOUTQ, &n));
	printf("idle outq %d\n", n);
	T(write(c, "hello", 5));
	usleep(100000);
	T(ioctl(a, SIOCINQ, &n));
	printf("inq %d\n", n);
	T(ioctl(c, SIOCOUTQ, (void *)8));
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	T(ioctl(u, SIOCOUTQ, &n));
	printf("udp outq %d\n", n);
	T(sendto(u, "abc", 3, 0, (struct sockaddr *)&sin, sizeof sin));
	close(u);

	printf("-- TCP_INFO\n");
	struct tcp_info ti;
	memset(&ti, 0xff, sizeof ti);
	len = sizeof ti;
	T(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len));
	printf("len %u state %u ca_state %u retransmits %u options %#x rto>0 %d snd_mss>0 %d rcv_mss>0 %d unacked %u\n",
	       len == sizeof ti, ti.tcpi_state, ti.tcpi_ca_state, ti.tcpi_retransmits, ti.tcpi_options & TCPI_OPT_SACK,
	       ti.tcpi_rto > 0, ti.tcpi_snd_mss > 0, ti.tcpi_rcv_mss > 0, ti.tcpi_unacked);
	len = 4;
	memset(&ti, 0xff, sizeof ti);
	T(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len));
	printf("short len %u state %u ca_state %u retransmits %u probes %u\n", len, ti.tcpi_state, ti.tcpi_ca_state,
	       ti.tcpi_retransmits, ti.tcpi_probes);
	len = 0;
	T(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len));
	printf("zero len %u\n", len);
	len = -1;
	T(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len));
	len = sizeof ti;
	T(getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &len));
	printf("listener state %u\n", ti.tcpi_state);
	close(a);
	usleep(100000);
	len = sizeof ti;
	T(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len));
	printf("after peer close state %u\n", ti.tcpi_state);
	close(c);
	close(l);
}

// The sockets procnet makes, named by their inode numbers.
static struct {
	unsigned long ino;
	const char *name;
} known[16];
static int nknown;

static void know(int fd, const char *name) {
	struct stat st;
	fstat(fd, &st);
	known[nknown].ino = st.st_ino;
	known[nknown++].name = name;
}

static const char *sockname(unsigned long ino) {
	for (int i = 0; i < nknown; i++)
		if (known[i].ino == ino)
			return known[i].name;
	return "other";
}

static char *slurp(const char *path) {
	static char buf[65536];
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("%s: %s\n", path, ename(errno));
		return NULL;
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

// Rows of a table, printed in the order the sockets were made (Linux
// lists them in hash order).
static struct {
	unsigned long ino;
	char text[200];
} rows[64];
static int nrows;

static void row(unsigned long ino, const char *text) {
	if (nrows < 64) {
		rows[nrows].ino = ino;
		snprintf(rows[nrows++].text, sizeof rows[0].text, "%s", text);
	}
}

static void print_rows(void) {
	for (int k = 0; k < nknown; k++)
		for (int i = 0; i < nrows; i++)
			if (rows[i].ino == known[k].ino)
				printf("  %s %s\n", known[k].name, rows[i].text);
	for (int i = 0; i < nrows; i++)
		if (!strcmp(sockname(rows[i].ino), "other"))
			printf("  other %s\n", rows[i].text);
	nrows = 0;
}

// inet_table prints a /proc/net socket table's header as it is and, of
// each row, the fields that do not depend on timing: the addresses (a
// port as "port" when not 0), the state and the uid.
static void inet_table(const char *path) {
	char *text = slurp(path);
	if (!text)
		return;
	printf("%s:\n", path);
	char *save, *line = strtok_r(text, "\n", &save);
	size_t width = strlen(line);
	printf("  header [%s] length %zu\n", line, width);
	while ((line = strtok_r(NULL, "\n", &save))) {
		char local[64], remote[64], out[200];
		unsigned st, uid;
		unsigned long ino;
		if (sscanf(line, "%*d: %63s %63s %x %*x:%*x %*x:%*x %*x %u %*d %lu", local, remote, &st, &uid, &ino) != 5) {
			printf("  unparsed [%s]\n", line);
			continue;
		}
		char *ends[] = {local, remote};
		for (int i = 0; i < 2; i++) {
			char *colon = strchr(ends[i], ':');
			if (colon && strcmp(colon, ":0000") != 0)
				strcpy(colon, ":port");
		}
		snprintf(out, sizeof out, "%s %s %02X uid %u%s", local, remote, st, uid, strlen(line) == width ? " padded" : "");
		row(ino, out);
	}
	print_rows();
}

static void unix_table(void) {
	char *text = slurp("/proc/net/unix");
	if (!text)
		return;
	char *save, *line = strtok_r(text, "\n", &save);
	printf("/proc/net/unix:\n  header [%s]\n", line);
	while ((line = strtok_r(NULL, "\n", &save))) {
		unsigned flags, type, st;
		unsigned long ino;
		char path[128] = "", out[200];
		if (sscanf(line, "%*x: %*x %*x %x %x %x %lu %127s", &flags, &type, &st, &ino, path) < 4) {
			printf("  unparsed [%s]\n", line);
			continue;
		}
		snprintf(out, sizeof out, "flags %05X type %04X st %02X %s", flags, type, st, path);
		row(ino, out);
	}
	print_rows();
}

// procnet makes sockets of each kind and reads them back from /proc/net.
static void procnet(void) {
	printf("-- /proc/net\n");
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	bind(l, (struct sockaddr *)&sin, sizeof sin);
	listen(l, 4);
	getsockname(l, (struct sockaddr *)&sin, &len);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	connect(c, (struct sockaddr *)&sin, sizeof sin);
	int a = accept(l, NULL, NULL);
	int unbound = socket(AF_INET, SOCK_STREAM, 0);
	know(l, "tcp-listener");
	know(c, "tcp-client");
	know(a, "tcp-accepted");
	know(unbound, "tcp-unbound");
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int l6 = socket(AF_INET6, SOCK_STREAM, 0);
	bind(l6, (struct sockaddr *)&sin6, sizeof sin6);
	listen(l6, 1);
	know(l6, "tcp6-listener");
	sin.sin_port = 0;
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	bind(u, (struct sockaddr *)&sin, sizeof sin);
	know(u, "udp-bound");
	len = sizeof sin;
	getsockname(u, (struct sockaddr *)&sin, &len);
	int uc = socket(AF_INET, SOCK_DGRAM, 0);
	connect(uc, (struct sockaddr *)&sin, sizeof sin);
	know(uc, "udp-connected");
	int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
	bind(u6, (struct sockaddr *)&sin6, sizeof sin6);
	know(u6, "udp6-bound");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, "\0netconf-test", 13);
	int ul = socket(AF_UNIX, SOCK_STREAM, 0);
	bind(ul, (struct sockaddr *)&sun, offsetof(struct sockaddr_un, sun_path) + 13);
	listen(ul, 1);
	know(ul, "unix-listener");
	int pair[2];
	socketpair(AF_UNIX, SOCK_DGRAM, 0, pair);
	know(pair[0], "unix-pair");
	know(pair[1], "unix-pair-peer");
	int ud = socket(AF_UNIX, SOCK_DGRAM, 0);
	sun.sun_path[1] = 'd';
	bind(ud, (struct sockaddr *)&sun, offsetof(struct sockaddr_un, sun_path) + 13);
	know(ud, "unix-dgram");
	int udc = socket(AF_UNIX, SOCK_DGRAM, 0);
	connect(udc, (struct sockaddr *)&sun, offsetof(struct sockaddr_un, sun_path) + 13);
	know(udc, "unix-dgram-connected");
	int uc2 = socket(AF_UNIX, SOCK_STREAM, 0);
	sun.sun_path[1] = 'n';
	connect(uc2, (struct sockaddr *)&sun, offsetof(struct sockaddr_un, sun_path) + 13);
	know(uc2, "unix-stream-client");
	int us = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	know(us, "unix-seqpacket");
	inet_table("/proc/net/tcp");
	inet_table("/proc/net/tcp6");
	inet_table("/proc/net/udp");
	inet_table("/proc/net/udp6");
	unix_table();
	char *tcp = strdup(slurp("/proc/net/tcp"));
	char *self = slurp("/proc/self/net/tcp");
	printf("/proc/self/net/tcp is /proc/net/tcp: %d\n", self && strcmp(tcp, self) == 0);
	free(tcp);
	char *text = slurp("/proc/net/dev");
	if (text) {
		char *save, *line = strtok_r(text, "\n", &save);
		printf("/proc/net/dev:\n%s\n", line);
		line = strtok_r(NULL, "\n", &save);
		printf("%s\n", line);
		while ((line = strtok_r(NULL, "\n", &save)))
			printf("  %.7s\n", line);
	}
	text = slurp("/proc/net/if_inet6");
	printf("/proc/net/if_inet6:\n%s", text ? text : "");
	text = slurp("/proc/net/route");
	printf("/proc/net/route:\n%s", text ? text : "");
	int fds[] = {l, c, a, unbound, l6, u, uc, u6, ul, pair[0], pair[1], us, ud, udc, uc2};
	for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++)
		close(fds[i]);
}

// ping sends ICMP echo requests over ping sockets to 127.0.0.1 and ::1
// and checks the replies: type, code, sequence, the identifier the
// socket's port gives, and the data.
static void ping(void) {
	printf("-- ping sockets\n");
	T(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6));
	T(socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMP));
	for (int v6 = 0; v6 < 2; v6++) {
		int fd = T(socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP));
		int v = -1;
		socklen_t len = sizeof v;
		T(getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len));
		printf("protocol %d\n", v);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		struct sockaddr *to = v6 ? (struct sockaddr *)&sin6 : (struct sockaddr *)&sin;
		socklen_t tolen = v6 ? sizeof sin6 : sizeof sin;
		for (int seqno = 1; seqno <= 2; seqno++) {
			unsigned char req[64] = {v6 ? 128 : 8, 0, 0, 0, 0x12, 0x34, 0, seqno};
			for (int i = 8; i < 64; i++)
				req[i] = i;
			T(sendto(fd, req, sizeof req, 0, to, tolen));
			unsigned char rep[128];
			struct sockaddr_in6 from;
			socklen_t fromlen = sizeof from;
			long n = T(recvfrom(fd, rep, sizeof rep, 0, (struct sockaddr *)&from, &fromlen));
			struct sockaddr_in6 self;
			socklen_t selflen = sizeof self;
			getsockname(fd, (struct sockaddr *)&self, &selflen);
			unsigned short id = rep[4] << 8 | rep[5];
			printf("reply type %u code %u seq %u id is port %d data same %d from family %d len %u port %u\n", rep[0],
			       rep[1], rep[7], id == ntohs(self.sin6_port), n == 64 && memcmp(rep + 8, req + 8, 56) == 0,
			       from.sin6_family, fromlen, ntohs(from.sin6_port));
		}
		unsigned char bad[4] = {v6 ? 128 : 8};
		T(sendto(fd, bad, sizeof bad, 0, to, tolen));
		unsigned char reply[8] = {0};
		T(sendto(fd, reply, sizeof reply, 0, to, tolen));
		close(fd);
	}
}

// unprivileged checks what a process without CAP_NET_ADMIN may not do.
static void unprivileged(void) {
	printf("-- unprivileged\n");
	if (getuid() == 0 && setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) != 0)
		printf("setresuid failed\n");
	int fd = T(socket(AF_INET, SOCK_DGRAM, 0));
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "lo");
	T(ioctl(fd, SIOCSIFFLAGS, &r));
	T(ioctl(fd, SIOCSIFMTU, &r));
	T(ioctl(fd, SIOCSIFADDR, &r));
	close(fd);
	int nl = T(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	struct sockaddr_nl sa;
	socklen_t len = sizeof sa;
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = 8, .ifa_index = 1};
	T(request(nl, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, &ifa, sizeof ifa));
	T(getsockname(nl, (struct sockaddr *)&sa, &len));
	myport = sa.nl_pid;
	replies(nl);
	struct ifinfomsg ifi = {.ifi_index = 1};
	T(request(nl, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi));
	replies(nl);
	struct sockaddr_nl peer = {.nl_family = AF_NETLINK, .nl_pid = 1};
	T(connect(nl, (struct sockaddr *)&peer, sizeof peer));
	T(sendto(nl, &ifi, sizeof ifi, 0, (struct sockaddr *)&peer, sizeof peer));
	peer.nl_pid = 0;
	peer.nl_groups = 1;
	T(sendto(nl, &ifi, sizeof ifi, 0, (struct sockaddr *)&peer, sizeof peer));
	peer.nl_family = AF_UNSPEC;
	T(connect(nl, (struct sockaddr *)&peer, sizeof peer));
	close(nl);
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	netlink_basics();
	netlink_dumps();
	strict();
	ifaddrs();
	ioctls();
	procnet();
	ping();
	unprivileged();
	return 0;
}
