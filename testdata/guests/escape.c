// Tries to reach host files outside the sandbox's mounts. argv[1] is a
// read-write mount of a host tree with planted symlinks, argv[2] a
// read-only mount. Prints one line per attempt: the errno name, or what
// was read. The test fails if the sentinel's content ever shows up.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *errname(int e) {
	switch (e) {
	case ENOENT: return "ENOENT";
	case EXDEV: return "EXDEV";
	case EROFS: return "EROFS";
	case ELOOP: return "ELOOP";
	case EACCES: return "EACCES";
	case ENOTDIR: return "ENOTDIR";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	}
	return "other";
}

static void try_read(const char *label, int dirfd, const char *path, int flags) {
	int fd = openat(dirfd, path, O_RDONLY | flags);
	if (fd < 0) {
		printf("%s: %s\n", label, errname(errno));
		return;
	}
	char buf[128] = {0};
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	printf("%s: read %zd bytes: %s\n", label, n, n > 0 ? buf : "");
}

static void result(const char *label, int r) { printf("%s: %s\n", label, r == 0 ? "ok" : errname(errno)); }

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	const char *rw = argv[1], *ro = argv[2], *secret = argv[3];
	char p[4096];
	if (chdir(rw)) return 3;
	try_read("absolute path of the secret", AT_FDCWD, secret, 0);
	try_read("absolute symlink", AT_FDCWD, "abs-link", 0);
	try_read("relative symlink climbing out", AT_FDCWD, "rel-link", 0);
	try_read("symlink to the root", AT_FDCWD, "root-link/secret", 0);
	snprintf(p, sizeof p, "../../../../../../../..%s", secret);
	try_read("dot-dot chain", AT_FDCWD, p, 0);
	snprintf(p, sizeof p, "/proc/self/root%s", secret);
	try_read("/proc/self/root", AT_FDCWD, p, 0);
	int dir = open(".", O_PATH | O_DIRECTORY);
	snprintf(p, sizeof p, "../../../../..%s", secret);
	try_read("openat from an O_PATH dirfd", dir, p, 0);
	try_read("O_NOFOLLOW on the absolute symlink", dir, "abs-link", O_NOFOLLOW);
	int fd = open("inside.txt", O_RDONLY);
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	char target[4096] = {0};
	readlink(p, target, sizeof target - 1);
	printf("/proc/self/fd of a mounted file shows the sandbox path: %d\n", strstr(target, rw) == target);
	// swap is a directory one moment and a host symlink to the secret's
	// directory the next.
	for (int i = 0; i < 2000; i++) {
		const char *paths[] = {"swap/secret", "swap/inner/../secret", "swap/inner/../../swap/secret"};
		int s = open(paths[i % 3], O_RDONLY);
		if (s >= 0) {
			char buf[64] = {0};
			if (read(s, buf, sizeof buf - 1) > 0 && strstr(buf, "TOPSECRET")) printf("LEAK through the swapped directory\n");
			close(s);
		}
	}
	printf("walked the swapping directory 2000 times\n");
	result("hard link to /tmp", link("inside.txt", "/tmp/stolen"));
	result("rename to /tmp", rename("inside.txt", "/tmp/moved"));
	snprintf(p, sizeof p, "%s/file.txt", ro);
	result("write to the read-only mount", open(p, O_WRONLY) < 0 ? -1 : 0);
	snprintf(p, sizeof p, "%s/new", ro);
	result("create in the read-only mount", open(p, O_WRONLY | O_CREAT, 0644) < 0 ? -1 : 0);
	snprintf(p, sizeof p, "%s/file.txt", ro);
	result("unlink in the read-only mount", unlink(p));
	result("chmod in the read-only mount", chmod(p, 0777));
	snprintf(p, sizeof p, "%s/dir", ro);
	result("mkdir in the read-only mount", mkdir(p, 0755));
	return 0;
}
