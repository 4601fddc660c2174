// files exercises the file system calls, one family per argument, and
// prints each call with its result or errno name. It works in a fresh
// directory under /tmp and prints nothing that differs between runs or
// between file systems (no inode numbers, times of day, or absolute
// temporary paths), so that a native run and a sandboxed one compare equal.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utime.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define RESOLVE_BENEATH_ 0x08
#define RWF_APPEND_ 0x10
#define RWF_NOWAIT_ 0x08
#define RWF_DSYNC_ 0x02
#define CLOSE_RANGE_CLOEXEC_ 4
#define MFD_CLOEXEC_ 1
#define MFD_ALLOW_SEALING_ 2
#define RENAME_NOREPLACE_ 1
#define RENAME_EXCHANGE_ 2
#define STATX_BASIC_STATS_ 0x7ff
#define STATX__RESERVED_ 0x80000000u
#define AT_STATX_SYNC_TYPE_ 0x6000
#define F_OFD_GETLK_ 36
#define F_OFD_SETLK_ 37

struct how {
	uint64_t flags, mode, resolve;
};

struct kstatx_ts {
	int64_t sec;
	uint32_t nsec;
	int32_t pad;
};

struct kstatx {
	uint32_t mask, blksize;
	uint64_t attributes;
	uint32_t nlink, uid, gid;
	uint16_t mode, pad1;
	uint64_t ino, size, blocks, attributes_mask;
	struct kstatx_ts atime, btime, ctime, mtime;
	uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
	uint64_t spare[14];
};

static const char *ename(int e) {
	switch (e) {
#define E(x) case x: return #x;
	E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(EBADF) E(EAGAIN)
	E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
	E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK)
	E(EPIPE) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG) E(ENOTEMPTY) E(ELOOP)
	E(EOPNOTSUPP) E(EOVERFLOW) E(EACCES) E(ENODEV) E(ENOSYS)
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
	return r;
}

#define T(e) (errno = 0, report(#e, (long)(e)))

char *bad = (char *)1;
static char longname[300];
static char longpath[5000];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void describe(const char *what, struct stat *st) {
	const char *type = S_ISREG(st->st_mode) ? "reg" : S_ISDIR(st->st_mode) ? "dir" : S_ISLNK(st->st_mode) ? "lnk" : S_ISFIFO(st->st_mode) ? "fifo" : "other";
	say("%s: %s mode %o uid %u gid %u", what, type, st->st_mode & 07777, st->st_uid, st->st_gid);
	if (S_ISREG(st->st_mode) || S_ISLNK(st->st_mode))
		say("%s: size %lld nlink %lu", what, (long long)st->st_size, (unsigned long)st->st_nlink);
}

static void section_open(void) {
	int fd;
	T(fd = open("f1", O_CREAT | O_WRONLY | O_EXCL, 0644));
	T(write(fd, "hello", 5));
	T(close(fd));
	T(open("f1", O_CREAT | O_EXCL | O_WRONLY, 0644));
	T(open("nope", O_RDONLY));
	T(open("f1/x", O_RDONLY));
	T(open("f1/", O_RDONLY));
	T(open(".", O_WRONLY));
	T(open("f1", O_RDONLY | O_DIRECTORY));
	T(open("d", O_CREAT | O_DIRECTORY | O_RDWR, 0644));
	T(open(longname, O_RDONLY));
	T(open(longpath, O_RDONLY));
	T(open(bad, O_RDONLY));
	T(open("", O_RDONLY));
	T(symlink("loop1", "loop2"));
	T(symlink("loop2", "loop1"));
	T(open("loop1", O_RDONLY));
	T(symlink("f1", "lf1"));
	T(open("lf1", O_RDONLY | O_NOFOLLOW));
	T(fd = open("lf1", O_RDWR | O_APPEND));
	T(fcntl(fd, F_GETFL));
	T(fcntl(fd, F_GETFD));
	T(close(fd));
	T(fd = open("f1", O_RDONLY | O_CLOEXEC));
	T(fcntl(fd, F_GETFD));
	T(fcntl(fd, F_GETFL));
	T(openat(fd, "x", O_RDONLY));
	T(openat(99, "x", O_RDONLY));
	T(close(fd));
	T(fd = openat(99, "/tmp", O_RDONLY | O_DIRECTORY));
	T(close(fd));
	T(fd = open("f1", O_WRONLY | O_TRUNC));
	struct stat st;
	T(fstat(fd, &st));
	describe("f1 after O_TRUNC", &st);
	T(close(fd));
	T(creat("f2", 0600));
	T(fstat(4, &st));
	describe("f2", &st);
	T(close(4));
	T(umask(077));
	T(close(creat("f3", 0666)));
	T(stat("f3", &st));
	describe("f3", &st);
	T(umask(022));
	T(fd = open("f1", O_PATH));
	T(read(fd, &st, 1));
	T(fstat(fd, &st));
	T(fcntl(fd, F_GETFL));
	T(close(fd));
	T(fd = syscall(SYS_openat, AT_FDCWD, "f1", O_RDONLY));
	T(fcntl(fd, F_GETFL));
	T(close(fd));

	struct how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH_};
	T(fd = syscall(SYS_openat2, AT_FDCWD, "f1", &how, sizeof how));
	T(fcntl(fd, F_GETFL));
	T(close(fd));
	T(syscall(SYS_openat2, AT_FDCWD, "../x", &how, sizeof how));
	T(syscall(SYS_openat2, AT_FDCWD, "f1", &how, 8));
	T(syscall(SYS_openat2, AT_FDCWD, "f1", bad, sizeof how));
	how.flags = 1ull << 40;
	T(syscall(SYS_openat2, AT_FDCWD, "f1", &how, sizeof how));
	how.flags = O_RDONLY;
	how.mode = 0644;
	T(syscall(SYS_openat2, AT_FDCWD, "f1", &how, sizeof how));
}

static void section_fds(void) {
	struct rlimit old, lim;
	int fd, n = 0;
	T(getrlimit(RLIMIT_NOFILE, &old));
	lim = old;
	lim.rlim_cur = 10;
	T(setrlimit(RLIMIT_NOFILE, &lim));
	while ((fd = open(".", O_RDONLY)) >= 0)
		n++;
	say("opened %d before %s", n, ename(errno));
	T(open("nope", O_RDONLY));
	T(dup(0));
	T(fcntl(0, F_DUPFD, 3));
	T(fcntl(0, F_DUPFD, 10));
	T(dup2(0, 10));
	T(dup3(0, 9, O_CLOEXEC));
	int p[2];
	T(pipe(p));
	T(memfd_create("m", 0));
	T(close(9));
	T(dup3(0, 9, O_CLOEXEC));
	T(fcntl(9, F_GETFD));
	T(syscall(SYS_close_range, 5, 4, 0));
	T(syscall(SYS_close_range, 5, 6, 99));
	T(syscall(SYS_close_range, 5, 6, CLOSE_RANGE_CLOEXEC_));
	T(fcntl(5, F_GETFD));
	T(fcntl(6, F_GETFD));
	T(fcntl(7, F_GETFD));
	T(syscall(SYS_close_range, 4, ~0u, 0));
	T(fcntl(4, F_GETFD));
	T(fcntl(9, F_GETFD));
	T(fcntl(3, F_GETFD));
	T(setrlimit(RLIMIT_NOFILE, &old));
	T(close(3));
	T(close(3));
	T(close(-1));
	T(dup2(99, 5));
	T(dup2(1, 1));
	T(dup2(99, 99));
	T(dup3(1, 1, 0));
	T(dup3(1, 5, 1));
	T(fcntl(99, F_GETFD));
	T(fcntl(1, 9999));
	T(ioctl(1, FIOCLEX));
	T(fcntl(1, F_GETFD));
	T(ioctl(1, FIONCLEX));
	T(fcntl(1, F_GETFD));
	T(ioctl(99, FIOCLEX));
}

static void section_rw(void) {
	int fd, n;
	char buf[64];
	T(fd = open("rw", O_CREAT | O_RDWR, 0644));
	T(write(fd, "0123456789", 10));
	T(lseek(fd, 0, SEEK_CUR));
	T(lseek(fd, 2, SEEK_SET));
	T(read(fd, buf, 3));
	say("read %.3s", buf);
	T(lseek(fd, -1, SEEK_END));
	T(lseek(fd, -100, SEEK_CUR));
	T(lseek(fd, 0, 99));
	T(pread(fd, buf, 4, 6));
	say("pread %.4s", buf);
	T(pread(fd, buf, 4, -1));
	T(pwrite(fd, "AB", 2, 12));
	T(lseek(fd, 0, SEEK_END));
	T(pread(fd, buf, 20, 0));
	for (int i = 0; i < 14; i++)
		if (!buf[i])
			buf[i] = '.';
	say("contents %.14s", buf);
	char a[3], b[4];
	struct iovec iov[2] = {{a, 3}, {b, 4}};
	T(preadv(fd, iov, 2, 1));
	say("preadv %.3s|%.4s", a, b);
	struct iovec wv[2] = {{"xy", 2}, {"z", 1}};
	T(pwritev(fd, wv, 2, 0));
	T(pwritev(fd, wv, 2, -1));
	T(syscall(SYS_pwritev2, fd, wv, 2, -1L, 0, RWF_APPEND_));
	T(lseek(fd, 0, SEEK_CUR));
	T(syscall(SYS_pwritev2, fd, wv, 2, 0, 0, RWF_DSYNC_));
	T(syscall(SYS_preadv2, fd, iov, 2, 0, 0, RWF_NOWAIT_));
	T(syscall(SYS_preadv2, fd, iov, 2, 0, 0, 0x40000000));
	T(syscall(SYS_preadv2, fd, iov, 2, -1L, 0, 0));
	T(syscall(SYS_preadv2, fd, iov, 2, -5L, 0, 0));
	T(syscall(SYS_readv, fd, iov, -1));
	T(readv(fd, (struct iovec *)bad, 1));
	T(write(fd, bad, 5));
	T(read(fd, bad, 5));
	T(lseek(fd, 0, SEEK_SET));
	T(read(fd, bad, 5));
	T(ioctl(fd, FIONREAD, &n));
	say("FIONREAD %d", n);
	T(lseek(fd, 4, SEEK_SET));
	T(ioctl(fd, FIONREAD, &n));
	say("FIONREAD %d", n);
	T(ioctl(fd, FIONREAD, bad));
	T(ioctl(fd, TCGETS, buf));
	T(ftruncate(fd, 3));
	T(lseek(fd, 0, SEEK_END));
	T(ftruncate(fd, -1));
	T(ftruncate(fd, 100));
	T(pread(fd, buf, 10, 0));
	T(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 8192));
	T(lseek(fd, 0, SEEK_END));
	T(fallocate(fd, 0, 100, 10));
	T(lseek(fd, 0, SEEK_END));
	T(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10));
	T(fallocate(fd, 0, -1, 10));
	T(fallocate(fd, 0, 0, 0));
	T(fsync(fd));
	T(fdatasync(fd));
	T(syncfs(fd));
	sync();
	T(close(fd));

	T(fd = open("rw", O_RDONLY));
	T(write(fd, "x", 1));
	T(ftruncate(fd, 0));
	T(fallocate(fd, 0, 0, 10));
	T(close(fd));
	T(fd = open("rw", O_WRONLY));
	T(read(fd, buf, 1));
	T(close(fd));

	static char chunk[65536];
	memset(chunk, 'd', sizeof chunk);
	T(fd = open("sparse", O_CREAT | O_RDWR, 0644));
	T(pwrite(fd, chunk, sizeof chunk, 0));
	T(pwrite(fd, chunk, sizeof chunk, 1 << 20));
	T(lseek(fd, 0, SEEK_DATA));
	T(lseek(fd, 0, SEEK_HOLE));
	T(lseek(fd, 70000, SEEK_DATA));
	T(lseek(fd, 1 << 20, SEEK_HOLE));
	T(lseek(fd, 2 << 20, SEEK_DATA));
	T(lseek(fd, 2 << 20, SEEK_HOLE));
	T(close(fd));

	T(read(99, buf, 1));
	T(write(99, buf, 1));
	T(lseek(99, 0, SEEK_SET));
	T(pread(99, buf, 1, 0));
	T(ftruncate(99, 0));
	T(fsync(99));
	T(syncfs(99));
	T(fallocate(99, 0, 0, 1));
}

static void section_stat(void) {
	struct stat st;
	struct kstatx sx;
	int fd;
	T(fd = open("s", O_CREAT | O_WRONLY, 0640));
	T(write(fd, "abc", 3));
	T(symlink("s", "ls"));
	T(mkdir("sd", 0751));
	T(stat("s", &st));
	describe("s", &st);
	T(stat("ls", &st));
	describe("stat ls", &st);
	T(lstat("ls", &st));
	describe("lstat ls", &st);
	T(stat("sd", &st));
	describe("sd", &st);
	T(fstat(fd, &st));
	describe("fstat s", &st);
	T(fstatat(AT_FDCWD, "ls", &st, AT_SYMLINK_NOFOLLOW));
	describe("fstatat ls nofollow", &st);
	T(fstatat(fd, "", &st, AT_EMPTY_PATH));
	describe("fstatat empty", &st);
	T(fstatat(fd, "", &st, 0));
	T(fstatat(fd, "x", &st, 0));
	T(fstatat(AT_FDCWD, "s", &st, 0x8000000));
	T(fstatat(99, "s", &st, 0));
	T(fstatat(99, "", &st, AT_EMPTY_PATH));
	T(stat("nope", &st));
	T(stat("", &st));
	T(stat("s/", &st));
	T(stat("s/x", &st));
	T(stat(bad, &st));
	T(syscall(SYS_stat, "s", bad));
	T(stat(longname, &st));
	T(lstat("ls/", &st));
	T(fstat(99, &st));
	T(syscall(SYS_statx, AT_FDCWD, "s", 0, STATX_BASIC_STATS_, &sx));
	say("statx s: mask %x mode %o size %llu nlink %u", sx.mask & STATX_BASIC_STATS_, sx.mode, (unsigned long long)sx.size, sx.nlink);
	T(syscall(SYS_statx, AT_FDCWD, "ls", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS_, &sx));
	say("statx ls: mode %o size %llu", sx.mode, (unsigned long long)sx.size);
	T(syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS_, &sx));
	say("statx fd: mode %o size %llu", sx.mode, (unsigned long long)sx.size);
	T(syscall(SYS_statx, AT_FDCWD, "s", AT_STATX_SYNC_TYPE_, STATX_BASIC_STATS_, &sx));
	T(syscall(SYS_statx, AT_FDCWD, "s", 0, STATX__RESERVED_, &sx));
	T(syscall(SYS_statx, AT_FDCWD, "s", 0, STATX_BASIC_STATS_, bad));
	T(syscall(SYS_statx, AT_FDCWD, "nope", 0, STATX_BASIC_STATS_, &sx));
	T(close(fd));
	struct statfs sf;
	T(statfs(".", &sf));
	say("statfs namelen %ld", (long)sf.f_namelen);
	T(statfs("nope", &sf));
	T(fstatfs(99, &sf));
	T(syscall(SYS_statfs, ".", bad));
}

static int cmp(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

// list prints a directory's names, sorted, read with getdents64 in small
// steps.
static void list(const char *dir) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	char buf[64];
	char *names[64];
	int n = 0;
	long r;
	while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
		for (long off = 0; off < r;) {
			unsigned short reclen = *(unsigned short *)(buf + off + 16);
			unsigned char type = buf[off + 18];
			char *name = buf + off + 19;
			char *line = malloc(300);
			snprintf(line, 300, "%s(%s)", name, type == DT_DIR ? "d" : type == DT_REG ? "f" : type == DT_LNK ? "l" : type == DT_FIFO ? "p" : "?");
			if (n < 64)
				names[n++] = line;
			off += reclen;
		}
	}
	if (r < 0)
		say("getdents64: %s", ename(errno));
	qsort(names, n, sizeof names[0], cmp);
	printf("%s:", dir);
	for (int i = 0; i < n; i++) {
		printf(" %s", names[i]);
		free(names[i]);
	}
	printf("\n");
	close(fd);
}

static void section_dir(void) {
	int fd, dfd;
	char buf[512];
	T(mkdir("a", 0755));
	T(mkdir("a", 0755));
	T(mkdir("a/b/c", 0755));
	T(mkdir(longname, 0755));
	T(mkdir(bad, 0755));
	T(dfd = open("a", O_RDONLY | O_DIRECTORY));
	T(mkdirat(dfd, "b", 0700));
	T(mkdirat(dfd, "b/", 0700));
	T(close(openat(dfd, "file", O_CREAT | O_WRONLY, 0644)));
	T(symlinkat("file", dfd, "link"));
	T(mknodat(dfd, "fifo", S_IFIFO | 0644, 0));
	T(mknod("a/reg", S_IFREG | 0600, 0));
	T(mknod("a/reg", S_IFREG | 0600, 0));
	T(mknod("a/bad", 0170000 | 0600, 0));
	T(mknod("a/dir", S_IFDIR | 0600, 0));
	list("a");
	list(".");
	T(rmdir("a"));
	T(rmdir("a/file"));
	T(rmdir("a/b/."));
	T(rmdir("a/nope"));
	T(unlink("a/b"));
	T(unlink("a/file/"));
	T(unlinkat(dfd, "b", 0));
	T(unlinkat(dfd, "b", 0x1000));
	T(unlinkat(dfd, "b", AT_REMOVEDIR));
	T(unlinkat(dfd, "fifo", 0));
	T(unlinkat(dfd, "reg", 0));
	T(unlinkat(99, "reg", 0));
	list("a");
	T(fd = open("a/file", O_RDONLY));
	T(syscall(SYS_getdents64, fd, buf, sizeof buf));
	T(syscall(SYS_getdents64, dfd, buf, 8));
	T(syscall(SYS_getdents64, 99, buf, sizeof buf));
	T(syscall(SYS_getdents64, dfd, bad, sizeof buf));
	T(close(fd));
	T(lseek(dfd, 0, SEEK_SET));
	long r;
	T(r = syscall(SYS_getdents, dfd, buf, sizeof buf));
	int names = 0;
	for (long off = 0; off < r;) {
		unsigned short reclen = *(unsigned short *)(buf + off + 16);
		if (!strcmp(buf + off + 18, "file") && buf[off + reclen - 1] == DT_REG)
			say("getdents: file is a regular file");
		names++;
		off += reclen;
	}
	say("getdents: %d names", names);

	char cwd[PATH_MAX];
	T(chdir("a"));
	if (getcwd(cwd, sizeof cwd))
		say("cwd ends in %s", strrchr(cwd, '/'));
	T(syscall(SYS_getcwd, cwd, 1));
	T(syscall(SYS_getcwd, bad, sizeof cwd));
	T(chdir(".."));
	T(fchdir(dfd));
	if (getcwd(cwd, sizeof cwd))
		say("cwd ends in %s", strrchr(cwd, '/'));
	T(chdir("file"));
	T(chdir("nope"));
	T(chdir(bad));
	T(fchdir(99));
	T(fd = open("file", O_RDONLY));
	T(fchdir(fd));
	T(close(fd));
	T(chdir(".."));
	T(close(dfd));
	T(mkdir("gone", 0755));
	T(chdir("gone"));
	T(rmdir("../gone"));
	T(syscall(SYS_getcwd, cwd, sizeof cwd));
	T(close(open("x", O_CREAT | O_WRONLY, 0644)));
	T(chdir(".."));
}

static void section_link(void) {
	char buf[64];
	struct stat st;
	int fd;
	T(close(open("t", O_CREAT | O_WRONLY, 0644)));
	T(mkdir("dir", 0755));
	T(link("t", "t2"));
	T(link("t", "t2"));
	T(link("nope", "t3"));
	T(link("dir", "dir2"));
	T(stat("t", &st));
	describe("t", &st);
	T(fd = open("dir", O_RDONLY | O_DIRECTORY));
	T(linkat(AT_FDCWD, "t", fd, "t4", 0));
	T(linkat(AT_FDCWD, "t", fd, "t5", 0x9999));
	T(symlink("t", "sym"));
	T(linkat(AT_FDCWD, "sym", AT_FDCWD, "hsym", 0));
	T(lstat("hsym", &st));
	describe("hsym", &st);
	T(linkat(AT_FDCWD, "sym", AT_FDCWD, "hfol", AT_SYMLINK_FOLLOW));
	T(lstat("hfol", &st));
	describe("hfol", &st);
	T(symlink("", "empty"));
	T(symlink("t", "sym"));
	T(symlinkat("../t", fd, "up"));
	T(readlink("sym", buf, sizeof buf));
	T(readlinkat(fd, "up", buf, sizeof buf));
	say("up -> %.4s", buf);
	T(readlink("sym", buf, 0));
	T(syscall(SYS_readlink, "sym", buf, -1));
	T(readlink("t", buf, sizeof buf));
	T(readlink("nope", buf, sizeof buf));
	T(readlink("sym", bad, sizeof buf));
	T(readlinkat(fd, "", buf, sizeof buf));
	T(readlink("up", buf, 2));
	T(readlinkat(fd, "up", buf, 2));
	say("truncated %.2s", buf);
	T(rename("t2", "r"));
	T(rename("nope", "r2"));
	T(rename("dir", "dir/sub"));
	T(rename("r", "dir"));
	T(rename("dir", "r"));
	T(rename("r", "r/"));
	T(renameat(fd, "t4", AT_FDCWD, "t4"));
	T(syscall(SYS_renameat2, AT_FDCWD, "t4", AT_FDCWD, "r", RENAME_NOREPLACE_));
	T(syscall(SYS_renameat2, AT_FDCWD, "t4", AT_FDCWD, "sym", RENAME_EXCHANGE_));
	T(lstat("t4", &st));
	describe("t4 after exchange", &st);
	T(syscall(SYS_renameat2, AT_FDCWD, "t4", AT_FDCWD, "nope", RENAME_EXCHANGE_));
	T(syscall(SYS_renameat2, AT_FDCWD, "t4", AT_FDCWD, "r", 3));
	T(syscall(SYS_renameat2, AT_FDCWD, "t4", AT_FDCWD, "r", 0x100));
	T(rename("t4", bad));
	T(close(fd));
}

static void section_attr(void) {
	struct stat st;
	int fd;
	T(fd = open("m", O_CREAT | O_RDWR, 0644));
	T(chmod("m", 04711));
	T(stat("m", &st));
	describe("m", &st);
	T(fchmod(fd, 0600));
	T(fchmodat(AT_FDCWD, "m", 0640, 0));
	T(symlink("m", "lm"));
	T(syscall(SYS_fchmodat2, AT_FDCWD, "lm", 0600, AT_SYMLINK_NOFOLLOW));
	T(syscall(SYS_fchmodat2, AT_FDCWD, "lm", 0600, 0x4000));
	T(syscall(SYS_fchmodat2, fd, "", 0604, AT_EMPTY_PATH));
	T(stat("m", &st));
	describe("m", &st);
	T(chmod("nope", 0600));
	T(fchmod(99, 0600));
	T(chown("m", 1000, 1001));
	T(stat("m", &st));
	describe("m", &st);
	T(fchown(fd, -1, 1002));
	T(lchown("lm", 1003, 1003));
	T(lstat("lm", &st));
	describe("lm", &st);
	T(stat("lm", &st));
	describe("m via lm", &st);
	T(fchownat(AT_FDCWD, "m", 0, 0, 0));
	T(fchownat(AT_FDCWD, "m", 0, 0, 0x1));
	T(fchown(99, 0, 0));
	T(chown("nope", 0, 0));
	T(truncate("m", 7));
	T(stat("m", &st));
	describe("m", &st);
	T(truncate("m", -1));
	T(truncate(".", 0));
	T(truncate("nope", 0));

	struct timespec ts[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
	T(utimensat(AT_FDCWD, "m", ts, 0));
	T(stat("m", &st));
	say("m times %ld.%09ld %ld.%09ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = 1300000000;
	T(utimensat(AT_FDCWD, "m", ts, 0));
	T(fstat(fd, &st));
	say("m times %ld.%09ld %ld.%09ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	ts[0].tv_nsec = 1000000000;
	T(utimensat(AT_FDCWD, "m", ts, 0));
	T(utimensat(AT_FDCWD, "m", ts, 0x4000));
	T(syscall(SYS_utimensat, AT_FDCWD, "m", bad, 0));
	ts[0].tv_nsec = 5;
	T(syscall(SYS_utimensat, fd, NULL, ts, 0));
	T(fstat(fd, &st));
	say("m atime %ld.%09ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
	T(syscall(SYS_utimensat, fd, NULL, ts, AT_SYMLINK_NOFOLLOW));
	T(syscall(SYS_utimensat, AT_FDCWD, NULL, ts, 0));
	struct timeval tv[2] = {{1400000000, 1}, {1400000001, 2}};
	T(utimes("m", tv));
	T(stat("m", &st));
	say("m times %ld.%09ld %ld.%09ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	tv[0].tv_usec = 1000000;
	T(utimes("m", tv));
	tv[0].tv_usec = 0;
	T(futimesat(AT_FDCWD, "m", tv));
	struct utimbuf ub = {1500000000, 1500000001};
	T(utime("m", &ub));
	T(stat("m", &st));
	say("m times %ld.%09ld %ld.%09ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	T(utime("nope", &ub));

	T(access("m", R_OK | W_OK));
	T(access("m", X_OK));
	T(chmod("m", 0700));
	T(access("m", X_OK));
	T(access("m", 8));
	T(access("nope", F_OK));
	T(access(bad, F_OK));
	T(faccessat(AT_FDCWD, "m", R_OK, 0));
	T(syscall(SYS_faccessat2, AT_FDCWD, "lm", R_OK, AT_SYMLINK_NOFOLLOW));
	T(syscall(SYS_faccessat2, fd, "", R_OK, AT_EMPTY_PATH));
	T(syscall(SYS_faccessat2, AT_FDCWD, "m", R_OK, 0x8000));
	T(syscall(SYS_faccessat, 99, "m", R_OK));
	T(close(fd));
}

static void section_pipe(void) {
	int p[2], n, fd;
	char buf[64];
	signal(SIGPIPE, SIG_IGN);
	T(pipe(p));
	// A read asks for more than a full pipe holds: it returns what is there.
	static char big[1 << 17];
	T(write(p[1], big, 1 << 16));
	T(read(p[0], big, sizeof big));
	T(write(p[1], "hello", 5));
	T(ioctl(p[0], FIONREAD, &n));
	say("FIONREAD %d", n);
	T(read(p[0], buf, sizeof buf));
	T(lseek(p[0], 0, SEEK_CUR));
	T(pread(p[0], buf, 1, 0));
	T(fsync(p[1]));
	T(write(p[0], "x", 1));
	T(close(p[1]));
	T(read(p[0], buf, sizeof buf));
	T(close(p[0]));
	T(pipe2(p, O_CLOEXEC | O_NONBLOCK));
	T(fcntl(p[0], F_GETFD));
	T(fcntl(p[0], F_GETFL));
	T(fcntl(p[1], F_GETFL));
	T(read(p[0], buf, 1));
	T(syscall(SYS_preadv2, p[0], &(struct iovec){buf, 1}, 1, -1L, 0, RWF_NOWAIT_));
	n = 0;
	T(ioctl(p[0], FIONBIO, &n));
	T(fcntl(p[0], F_GETFL));
	n = 1;
	T(ioctl(p[0], FIONBIO, &n));
	T(fcntl(p[0], F_GETFL));
	T(close(p[0]));
	T(write(p[1], "x", 1));
	T(close(p[1]));
	T(pipe2(p, O_DIRECT << 1));
	T(pipe2(p, 0x800000));
	T(syscall(SYS_pipe, bad));
	struct stat st;
	T(pipe(p));
	T(fstat(p[0], &st));
	say("pipe: fifo %d", S_ISFIFO(st.st_mode));
	T(close(p[0]));
	T(close(p[1]));

	T(mkfifo("fifo", 0644));
	T(fd = open("fifo", O_RDWR));
	T(write(fd, "ff", 2));
	T(read(fd, buf, sizeof buf));
	T(close(fd));
	T(fd = open("fifo", O_WRONLY | O_NONBLOCK));
	T(fd = open("fifo", O_RDONLY | O_NONBLOCK));
	T(close(fd));

	T(fd = memfd_create("mem", MFD_CLOEXEC_ | MFD_ALLOW_SEALING_));
	T(fcntl(fd, F_GETFD));
	T(fcntl(fd, F_GETFL));
	T(write(fd, "memory", 6));
	T(fstat(fd, &st));
	say("memfd: reg %d mode %o size %lld nlink %lu", S_ISREG(st.st_mode), st.st_mode & 07777, (long long)st.st_size, (unsigned long)st.st_nlink);
	T(ftruncate(fd, 4096));
	T(lseek(fd, 0, SEEK_END));
	T(pread(fd, buf, 6, 0));
	T(close(fd));
	T(memfd_create("mem", 0x100));
	memset(buf, 'n', sizeof buf);
	char name[300];
	memset(name, 'n', sizeof name);
	name[sizeof name - 1] = 0;
	T(memfd_create(name, 0));
	T(memfd_create(bad, 0));
}

static void section_splice(void) {
	int in, out, p[2];
	char buf[64];
	off_t off;
	T(in = open("src", O_CREAT | O_RDWR, 0644));
	T(write(in, "abcdefghijklmnopqrstuvwxyz", 26));
	T(out = open("dst", O_CREAT | O_RDWR | O_TRUNC, 0644));
	off = 3;
	T(sendfile(out, in, &off, 5));
	say("off %ld", (long)off);
	T(lseek(in, 0, SEEK_CUR));
	T(lseek(in, 20, SEEK_SET));
	T(sendfile(out, in, NULL, 100));
	T(lseek(in, 0, SEEK_CUR));
	T(pread(out, buf, sizeof buf, 0));
	say("dst %.11s", buf);
	T(sendfile(out, in, (off_t *)bad, 5));
	off = -1;
	T(sendfile(out, in, &off, 5));
	T(sendfile(99, in, NULL, 5));
	T(sendfile(out, 99, NULL, 5));
	int ro = open("src", O_RDONLY);
	T(sendfile(ro, in, NULL, 5));
	int ap = open("dst", O_WRONLY | O_APPEND);
	T(sendfile(ap, in, NULL, 5));
	T(pipe(p));
	off = 0;
	T(sendfile(p[1], in, &off, 4));
	T(read(p[0], buf, sizeof buf));
	T(write(p[1], "pp", 2));
	T(sendfile(out, p[0], NULL, 2));
	T(read(p[0], buf, sizeof buf));

	loff_t a = 0, b = 0;
	T(copy_file_range(in, &a, out, &b, 10, 0));
	say("offsets %lld %lld", (long long)a, (long long)b);
	T(copy_file_range(in, &a, out, NULL, 100, 0));
	T(lseek(out, 0, SEEK_CUR));
	T(copy_file_range(in, NULL, out, NULL, 10, 1));
	T(copy_file_range(in, &a, out, &b, 10, 0));
	a = 0, b = 5;
	T(copy_file_range(in, &a, in, &b, 10, 0));
	T(copy_file_range(p[0], NULL, out, NULL, 10, 0));
	int d = open(".", O_RDONLY);
	T(copy_file_range(d, NULL, out, NULL, 10, 0));
	T(copy_file_range(in, NULL, ro, NULL, 10, 0));
	T(copy_file_range(in, NULL, ap, NULL, 10, 0));
	a = -1;
	T(copy_file_range(in, &a, out, NULL, 10, 0));
	T(copy_file_range(in, (loff_t *)bad, out, NULL, 10, 0));

	a = 2;
	T(splice(in, &a, p[1], NULL, 6, 0));
	say("splice off %lld", (long long)a);
	T(ioctl(p[0], FIONREAD, &d));
	say("queued %d", d);
	b = 100;
	T(splice(p[0], NULL, out, &b, 4, 0));
	T(splice(p[0], NULL, out, NULL, 100, 0));
	T(pread(out, buf, 2, 100));
	say("spliced %.2s", buf);
	T(splice(p[0], NULL, out, NULL, 100, SPLICE_F_NONBLOCK));
	T(splice(in, NULL, out, NULL, 10, 0));
	T(splice(p[0], &a, out, NULL, 10, 0));
	T(splice(in, NULL, p[1], &a, 10, 0));
	T(splice(in, NULL, p[1], NULL, 0, 0));
	T(splice(in, NULL, p[1], NULL, 10, 0x100));
	T(splice(p[0], NULL, p[1], NULL, 10, 0));
	T(splice(99, NULL, p[1], NULL, 10, 0));
	T(splice(in, NULL, ap, NULL, 10, 0));
	int q[2];
	T(pipe(q));
	T(write(p[1], "xyz", 3));
	T(splice(p[0], NULL, q[1], NULL, 100, 0));
	T(read(q[0], buf, sizeof buf));
	T(write(p[1], "teedata", 7));
	T(tee(p[0], q[1], 4, 0));
	T(read(q[0], buf, sizeof buf));
	say("tee copied %.4s", buf);
	T(read(p[0], buf, sizeof buf));
	say("tee left %.7s", buf);
	T(fcntl(p[0], F_SETFL, O_NONBLOCK));
	T(tee(p[0], q[1], 4, 0));
	T(tee(p[0], q[1], 4, SPLICE_F_NONBLOCK));
	T(tee(p[0], p[1], 4, 0));
	T(tee(in, q[1], 4, 0));
	T(tee(p[0], out, 4, 0));
	T(tee(p[1], q[1], 4, 0));
	T(tee(p[0], q[1], 4, 0x100));
	T(tee(p[0], q[1], 0, 0));
	T(tee(99, q[1], 4, 0));
	T(close(p[0]));
	T(close(p[1]));
	T(close(q[0]));
	T(close(q[1]));
	T(close(in));
	T(close(out));
	T(close(ro));
	T(close(ap));
}

static void showlock(const char *what, struct flock *l) {
	say("%s: type %d whence %d start %ld len %ld pid %s", what, l->l_type, l->l_whence, (long)l->l_start, (long)l->l_len,
	    l->l_pid == getpid() ? "self" : l->l_pid == -1 ? "-1" : l->l_pid == 0 ? "0" : "other");
}

static void section_lock(void) {
	int f1, f2, f3, wo;
	struct flock l;
	T(f1 = open("lk", O_CREAT | O_RDWR, 0644));
	T(f2 = open("lk", O_RDWR));
	T(flock(f1, LOCK_EX));
	T(flock(f2, LOCK_EX | LOCK_NB));
	T(flock(f2, LOCK_SH | LOCK_NB));
	T(flock(f1, LOCK_SH));
	T(flock(f2, LOCK_SH | LOCK_NB));
	T(flock(f2, LOCK_EX | LOCK_NB));
	T(flock(f2, LOCK_UN));
	T(flock(f1, LOCK_UN));
	T(flock(f2, LOCK_EX | LOCK_NB));
	T(f3 = dup(f2));
	T(close(f2));
	T(flock(f1, LOCK_EX | LOCK_NB));
	T(close(f3));
	T(flock(f1, LOCK_EX | LOCK_NB));
	T(flock(f1, 0));
	T(flock(f1, LOCK_NB));
	T(flock(99, LOCK_EX));
	T(flock(f1, LOCK_UN));

	T(f2 = open("lk", O_RDWR));
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
	T(fcntl(f1, F_SETLK, &l));
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 10};
	T(fcntl(f1, F_SETLK, &l));
	l = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
	T(fcntl(f2, F_OFD_GETLK_, &l));
	showlock("ofd getlk", &l);
	T(fcntl(f2, F_GETLK, &l));
	showlock("posix getlk (same process)", &l);
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 15, .l_len = 10};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 0};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	l = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	T(fcntl(f1, F_GETLK, &l));
	showlock("posix getlk", &l);
	l = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	T(fcntl(f1, F_OFD_GETLK_, &l));
	showlock("ofd getlk from f1", &l);
	l = (struct flock){.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 2};
	T(fcntl(f1, F_SETLK, &l));
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 20};
	T(fcntl(f2, F_OFD_GETLK_, &l));
	showlock("after unlocking 5-6", &l);
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 2};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	T(f3 = open("lk", O_RDONLY));
	T(close(f3));
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 20};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = -1, .l_len = 1};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	l = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_END, .l_start = 5, .l_len = -5};
	T(fcntl(f2, F_OFD_GETLK_, &l));
	showlock("seek_end", &l);
	l = (struct flock){.l_type = F_WRLCK, .l_whence = 7};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	l = (struct flock){.l_type = 9};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	l = (struct flock){.l_type = F_UNLCK};
	T(fcntl(f2, F_GETLK, &l));
	l = (struct flock){.l_type = F_WRLCK, .l_pid = 1};
	T(fcntl(f2, F_OFD_SETLK_, &l));
	T(fcntl(f2, F_OFD_SETLK_, bad));
	T(wo = open("lk", O_WRONLY));
	l = (struct flock){.l_type = F_RDLCK, .l_start = 100};
	T(fcntl(wo, F_SETLK, &l));
	T(f3 = open("lk", O_RDONLY));
	l = (struct flock){.l_type = F_WRLCK, .l_start = 100};
	T(fcntl(f3, F_SETLK, &l));
	l = (struct flock){.l_type = F_WRLCK, .l_start = 100};
	T(fcntl(99, F_SETLK, &l));
	T(close(f1));
	T(close(f2));
	T(close(f3));
	T(close(wo));
}

// section_block waits forever for a lock its own other open file
// description holds (natively too): only for checking that the wait ends
// when the process is killed.
static void section_block(void) {
	int f1 = open("blk", O_CREAT | O_RDWR, 0644), f2 = open("blk", O_RDWR);
	struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	T(fcntl(f1, F_OFD_SETLK_, &l));
	say("blocking");
	T(fcntl(f2, F_OFD_SETLK_ + 1, &l));
}

// section_tty opens the controlling terminal, writes to it and reads its
// attributes: only for the sandbox, whose terminal the test controls.
static void section_tty(void) {
	struct termios tio;
	struct stat st;
	int fd;
	T(fd = open("/dev/tty", O_RDWR));
	if (fd < 0)
		return;
	T(fstat(fd, &st));
	say("tty %u:%u chr %d", major(st.st_rdev), minor(st.st_rdev), S_ISCHR(st.st_mode));
	T(tcgetattr(fd, &tio));
	T(write(fd, "via tty\n", 8));
	T(close(fd));
}

static void cleanup(const char *dir) {
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			cleanup(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

int main(int argc, char **argv) {
	static const struct {
		const char *name;
		void (*run)(void);
	} sections[] = {
		{"open", section_open}, {"fds", section_fds}, {"rw", section_rw},
		{"stat", section_stat}, {"dir", section_dir}, {"link", section_link},
		{"attr", section_attr}, {"pipe", section_pipe}, {"splice", section_splice},
		{"lock", section_lock}, {"block", section_block}, {"tty", section_tty},
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(022);
	memset(longname, 'n', sizeof longname - 1);
	for (size_t i = 0; i < sizeof longpath - 1; i++)
		longpath[i] = i % 2 ? '/' : 'p';
	char dir[] = "/tmp/kvmbox-files-XXXXXX";
	if (!mkdtemp(dir) || chdir(dir) != 0) {
		perror("mkdtemp");
		return 1;
	}
	for (int i = 1; i < argc; i++)
		for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++)
			if (!strcmp(argv[i], sections[j].name)) {
				printf("== %s\n", argv[i]);
				sections[j].run();
			}
	if (chdir("/") != 0)
		return 1;
	cleanup(dir);
	return 0;
}
