// sysctl exercises /proc/sys (reads, modes, writes and their validation),
// sethostname/setdomainname, and mount/umount2 of tmpfs, proc and bind
// mounts. Natively it first moves into new UTS and mount namespaces, with
// every mount private, so that nothing it changes reaches the host; it
// writes host-wide sysctls only with invalid values or the value they
// already have, and mounts only under a fresh temporary directory. In the
// sandbox unshare may be missing: its result is not printed. Values that
// differ between machines (file-max, pid_max, osrelease) are shown as
// yes/no answers.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

#define TMPFS_MAGIC_ 0x01021994
#define PROC_MAGIC_ 0x9fa0

// res shows a system call's result: the value, or -1 and the errno name.
static const char *res(long r) {
	static char buf[64];
	if (r < 0)
		snprintf(buf, sizeof buf, "-1 %s", ename(errno));
	else
		snprintf(buf, sizeof buf, "%ld", r);
	return buf;
}

static char tmp[64];

static const char *at(const char *rel) {
	static char buf[4][128];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", tmp, rel);
	return buf[i];
}

// get reads a /proc/sys file into buf (newline kept); "" on error.
static const char *get(const char *name) {
	static char buf[256];
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/%s", name);
	buf[0] = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return buf;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
	return buf;
}

static long getnum(const char *name) {
	return strtol(get(name), NULL, 10);
}

// put writes data to a /proc/sys file in one write and shows the result.
static void put(const char *name, const char *data) {
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/%s", name);
	int fd = open(path, O_WRONLY);
	if (fd < 0) {
		printf("write %s %s: open %s\n", name, data, res(-1));
		return;
	}
	printf("write %s ", name);
	for (const char *p = data; *p; p++)
		putchar(*p == '\n' ? '|' : *p);
	printf(": %s\n", res(write(fd, data, strlen(data))));
	close(fd);
}

// putcur writes a value that differs between machines, without showing it.
static void putcur(const char *name, const char *data) {
	char path[128];
	snprintf(path, sizeof path, "/proc/sys/%s", name);
	int fd = open(path, O_WRONLY);
	long n = fd < 0 ? -1 : write(fd, data, strlen(data));
	printf("write %s its value: %s\n", name, n == (long)strlen(data) ? "all" : res(n));
	if (fd >= 0)
		close(fd);
}

static void sysctls(void) {
	static const char *const names[] = {"fs/nr_open", "fs/file-max", "fs/pipe-max-size", "kernel/pid_max",
		"kernel/ngroups_max", "kernel/hostname", "kernel/domainname", "kernel/osrelease", "kernel/ostype",
		"vm/mmap_min_addr", "vm/overcommit_memory"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char path[128];
		struct stat st;
		snprintf(path, sizeof path, "/proc/sys/%s", names[i]);
		int r = stat(path, &st);
		printf("%s: stat %s mode %o uid %d size %ld\n", names[i], res(r), r ? 0 : st.st_mode, r ? -1 : (int)st.st_uid,
			r ? -1L : (long)st.st_size);
	}
	printf("nr_open %s", get("fs/nr_open"));
	printf("pipe-max-size %s", get("fs/pipe-max-size"));
	printf("ngroups_max %s", get("kernel/ngroups_max"));
	printf("ostype %s", get("kernel/ostype"));
	const char *rel = get("kernel/osrelease");
	printf("osrelease non-empty %s\n", strlen(rel) > 1 && rel[strlen(rel) - 1] == '\n' ? "yes" : "no");
	printf("file-max positive %s\n", getnum("fs/file-max") > 0 ? "yes" : "no");
	long pid = getnum("kernel/pid_max");
	printf("pid_max in range %s\n", pid >= 301 && pid <= 4194304 ? "yes" : "no");
	long mmin = getnum("vm/mmap_min_addr");
	printf("mmap_min_addr page multiple %s\n", mmin > 0 && mmin % 4096 == 0 ? "yes" : "no");
	long oc = getnum("vm/overcommit_memory");
	printf("overcommit_memory in range %s\n", oc >= 0 && oc <= 2 ? "yes" : "no");

	// Read-only files refuse to open for writing, even for root.
	put("kernel/osrelease", "x");
	put("kernel/ostype", "x");
	put("kernel/ngroups_max", "1");

	// Invalid values change nothing; the value a file already has is
	// accepted in any notation and leaves it as it was.
	char cur[64];
	long nr = getnum("fs/nr_open");
	put("fs/nr_open", "63");
	put("fs/nr_open", "2147483585");
	put("fs/nr_open", "-1");
	put("fs/nr_open", "abc");
	put("fs/nr_open", "12x");
	put("fs/nr_open", "\n");
	put("fs/nr_open", "123456789012345678901234");
	snprintf(cur, sizeof cur, "%#lx\n", nr);
	putcur("fs/nr_open", cur);
	printf("nr_open kept %s\n", getnum("fs/nr_open") == nr ? "yes" : "no");

	long fm = getnum("fs/file-max");
	put("fs/file-max", "-1");
	put("fs/file-max", "9223372036854775808");
	snprintf(cur, sizeof cur, "  %ld\n", fm);
	putcur("fs/file-max", cur);
	printf("file-max kept %s\n", getnum("fs/file-max") == fm ? "yes" : "no");

	long pms = getnum("fs/pipe-max-size");
	put("fs/pipe-max-size", "-1");
	put("fs/pipe-max-size", "2147483649");
	snprintf(cur, sizeof cur, "%ld", pms - 1);
	put("fs/pipe-max-size", cur);
	printf("pipe-max-size rounded up %s\n", getnum("fs/pipe-max-size") == pms ? "yes" : "no");

	put("kernel/pid_max", "300");
	put("kernel/pid_max", "4194305");
	snprintf(cur, sizeof cur, "%ld", pid);
	putcur("kernel/pid_max", cur);
	printf("pid_max kept %s\n", getnum("kernel/pid_max") == pid ? "yes" : "no");

	put("vm/overcommit_memory", "3");
	put("vm/overcommit_memory", "-1");
	snprintf(cur, sizeof cur, "%ld\n", oc);
	putcur("vm/overcommit_memory", cur);

	put("vm/mmap_min_addr", "-1");
	snprintf(cur, sizeof cur, "%ld", mmin);
	putcur("vm/mmap_min_addr", cur);
	printf("mmap_min_addr kept %s\n", getnum("vm/mmap_min_addr") == mmin ? "yes" : "no");
}

// The raw calls, so that odd arguments reach the kernel as they are.
static long sethost(const char *name, long len) {
	return syscall(SYS_sethostname, name, len);
}

static long setdomain(const char *name, long len) {
	return syscall(SYS_setdomainname, name, len);
}

static void uts(void) {
	struct utsname u;
	printf("sethostname %s\n", res(sethost("kvmtest", 7)));
	uname(&u);
	printf("uname nodename %s, proc %s", u.nodename, get("kernel/hostname"));
	printf("setdomainname %s\n", res(setdomain("kvmdomain", 9)));
	uname(&u);
	printf("uname domainname %s, proc %s", u.domainname, get("kernel/domainname"));
	char name[80];
	memset(name, 'h', sizeof name);
	printf("sethostname 65: %s\n", res(sethost(name, 65)));
	printf("sethostname -1: %s\n", res(sethost(name, -1)));
	printf("sethostname bad pointer: %s\n", res(sethost((char *)8, 5)));
	printf("setdomainname 65: %s\n", res(setdomain(name, 65)));
	printf("setdomainname bad pointer: %s\n", res(setdomain((char *)8, 5)));
	printf("sethostname 64: %s\n", res(sethost(name, 64)));
	uname(&u);
	printf("nodename length %zu\n", strlen(u.nodename));
	printf("sethostname with NUL: %s\n", res(sethost("ab\0cd", 5)));
	gethostname(name, sizeof name);
	printf("gethostname %s, proc %s", name, get("kernel/hostname"));
	printf("sethostname empty: %s\n", res(sethost(NULL, 0)));
	printf("proc hostname %s", get("kernel/hostname"));

	// Through /proc/sys: a write ends at a newline and is cut to 64 bytes.
	put("kernel/hostname", "prochost\nignored");
	uname(&u);
	printf("uname nodename %s\n", u.nodename);
	memset(name, 'd', sizeof name);
	name[70] = 0;
	put("kernel/domainname", name);
	uname(&u);
	printf("domainname length %zu\n", strlen(u.domainname));
	put("kernel/domainname", "");
	printf("proc domainname length %zu\n", strlen(get("kernel/domainname")));
}

// listed says whether /proc/self/mounts has path with file-system type fs.
static const char *listed(const char *path, const char *fs) {
	char want[256], line[1024];
	snprintf(want, sizeof want, " %s %s ", path, fs);
	FILE *f = fopen("/proc/self/mounts", "r");
	if (!f)
		return "no /proc/self/mounts";
	const char *found = "no";
	while (fgets(line, sizeof line, f))
		if (strstr(line, want))
			found = "yes";
	fclose(f);
	return found;
}

static const char *fstype(const char *path) {
	struct statfs sf;
	if (statfs(path, &sf) < 0)
		return res(-1);
	switch (sf.f_type) {
	case TMPFS_MAGIC_: return "tmpfs";
	case PROC_MAGIC_: return "proc";
	}
	return "other";
}

static const char *readfile(const char *path) {
	static char buf[64];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return res(-1);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static const char *create(const char *path, const char *data) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return res(-1);
	write(fd, data, strlen(data));
	close(fd);
	return "0";
}

static void mounts(void) {
	struct stat st, st2;
	mkdir(at("a"), 0755);
	mkdir(at("b"), 0755);
	mkdir(at("c"), 0755);
	mkdir(at("d"), 0755);
	mkdir(at("e"), 0755);
	create(at("f"), "file");

	printf("mount tmpfs: %s\n", res(mount("none", at("a"), "tmpfs", 0, "size=1m,mode=0700")));
	stat(at("a"), &st);
	printf("mode %o fstype %s listed %s\n", st.st_mode, fstype(at("a")), listed(at("a"), "tmpfs"));
	printf("create a/x: %s\n", create(at("a/x"), "in a"));
	printf("bad option: %s\n", res(mount("none", at("b"), "tmpfs", 0, "bogus=1")));
	printf("unknown type: %s\n", res(mount("none", at("b"), "nosuchfs", 0, NULL)));
	printf("no type: %s\n", res(mount("none", at("b"), NULL, 0, NULL)));
	printf("on a file: %s\n", res(mount("none", at("f"), "tmpfs", 0, NULL)));
	printf("on nothing: %s\n", res(mount("none", at("nothing"), "tmpfs", 0, NULL)));
	printf("bind of nothing: %s\n", res(mount(at("nothing"), at("b"), NULL, MS_BIND, NULL)));
	printf("bind file on dir: %s\n", res(mount(at("f"), at("b"), NULL, MS_BIND, NULL)));

	printf("mount proc: %s\n", res(mount("proc", at("b"), "proc", 0, NULL)));
	char link[32];
	ssize_t n = readlink(at("b/self"), link, sizeof link);
	printf("proc self %s fstype %s ostype %s", n > 0 ? "yes" : "no", fstype(at("b")), readfile(at("b/sys/kernel/ostype")));
	printf("umount proc: %s\n", res(umount2(at("b"), 0)));

	printf("bind: %s\n", res(mount(at("a"), at("c"), NULL, MS_BIND, NULL)));
	stat(at("a/x"), &st);
	stat(at("c/x"), &st2);
	printf("c/x %s same file %s\n", readfile(at("c/x")), st.st_dev == st2.st_dev && st.st_ino == st2.st_ino ? "yes" : "no");
	printf("remount ro: %s\n", res(mount(NULL, at("c"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)));
	printf("create c/y: %s\n", create(at("c/y"), "y"));
	printf("create a/y: %s\n", create(at("a/y"), "y"));
	printf("remount rw: %s\n", res(mount(NULL, at("c"), NULL, MS_REMOUNT | MS_BIND, NULL)));
	printf("create c/z: %s\n", create(at("c/z"), "z"));
	mkdir(at("a/sub"), 0755);
	printf("remount inside: %s\n", res(mount(NULL, at("a/sub"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)));
	printf("private: %s\n", res(mount(NULL, at("c"), NULL, MS_PRIVATE, NULL)));
	printf("slave: %s\n", res(mount(NULL, at("c"), NULL, MS_SLAVE, NULL)));
	printf("rec private: %s\n", res(mount(NULL, at("c"), NULL, MS_REC | MS_PRIVATE, NULL)));
	printf("private inside: %s\n", res(mount(NULL, at("a/sub"), NULL, MS_PRIVATE, NULL)));
	printf("private and shared: %s\n", res(mount(NULL, at("c"), NULL, MS_PRIVATE | MS_SHARED, NULL)));

	printf("mount sub: %s\n", res(mount("none", at("a/sub"), "tmpfs", 0, NULL)));
	create(at("a/sub/z"), "deep");
	printf("rbind: %s\n", res(mount(at("a"), at("b"), NULL, MS_BIND | MS_REC, NULL)));
	printf("b/sub/z %s\n", readfile(at("b/sub/z")));
	printf("bind: %s\n", res(mount(at("a"), at("d"), NULL, MS_BIND, NULL)));
	printf("d/sub/z %s\n", readfile(at("d/sub/z")));

	// An executable file with no ELF header or #! line: ENOEXEC where
	// execution is allowed, EACCES on a noexec mount.
	create(at("a/run"), "junk");
	chmod(at("a/run"), 0755);
	char *argv[] = {"run", NULL};
	printf("exec: %s\n", res(execv(at("a/run"), argv)));
	printf("bind noexec: %s\n", res(mount(at("a"), at("e"), NULL, MS_BIND, NULL)));
	printf("remount noexec: %s\n", res(mount(NULL, at("e"), NULL, MS_REMOUNT | MS_BIND | MS_NOEXEC, NULL)));
	printf("exec noexec: %s\n", res(execv(at("e/run"), argv)));
	printf("access X_OK noexec: %s\n", res(access(at("e/run"), X_OK)));
	printf("access R_OK noexec: %s\n", res(access(at("e/run"), R_OK)));
	printf("umount e: %s\n", res(umount2(at("e"), 0)));
	printf("umount busy: %s\n", res(umount2(at("a"), 0)));
	printf("umount file: %s\n", res(umount2(at("a/x"), 0)));
	printf("umount not a mount: %s\n", res(umount2(tmp, 0)));
	printf("umount nothing: %s\n", res(umount2(at("nothing"), 0)));
	printf("umount bad flag: %s\n", res(umount2(at("a"), 0x100)));
	printf("umount detach: %s\n", res(umount2(at("b"), MNT_DETACH)));
	printf("b/sub/z after %s\n", readfile(at("b/sub/z")));
	printf("umount c: %s\n", res(umount2(at("c"), 0)));
	printf("umount d: %s\n", res(umount2(at("d"), 0)));
	printf("umount sub: %s\n", res(umount2(at("a/sub"), 0)));
	printf("umount a: %s\n", res(umount2(at("a"), 0)));
	printf("umount again: %s\n", res(umount2(at("a"), 0)));
	printf("a listed %s, a/x %s\n", listed(at("a"), "tmpfs"), readfile(at("a/x")));
}

// unprivileged checks what a process without capabilities may not do.
static void unprivileged(void) {
	pid_t pid = fork();
	if (pid == 0) {
		if (setuid(65534) < 0)
			_exit(2);
		printf("user sethostname: %s\n", res(sethost("x", 1)));
		printf("user setdomainname: %s\n", res(setdomain("x", 1)));
		printf("user mount: %s\n", res(mount("none", at("a"), "tmpfs", 0, NULL)));
		printf("user mount on nothing: %s\n", res(mount("none", at("nothing"), "tmpfs", 0, NULL)));
		printf("user umount: %s\n", res(umount2(at("a"), 0)));
		put("kernel/hostname", "x");
		put("fs/nr_open", "1024");
		printf("user reads nr_open %s", get("fs/nr_open"));
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("child status %d\n", status);
}

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (unshare(CLONE_NEWUTS | CLONE_NEWNS) < 0 && errno != ENOSYS) {
		perror("unshare");
		return 1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		perror("private /");
		return 1;
	}
	strcpy(tmp, "/tmp/sysctlXXXXXX");
	if (!mkdtemp(tmp) || chmod(tmp, 0755) < 0) {
		perror("mkdtemp");
		return 1;
	}
	sysctls();
	uts();
	mounts();
	unprivileged();
	for (const char *const *p = (const char *const[]){"a/sub", "a/x", "a/y", "a", "b", "c", "d", "f", NULL}; *p; p++) {
		unlink(at(*p));
		rmdir(at(*p));
	}
	printf("cleanup %s\n", res(rmdir(tmp)));
	return 0;
}
