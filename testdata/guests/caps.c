// caps checks that permission checks go by capabilities, as on Linux, not
// by uid 0: root passes file modes with CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH and loses that the moment capset drops them; the
// same for CAP_FOWNER, CAP_FSETID, CAP_CHOWN, CAP_KILL and
// CAP_SYS_RESOURCE, and for the capability rules of setuid. Each section
// runs in a child so that the parent keeps root. It must start as root;
// capability sets are printed masked to the capabilities it looks at, so
// that a host's bounding set does not show. Raw system calls only: no
// libcap, and no <linux/capability.h>, which musl's toolchain lacks.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errname.h"

#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif

#define CAP_V1 0x19980330
#define CAP_V3 0x20080522
#define C_CHOWN 0
#define C_DAC_OVERRIDE 1
#define C_DAC_READ_SEARCH 2
#define C_FOWNER 3
#define C_FSETID 4
#define C_KILL 5
#define C_SETGID 6
#define C_SETUID 7
#define C_SETPCAP 8
#define C_SYS_CHROOT 18
#define C_SYS_ADMIN 21
#define C_SYS_RESOURCE 24
#define BIT(c) (1ULL << (c))
// The capabilities printed: those this program drops or relies on.
#define SHOWN (BIT(C_CHOWN) | BIT(C_DAC_OVERRIDE) | BIT(C_DAC_READ_SEARCH) | BIT(C_FOWNER) | \
               BIT(C_FSETID) | BIT(C_KILL) | BIT(C_SETGID) | BIT(C_SETUID) | BIT(C_SETPCAP) |   \
               BIT(C_SYS_ADMIN))

struct cap_header {
	uint32_t version;
	int pid;
};

struct cap_data {
	uint32_t effective, permitted, inheritable;
};

static long report(const char *expr, long r) {
	if (r == -1)
		printf("%s = -1 %s\n", expr, ename(errno));
	else
		printf("%s = %ld\n", expr, r);
	return r;
}

#define T(e) (errno = 0, report(#e, (long)(e)))

// opened closes a descriptor open returned, so that results print as 0
// whatever number the descriptor had.
static int opened(int fd) {
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static long capget_(uint32_t version, int pid, struct cap_data *d, uint32_t *out) {
	struct cap_header h = {version, pid};
	long r = syscall(SYS_capget, &h, d);
	*out = h.version;
	return r;
}

static long capset_(uint32_t version, int pid, const struct cap_data *d, uint32_t *out) {
	struct cap_header h = {version, pid};
	long r = syscall(SYS_capset, &h, d);
	*out = h.version;
	return r;
}

static void getcaps(uint64_t *eff, uint64_t *perm, uint64_t *inh) {
	struct cap_data d[2] = {0};
	uint32_t v;
	if (capget_(CAP_V3, 0, d, &v) != 0) {
		perror("capget");
		exit(1);
	}
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
}

static long setcaps(uint64_t eff, uint64_t perm, uint64_t inh) {
	struct cap_data d[2] = {
		{(uint32_t)eff, (uint32_t)perm, (uint32_t)inh},
		{(uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32)},
	};
	uint32_t v;
	return capset_(CAP_V3, 0, d, &v);
}

static void showcaps(const char *when) {
	uint64_t e, p, i;
	getcaps(&e, &p, &i);
	printf("%s: eff=%llx perm=%llx inh=%llx\n", when, (unsigned long long)(e & SHOWN),
	       (unsigned long long)(p & SHOWN), (unsigned long long)(i & SHOWN));
}

// drop removes caps from the effective set, and from the permitted set
// too when perm is set.
static long drop(uint64_t caps, int perm) {
	uint64_t e, p, i;
	getcaps(&e, &p, &i);
	return setcaps(e & ~caps, perm ? p & ~caps : p, i);
}

static void showmode(const char *path) {
	struct stat st;
	if (stat(path, &st) != 0)
		printf("stat(%s) = -1 %s\n", path, ename(errno));
	else
		printf("%s: mode %o uid %d gid %d\n", path, (unsigned)st.st_mode & 07777, (int)st.st_uid,
		       (int)st.st_gid);
}

// DAC checks: root passes them with its capabilities, and fails them
// after dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
static void section_dac(void) {
	T(opened(open("f", O_RDONLY)));
	T(opened(open("f", O_RDWR)));
	T(access("f", R_OK | W_OK));
	T(access("f", X_OK));
	T(access("x", X_OK));
	T(access("xo", X_OK));
	T(access("d", R_OK | W_OK | X_OK));
	T(syscall(SYS_faccessat2, AT_FDCWD, "f", R_OK | W_OK, AT_EACCESS));
	T(opened(open("d/inner", O_RDONLY)));
	T(opened(open("d", O_RDONLY | O_DIRECTORY)));
	int home = open(".", O_RDONLY | O_DIRECTORY);
	T(chdir("d"));
	T(fchdir(home));
	T(mkdir("w/sub", 0755));
	T(rmdir("w/sub"));
	T(mknod("w/fifo", S_IFIFO | 0644, 0));
	T(rename("w/fifo", "w/fifo2"));
	T(unlink("w/fifo2"));
	char *argv[] = {"x", NULL};
	T(execve("x", argv, NULL));

	T(drop(BIT(C_DAC_OVERRIDE) | BIT(C_DAC_READ_SEARCH), 0));
	showcaps("dropped");
	T(opened(open("f", O_RDONLY)));
	T(opened(open("f", O_WRONLY)));
	// access without AT_EACCESS checks real uid 0 with the permitted set.
	T(access("f", R_OK | W_OK));
	T(syscall(SYS_faccessat2, AT_FDCWD, "f", R_OK, AT_EACCESS));
	T(syscall(SYS_faccessat2, AT_FDCWD, "f", R_OK, 0));
	T(opened(open("d/inner", O_RDONLY)));
	T(opened(open("d", O_RDONLY | O_DIRECTORY)));
	T(chdir("d"));
	int d = open("d", O_PATH | O_DIRECTORY);
	T(fchdir(d));
	T(mkdir("w/sub", 0755));
	T(mknod("w/fifo", S_IFIFO | 0644, 0));
	T(unlink("w/victim"));
	T(rename("w/victim", "w/v2"));
	T(opened(open("w/new", O_WRONLY | O_CREAT, 0644)));

	T(drop(BIT(C_DAC_OVERRIDE) | BIT(C_DAC_READ_SEARCH), 1));
	showcaps("dropped from permitted");
	T(access("f", R_OK));
	T(setcaps(SHOWN, SHOWN, 0));
}

static void section_dacread(void) {
	T(drop(BIT(C_DAC_OVERRIDE), 0));
	T(opened(open("f", O_RDONLY)));
	T(opened(open("f", O_RDWR)));
	T(opened(open("d/inner", O_RDONLY)));
	T(chdir("d"));
	T(chdir(".."));
	T(mkdir("w/sub", 0755));
	T(access("f", W_OK));
	T(syscall(SYS_faccessat2, AT_FDCWD, "f", W_OK, AT_EACCESS));
	T(syscall(SYS_faccessat2, AT_FDCWD, "f", R_OK, AT_EACCESS));
}

// Ownership: CAP_FOWNER, CAP_FSETID and CAP_CHOWN.
static void section_owner(void) {
	struct timespec ts[2] = {{1000, 0}, {2000, 0}};
	T(chmod("g", 04755));
	showmode("g");
	T(utimensat(AT_FDCWD, "g", ts, 0));
	T(chown("own", -1, 2000));
	T(chmod("own", 02755));
	showmode("own");

	T(drop(BIT(C_FOWNER) | BIT(C_FSETID) | BIT(C_CHOWN), 0));
	showcaps("dropped");
	T(chmod("g", 0755));
	T(chown("g", 0, 0));
	T(chown("g", -1, 0));
	T(chown("own", 3000, -1));
	T(chown("own", -1, 3000));
	T(chown("own", 0, 0));
	T(utimensat(AT_FDCWD, "g", ts, 0));
	T(utimensat(AT_FDCWD, "g", NULL, 0));
	T(chmod("own", 02755));
	showmode("own");
	T(unlink("t/other"));
	T(rename("t/other", "t/o2"));
	T(unlink("t/mine"));
}

// A write by a process without CAP_FSETID clears set-user-ID and an
// executable's set-group-ID; with it they stay.
static void section_fsetid(void) {
	int fd = open("s", O_WRONLY);
	T(write(fd, "x", 1));
	showmode("s");
	T(drop(BIT(C_FSETID), 0));
	T(write(fd, "x", 1));
	showmode("s");
	close(fd);
}

// Signals to a process of another uid take CAP_KILL, except SIGCONT in
// the same session.
static void section_kill(void) {
	int p[2];
	if (pipe(p) != 0)
		exit(1);
	pid_t other = fork();
	if (other == 0) {
		if (setresuid(2000, 2000, 2000) != 0)
			_exit(1);
		write(p[1], "", 1);
		for (;;)
			pause();
	}
	char c;
	read(p[0], &c, 1);
	T(kill(other, 0));
	T(kill(other, SIGCONT));
	T(drop(BIT(C_KILL), 0));
	T(kill(other, 0));
	T(kill(other, SIGTERM));
	T(kill(other, SIGCONT));
	T(syscall(SYS_tgkill, other, other, SIGTERM));
	T(setcaps(BIT(C_KILL), BIT(C_KILL) | BIT(C_SETUID), 0));
	T(kill(other, SIGKILL));
	int st;
	T(waitpid(other, &st, 0) == other);
	printf("killed by %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
}

// Raising a hard limit takes CAP_SYS_RESOURCE.
static void section_rlimit(void) {
	struct rlimit l;
	getrlimit(RLIMIT_NOFILE, &l);
	T(drop(BIT(C_SYS_RESOURCE), 1));
	struct rlimit lower = {l.rlim_cur < l.rlim_max - 1 ? l.rlim_cur : l.rlim_max - 1, l.rlim_max - 1};
	T(setrlimit(RLIMIT_NOFILE, &lower));
	T(setrlimit(RLIMIT_NOFILE, &l));
	T(prlimit(0, RLIMIT_NOFILE, &l, NULL));
	T(setrlimit(RLIMIT_NOFILE, &lower));
}

// The capability rules of the uid changes.
static void section_setuid(void) {
	T(setresuid(-1, 1000, -1));
	showcaps("euid 1000");
	T(opened(open("f", O_RDONLY)));
	T(setresuid(-1, 0, -1));
	showcaps("euid 0");
	T(opened(open("f", O_RDONLY)));
	T(syscall(SYS_setfsuid, 1000));
	showcaps("fsuid 1000");
	T(opened(open("f", O_RDONLY)));
	T(syscall(SYS_setfsuid, 0));
	showcaps("fsuid 0");
	T(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
	T(setresuid(1000, 1000, 1000));
	showcaps("keepcaps uid 1000");
	T(opened(open("f", O_RDONLY)));
	uint64_t e, p, i;
	getcaps(&e, &p, &i);
	T(setcaps(p, p, i));
	showcaps("raised");
	T(opened(open("f", O_RDONLY)));
	T(chdir("d"));
	T(fchdir(open("..", O_RDONLY | O_DIRECTORY)));
	// access checks a real uid other than 0 with no capabilities.
	T(access("f", R_OK));
	T(setgroups(0, NULL));
	T(setcaps(0, 0, 0));
	T(setgroups(0, NULL));
	T(setgid(5));
	T(setuid(0));
	showcaps("none");
}

static void section_nokeep(void) {
	T(setuid(1000));
	showcaps("uid 1000");
	T(opened(open("f", O_RDONLY)));
	T(setuid(0));
	T(setcaps(BIT(C_DAC_OVERRIDE), BIT(C_DAC_OVERRIDE), 0));
	T(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
}

// mkscript makes a script of uid 2000 whose interpreter is a copy of this
// program ("interp"), which exits at once when it runs as one.
static void mkscript(const char *path, mode_t mode) {
	char text[4200], cwd[4096];
	if (!getcwd(cwd, sizeof cwd))
		exit(1);
	int n = snprintf(text, sizeof text, "#!%s/interp -interp\n", cwd);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, n) != n || fchown(fd, 2000, 2000) != 0 || fchmod(fd, mode) != 0) {
		perror(path);
		exit(1);
	}
	close(fd);
}

// tryexec runs path in a child and prints how that went: execve needs
// execute permission, not read permission, and no capability executes a
// file without any execute bit.
static void tryexec(const char *path, int dirfd) {
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = {(char *)path, NULL};
		if (dirfd >= 0)
			syscall(SYS_execveat, dirfd, "", argv, NULL, AT_EMPTY_PATH);
		else
			execve(path, argv, NULL);
		printf("exec %s = -1 %s\n", path, ename(errno));
		_exit(100);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("exec %s: exit %d\n", path, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void section_exec(void) {
	int in = open("/proc/self/exe", O_RDONLY), out = open("interp", O_WRONLY | O_CREAT, 0755);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, n) != n)
			exit(1);
	close(in);
	close(out);
	mkscript("xs", 0100);
	mkscript("xa", 0711);
	tryexec("x", -1);
	tryexec("xs", -1);
	tryexec("xa", -1);
	tryexec("d", -1);
	int xa = open("xa", O_PATH);
	T(drop(BIT(C_DAC_OVERRIDE), 0));
	tryexec("xs", -1);
	tryexec("xa", -1);
	T(setuid(1000));
	tryexec("xs", -1);
	tryexec("xa", -1);
	tryexec("xa", xa);
	T(opened(open("xa", O_RDONLY)));
}

// chroot: lookup errors, then search permission, then CAP_SYS_CHROOT;
// inside the new root, ".." stops at it and the old working directory
// still works until chdir leaves it.
static void section_chroot(void) {
	T(chroot("missing"));
	T(chroot("f"));
	T(chroot(""));
	T(chroot((const char *)1));
	pid_t pid = fork();
	if (pid == 0) {
		T(chroot("w"));
		T(access("f", F_OK));
		T(chdir("/"));
		T(access("/victim", F_OK));
		T(access("/../victim", F_OK));
		T(access("../../victim", F_OK));
		T(access("/f", F_OK));
		T(chroot("."));
		T(access("victim", F_OK));
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child status %x\n", st);
	T(drop(BIT(C_DAC_OVERRIDE) | BIT(C_DAC_READ_SEARCH), 0));
	T(chroot("d"));
	T(chroot("d/inner"));
	T(drop(BIT(C_SYS_CHROOT), 0));
	T(chroot("w"));
	T(chroot("d"));
	T(chroot("missing"));
	T(chroot("x"));
}

// capget and capset with bad input.
static void section_bad(void) {
	struct cap_data d[2] = {0};
	uint32_t v;
	T(capget_(0x12345678, 0, d, &v));
	printf("version %x\n", v);
	T(capset_(0x12345678, 0, d, &v));
	printf("version %x\n", v);
	T(capget_(0x12345678, 0, NULL, &v));
	printf("version %x\n", v);
	T(capget_(CAP_V3, 0, NULL, &v));
	T(capget_(CAP_V3, -1, d, &v));
	T(capget_(CAP_V3, 0x3fffffff, d, &v));
	T(capget_(CAP_V3, getpid(), d, &v));
	T(capget_(CAP_V3, getppid(), d, &v));
	T(capget_(CAP_V3, 0, (void *)1, &v));
	struct cap_data one = {0};
	T(capget_(CAP_V1, 0, &one, &v));
	printf("v1 eff=%x\n", one.effective & (uint32_t)SHOWN);
	T(capget_(CAP_V3, 0, d, &v));
	T(capset_(CAP_V3, getppid(), d, &v));
	T(capset_(CAP_V3, 0, (void *)1, &v));

	uint64_t e, p, i;
	getcaps(&e, &p, &i);
	// Bits above CAP_LAST_CAP are ignored.
	T(setcaps(e | 0xfffff80000000000ULL, p | 0xfffff80000000000ULL, i));
	showcaps("unknown bits");
	T(setcaps(e, p, i | 0xfffff80000000000ULL));
	showcaps("unknown inheritable");
	// The effective set within the permitted one, which never grows.
	T(setcaps(e, p & ~BIT(C_CHOWN), i));
	T(setcaps(e & ~BIT(C_CHOWN), p & ~BIT(C_CHOWN), i));
	T(setcaps(e & ~BIT(C_CHOWN), p, i));
	T(setcaps(e & ~BIT(C_CHOWN), p & ~BIT(C_CHOWN), BIT(C_CHOWN)));
	T(setcaps(e & ~BIT(C_CHOWN), p & ~BIT(C_CHOWN), BIT(C_KILL)));
	showcaps("inheritable");
	T(drop(BIT(C_SETPCAP), 1));
	T(setcaps(e & ~BIT(C_CHOWN) & ~BIT(C_SETPCAP), p & ~BIT(C_CHOWN) & ~BIT(C_SETPCAP), BIT(C_KILL) | BIT(C_CHOWN)));
	T(setcaps(e & ~BIT(C_CHOWN) & ~BIT(C_SETPCAP), p & ~BIT(C_CHOWN) & ~BIT(C_SETPCAP), BIT(C_KILL) | BIT(C_FOWNER)));
	showcaps("end");
}

static void cleanup(const char *dir) {
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			chmod(path, 0700);
			cleanup(path);
		} else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static void mkfile(const char *path, mode_t mode, uid_t uid, gid_t gid) {
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "data", 4) != 4 || fchown(fd, uid, gid) != 0 || fchmod(fd, mode) != 0) {
		perror(path);
		exit(1);
	}
	close(fd);
}

static void mkdir_(const char *path, mode_t mode, uid_t uid) {
	if (mkdir(path, 0700) != 0 || chown(path, uid, uid) != 0 || chmod(path, mode) != 0) {
		perror(path);
		exit(1);
	}
}

// setup makes the files the sections work on in the current directory.
static void setup(void) {
	mkfile("f", 0, 0, 0);
	mkfile("x", 0, 0, 0);
	mkfile("xo", 0100, 0, 0);
	mkfile("g", 02755, 2000, 2000);
	mkfile("own", 0644, 0, 0);
	mkfile("s", 06755, 2000, 2000);
	mkdir_("d", 0700, 0);
	mkfile("d/inner", 0600, 0, 0);
	chmod("d", 0);
	mkdir_("w", 0755, 0);
	mkfile("w/victim", 0644, 0, 0);
	chmod("w", 0555);
	mkdir_("t", 01777, 2000);
	mkfile("t/other", 0644, 2000, 2000);
	mkfile("t/mine", 0644, 0, 0);
}

int main(int argc, char **argv) {
	static const struct {
		const char *name;
		void (*run)(void);
	} sections[] = {
		{"dac", section_dac},       {"dacread", section_dacread}, {"owner", section_owner},
		{"fsetid", section_fsetid}, {"kill", section_kill},       {"rlimit", section_rlimit},
		{"setuid", section_setuid}, {"nokeep", section_nokeep},   {"exec", section_exec},
		{"bad", section_bad},       {"chroot", section_chroot},
	};
	if (argc > 1 && !strcmp(argv[1], "-interp"))
		return 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(022);
	if (getuid() != 0) {
		fprintf(stderr, "caps must run as root\n");
		return 1;
	}
	char dir[] = "/tmp/kvmbox-caps-XXXXXX";
	// Searchable by the sections that change uid.
	if (!mkdtemp(dir) || chmod(dir, 0711) != 0 || chdir(dir) != 0) {
		perror("mkdtemp");
		return 1;
	}
	int status = 0;
	for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++) {
		if (argc > 1 && strcmp(argv[1], sections[j].name))
			continue;
		printf("== %s\n", sections[j].name);
		setup();
		showcaps("start");
		pid_t pid = fork();
		if (pid == 0) {
			sections[j].run();
			exit(0);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("section %s failed: status %x\n", sections[j].name, st);
			status = 1;
		}
		if (chdir("/") != 0 || (cleanup(dir), mkdir(dir, 0711)) != 0 || chdir(dir) != 0) {
			perror(dir);
			return 1;
		}
	}
	if (chdir("/") != 0)
		return 1;
	cleanup(dir);
	return status;
}
