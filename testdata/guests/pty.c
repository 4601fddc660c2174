// pty exercises pseudo-terminals: posix_openpt, grantpt, unlockpt and
// ptsname, the slave's name and device number, canonical line editing
// with echo, raw reads with VMIN and VTIME, ^C raising SIGINT in the
// foreground group of the terminal's session, the window size and
// SIGWINCH, the controlling terminal, EIO on the master once the slave
// has closed and SIGHUP once the master has. It prints what it reads
// (escaped) and the results of its calls, and nothing that differs from
// one machine to another (the pty's number), so that a native run and a
// sandboxed one compare equal.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441
#endif

static const char *ename(int e) {
	switch (e) {
#define E(x) case x: return #x;
	E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(ENXIO) E(EBADF) E(EAGAIN)
	E(EINVAL) E(ENOTTY) E(ESRCH)
#undef E
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

static long report(const char *expr, long r) {
	if (r == -1)
		printf("%s = -1 %s\n", expr, ename(errno));
	else
		printf("%s = %ld\n", expr, r);
	fflush(stdout);
	return r;
}

#define T(e) (errno = 0, report(#e, (long)(e)))

static void show(const char *what, const char *buf, long n) {
	printf("%s: %ld \"", what, n);
	for (long i = 0; i < n; i++) {
		unsigned char c = buf[i];
		if (c == '\\')
			printf("\\\\");
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	printf("\"\n");
	fflush(stdout);
}

// readn reads from fd until it has n bytes or nothing more comes for a
// while: a pty's echo may arrive in pieces.
static long readn(int fd, char *buf, long n) {
	long got = 0;
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			break;
		long r = read(fd, buf + got, n - got);
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

// expect reads what the master should now have (the echo) and shows it.
static void expect(int master, const char *what, long n) {
	char buf[256];
	show(what, buf, readn(master, buf, n));
}

static void slave_read(int slave, long size) {
	char buf[256];
	long n = read(slave, buf, size);
	if (n < 0)
		T(n);
	else
		show("slave read", buf, n);
}

static void put(int master, const char *s) {
	if (write(master, s, strlen(s)) != (long)strlen(s))
		T(-1);
}

static int open_pair(int *master) {
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0) {
		T(m);
		exit(1);
	}
	*master = m;
	int locked = -1;
	T(ioctl(m, TIOCGPTLCK, &locked));
	printf("locked %d\n", locked);
	T(grantpt(m));
	T(open(ptsname(m), O_RDWR | O_NOCTTY));
	T(unlockpt(m));
	T(ioctl(m, TIOCGPTLCK, &locked));
	printf("locked %d\n", locked);
	int s = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (s < 0) {
		T(s);
		exit(1);
	}
	return s;
}

static void names(int master, int slave) {
	char *pts = strdup(ptsname(master));
	printf("ptsname under /dev/pts: %d\n", strncmp(pts, "/dev/pts/", 9) == 0);
	char *name = ttyname(slave);
	printf("ttyname is ptsname: %d\n", name && strcmp(name, pts) == 0);
	printf("isatty master %d slave %d bad fd %d\n", isatty(master), isatty(slave), isatty(-1));
	struct stat st, fst;
	T(stat(pts, &st));
	T(fstat(slave, &fst));
	printf("slave: chr %d major %u same as fstat %d\n", S_ISCHR(st.st_mode), major(st.st_rdev),
	       st.st_rdev == fst.st_rdev && st.st_ino == fst.st_ino && st.st_dev == fst.st_dev);
	unsigned n = 0;
	T(ioctl(master, TIOCGPTN, &n));
	char want[32];
	snprintf(want, sizeof want, "/dev/pts/%u", n);
	printf("TIOCGPTN names ptsname: %d\n", strcmp(want, pts) == 0);
	T(ioctl(slave, TIOCGPTN, &n));
	int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	T(peer >= 0);
	name = ttyname(peer);
	printf("peer ttyname is ptsname: %d\n", name && strcmp(name, pts) == 0);
	close(peer);
	free(pts);
}

static void defaults(int master, int slave) {
	struct termios t = {0}, tm = {0};
	T(tcgetattr(slave, &t));
	T(tcgetattr(master, &tm));
	printf("termios iflag %#x oflag %#x cflag %#x lflag %#x same on master %d\n", t.c_iflag, t.c_oflag,
	       t.c_cflag, t.c_lflag, memcmp(&t, &tm, sizeof t) == 0);
	printf("cc");
	for (int i = 0; i <= VEOL2; i++)
		printf(" %d", t.c_cc[i]);
	printf("\nspeed %u %u\n", (unsigned)cfgetispeed(&t), (unsigned)cfgetospeed(&t));
}

static void canonical(int master, int slave) {
	put(master, "hello\n");
	slave_read(slave, 100);
	expect(master, "echo", 7);
	put(master, "abc\x7f\x7f" "d\n");
	slave_read(slave, 100);
	expect(master, "echo", 12);
	put(master, "xyz\x15q\n");
	slave_read(slave, 100);
	expect(master, "echo", 15);
	put(master, "ab\tc\x7f\x7f" "e\r");
	slave_read(slave, 100);
	expect(master, "echo", 16);
	put(master, "one two\x17" "three\n");
	slave_read(slave, 100);
	expect(master, "echo", 23);
	put(master, "\x04");
	slave_read(slave, 100);
	put(master, "ab\x04");
	slave_read(slave, 100);
	expect(master, "echo", 2);
	put(master, "abcdef\n");
	slave_read(slave, 3);
	slave_read(slave, 100);
	expect(master, "echo", 8);
	put(master, "x\x16\x7fy\n");
	slave_read(slave, 100);
	expect(master, "echo", 8);

	put(master, "ab\ncd");
	struct pollfd p = {.fd = slave, .events = POLLIN};
	T(poll(&p, 1, 2000));
	int n = -1;
	T(ioctl(slave, FIONREAD, &n));
	printf("FIONREAD %d\n", n);
	expect(master, "echo", 6);
	T(tcflush(slave, TCIFLUSH));
	T(ioctl(slave, FIONREAD, &n));
	printf("FIONREAD after flush %d\n", n);
	T(tcflush(slave, 7));
	int fl = fcntl(slave, F_GETFL);
	fcntl(slave, F_SETFL, fl | O_NONBLOCK);
	T(read(slave, &n, 1));
	fcntl(slave, F_SETFL, fl);

	struct termios t;
	tcgetattr(slave, &t);
	t.c_lflag |= ECHONL;
	t.c_lflag &= ~ECHO;
	tcsetattr(slave, TCSANOW, &t);
	put(master, "secret\n");
	slave_read(slave, 100);
	expect(master, "echo", 2);
	t.c_lflag |= ECHO;
	t.c_lflag &= ~ECHONL;
	t.c_oflag &= ~ONLCR;
	t.c_iflag &= ~ICRNL;
	tcsetattr(slave, TCSANOW, &t);
	put(master, "a\rb\n");
	slave_read(slave, 100);
	expect(master, "echo", 5);
	t.c_iflag |= IGNCR;
	tcsetattr(slave, TCSANOW, &t);
	put(master, "c\rd\n");
	slave_read(slave, 100);
	expect(master, "echo", 3);
	t.c_iflag = ICRNL | IXON;
	t.c_oflag = OPOST | ONLCR;
	tcsetattr(slave, TCSANOW, &t);
}

static void raw(int master, int slave) {
	struct termios saved, t;
	tcgetattr(slave, &saved);
	t = saved;
	t.c_lflag &= ~(ICANON | ISIG);
	t.c_cc[VMIN] = 3;
	t.c_cc[VTIME] = 0;
	T(tcsetattr(slave, TCSAFLUSH, &t));
	put(master, "xyz\n");
	slave_read(slave, 2);
	expect(master, "echo", 5);
	t.c_cc[VMIN] = 0;
	T(tcsetattr(slave, TCSANOW, &t));
	slave_read(slave, 100);
	slave_read(slave, 100);
	t.c_cc[VTIME] = 1;
	T(tcsetattr(slave, TCSANOW, &t));
	slave_read(slave, 100);
	put(master, "\x03");
	slave_read(slave, 100);
	expect(master, "echo", 2);
	T(tcsetattr(slave, TCSANOW, &saved));
	// Output processing of what the slave writes.
	T(write(slave, "out\n\ttab\n", 9));
	expect(master, "output", 11);
	t = saved;
	t.c_oflag &= ~OPOST;
	T(tcsetattr(slave, TCSANOW, &t));
	T(write(slave, "raw\n", 4));
	expect(master, "output", 4);
	T(tcsetattr(slave, TCSANOW, &saved));
	struct pollfd p = {.fd = master, .events = POLLIN | POLLOUT};
	T(poll(&p, 1, 0));
	printf("master revents %#x\n", p.revents);
}

static volatile sig_atomic_t got_int, got_winch, got_hup, got_ttin, got_ttou;
static void on_signal(int sig) {
	if (sig == SIGTTIN)
		got_ttin = 1;
	if (sig == SIGTTOU)
		got_ttou = 1;
	if (sig == SIGINT)
		got_int = 1;
	if (sig == SIGWINCH)
		got_winch = 1;
	if (sig == SIGHUP)
		got_hup = 1;
}

// catch installs on_signal for sig, which stays blocked until a
// sigsuspend or ppoll lets it in: no race with its arrival.
static void catch(int sig) {
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(sig, &sa, NULL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

static void signal_parent(int fd) {
	if (write(fd, "r", 1) != 1)
		exit(1);
}

static void wait_child(int fd) {
	char c;
	if (read(fd, &c, 1) != 1)
		exit(1);
}

// session runs a child that makes the pty its controlling terminal and
// reports what job control gives it, while the parent types ^C and
// resizes the window.
static void session(int master, int slave) {
	int ready[2];
	if (pipe(ready))
		exit(1);
	struct winsize ws = {.ws_row = 24, .ws_col = 80};
	T(ioctl(master, TIOCSWINSZ, &ws));
	pid_t pid = fork();
	if (pid == 0) {
		catch(SIGINT);
		catch(SIGWINCH);
		close(ready[0]);
		T(ioctl(slave, TIOCGPGRP, &(int){0}));
		T(setsid() == getpid());
		int noctty = open(ptsname(master), O_RDWR | O_NOCTTY);
		T(ioctl(noctty, TIOCGPGRP, &(int){0}));
		T(open("/dev/tty", O_RDWR));
		int s = open(ptsname(master), O_RDWR);
		T(s >= 0);
		int pg = 0, sid = 0;
		T(ioctl(s, TIOCGPGRP, &pg));
		T(ioctl(s, TIOCGSID, &sid));
		printf("child: foreground is me %d, session is me %d, tcgetpgrp %d\n", pg == getpid(),
		       sid == getpid(), tcgetpgrp(s) == getpid());
		T(ioctl(s, TIOCSCTTY, 0));
		T(ioctl(noctty, TIOCSPGRP, &(int){999999}));
		T(ioctl(noctty, TIOCSPGRP, &(int){-1}));
		T(ioctl(noctty, TIOCSPGRP, &pg));
		int tty = open("/dev/tty", O_RDWR);
		T(tty >= 0);
		T(write(tty, "via /dev/tty\n", 13));
		T(isatty(tty));
		signal_parent(ready[1]);
		sigset_t none;
		sigemptyset(&none);
		struct pollfd p = {.fd = s, .events = POLLIN};
		T(ppoll(&p, 1, NULL, &none));
		printf("child: SIGINT %d\n", got_int);
		signal_parent(ready[1]);
		slave_read(s, 100);
		signal_parent(ready[1]);
		while (!got_winch)
			sigsuspend(&none);
		struct winsize w;
		T(ioctl(s, TIOCGWINSZ, &w));
		printf("child: SIGWINCH, window %dx%d\n", w.ws_row, w.ws_col);
		_exit(0);
	}
	close(ready[1]);
	wait_child(ready[0]);
	expect(master, "from child", 14);
	int pg = 0;
	T(ioctl(master, TIOCGPGRP, &pg));
	printf("master sees the child's group %d\n", pg == pid);
	// The ^C flushes the input and the echoes not yet made of the same
	// write: only ^C shows.
	put(master, "partial\x03");
	wait_child(ready[0]);
	expect(master, "echo", 2);
	put(master, "after\n");
	wait_child(ready[0]);
	expect(master, "echo", 7);
	ws.ws_row = 50;
	ws.ws_col = 132;
	// The child reports the SIGWINCH at once: say how the ioctl went
	// after it has finished.
	long resized = ioctl(master, TIOCSWINSZ, &ws);
	int status;
	T(waitpid(pid, &status, 0) == pid);
	report("ioctl(master, TIOCSWINSZ, &ws)", resized);
	printf("child status %#x\n", status);
	T(ioctl(master, TIOCGWINSZ, &ws));
	printf("window %dx%d\n", ws.ws_row, ws.ws_col);
	close(ready[0]);
}

// handle runs on_signal for sig, unblocked and without SA_RESTART.
static void handle(int sig) {
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(sig, &sa, NULL);
}

// background has a process of a background group of the terminal's
// session read and write it: SIGTTIN, EIO when it ignores SIGTTIN,
// SIGTTOU for a write under TOSTOP.
static void background(int master) {
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		int s = open(ptsname(master), O_RDWR);
		pid_t bg = fork();
		if (bg == 0) {
			T(setpgid(0, 0));
			handle(SIGTTIN);
			char c;
			T(read(s, &c, 1));
			printf("background: SIGTTIN %d\n", got_ttin);
			signal(SIGTTIN, SIG_IGN);
			T(read(s, &c, 1));
			T(write(s, "bg\n", 3));
			signal(SIGTTOU, SIG_IGN);
			struct termios t;
			tcgetattr(s, &t);
			t.c_lflag |= TOSTOP;
			T(tcsetattr(s, TCSANOW, &t));
			T(write(s, "bg\n", 3));
			handle(SIGTTOU);
			T(write(s, "bg\n", 3));
			T(tcflush(s, TCIFLUSH));
			printf("background: SIGTTOU %d\n", got_ttou);
			_exit(0);
		}
		int status;
		waitpid(bg, &status, 0);
		printf("background status %#x\n", status);
		_exit(0);
	}
	int status;
	T(waitpid(pid, &status, 0) == pid);
	expect(master, "background output", 8);
}

// slave_close checks the master's EIO once no slave is open, after the
// data queued before.
static void slave_close(int master, int slave) {
	T(write(slave, "bye\n", 4));
	T(close(slave));
	char buf[64];
	long n = read(master, buf, sizeof buf);
	if (n < 0)
		T(n);
	else
		show("master read", buf, n);
	T(read(master, buf, sizeof buf));
	struct pollfd p = {.fd = master, .events = POLLIN};
	T(poll(&p, 1, 0));
	printf("master revents %#x\n", p.revents);
	T(write(master, "x", 1));
}

// hangup closes the master under a session whose controlling terminal
// it is: the leader gets SIGHUP, reads end, writes fail.
static void hangup(void) {
	int master;
	int slave = open_pair(&master);
	int ready[2];
	if (pipe(ready))
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		catch(SIGHUP);
		close(ready[0]);
		setsid();
		int s = open(ptsname(master), O_RDWR);
		close(master);
		signal_parent(ready[1]);
		sigset_t none;
		sigemptyset(&none);
		while (!got_hup)
			sigsuspend(&none);
		printf("child: SIGHUP\n");
		char c;
		T(read(s, &c, 1));
		T(write(s, "x", 1));
		struct pollfd p = {.fd = s, .events = POLLIN | POLLOUT};
		T(poll(&p, 1, 0));
		printf("child: slave revents %#x\n", p.revents);
		T(open("/dev/tty", O_RDWR));
		_exit(0);
	}
	close(ready[1]);
	wait_child(ready[0]);
	char *name = strdup(ptsname(master));
	long closed = close(master);
	int status;
	T(waitpid(pid, &status, 0) == pid);
	report("close(master)", closed);
	printf("child status %#x\n", status);
	T(access(name, F_OK));
	T(open(name, O_RDWR | O_NOCTTY));
	close(slave);
	free(name);
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	int master;
	int slave = open_pair(&master);
	names(master, slave);
	defaults(master, slave);
	canonical(master, slave);
	raw(master, slave);
	session(master, slave);
	background(master);
	slave_close(master, slave);
	close(master);
	hangup();
	return 0;
}
