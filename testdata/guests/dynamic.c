// Dynamic linking: a library loaded with dlopen, personality(2) with
// ADDR_NO_RANDOMIZE across execve, and execve of programs whose
// interpreter is missing, too short or not ELF. With "exec PATH ARGS..." it
// executes PATH; with "norandom" it prints its personality and where main
// is; with "hello" it says hello.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e) {
	switch (e) {
	case ENOENT: return "ENOENT";
	case ENOEXEC: return "ENOEXEC";
	case ELIBBAD: return "ELIBBAD";
	case EACCES: return "EACCES";
	case EIO: return "EIO";
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

// mapsNames reports whether /proc/self/maps names the program's own
// executable code after /proc/self/exe, and the interpreter's after a
// file called ld-*.
static void mapsNames(void) {
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n < 0 ? 0 : n] = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[8192];
	int program = 0, interp = 0;
	while (f != NULL && fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = 0;
		char *path = strchr(line, '/');
		if (strstr(line, " r-xp ") == NULL || path == NULL)
			continue;
		char *base = strrchr(path, '/') + 1;
		program |= strcmp(path, exe) == 0;
		interp |= strncmp(base, "ld-", 3) == 0;
	}
	if (f != NULL)
		fclose(f);
	printf("maps names the program's code: %d, the interpreter's: %d\n", program, interp);
}

// run forks, executes argv in the child and reports how the child ended.
static void run(char **argv) {
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("%s %s: exit %d\n", argv[0], argv[1] ? argv[1] : "", WEXITSTATUS(status));
}

// withInterp writes a copy of this program whose PT_INTERP names interp
// to path.
static int withInterp(const char *path, const char *interp) {
	int in = open("/proc/self/exe", O_RDONLY);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0)
		return -1;
	char *data = malloc(st.st_size);
	if (read(in, data, st.st_size) != st.st_size)
		return -1;
	close(in);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)data;
	Elf64_Phdr *ph = (Elf64_Phdr *)(data + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_INTERP && strlen(interp) < ph[i].p_filesz) {
			memset(data + ph[i].p_offset, 0, ph[i].p_filesz);
			strcpy(data + ph[i].p_offset, interp);
		}
	}
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (out < 0 || write(out, data, st.st_size) != st.st_size)
		return -1;
	free(data);
	return close(out);
}

static void tryExec(const char *path) {
	char *argv[] = {(char *)path, NULL};
	execv(path, argv);
	printf("execve %s: %s\n", path, errname(errno));
}

int main(int argc, char **argv) {
	if (argc > 2 && strcmp(argv[1], "exec") == 0) {
		execv(argv[2], argv + 2);
		printf("execve %s: %s\n", argv[2], errname(errno));
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "hello") == 0) {
		printf("hello, personality %#x\n", personality(0xffffffff));
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "norandom") == 0) {
		printf("personality %#x\n", personality(0xffffffff));
		printf("main at %p\n", (void *)main);
		return 0;
	}

	void *libm = dlopen("libm.so.6", RTLD_NOW);
	if (libm == NULL) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	double (*cosine)(double) = (double (*)(double))dlsym(libm, "cos");
	printf("cos(0.5) = %.9f\n", cosine(0.5));
	printf("AT_BASE set: %d\n", getauxval(AT_BASE) != 0);
	printf("AT_ENTRY is _start's page: %d\n", getauxval(AT_ENTRY) != 0);
	mapsNames();

	printf("personality was %#x\n", personality(ADDR_NO_RANDOMIZE));
	printf("personality now %#x\n", personality(0xffffffff));
	char *self[] = {"/proc/self/exe", "norandom", NULL};
	run(self);
	personality(0);

	if (withInterp("/tmp/dynamic-missing", "/nonexistent/ld.so") < 0 ||
	    withInterp("/tmp/dynamic-short", "/tmp/short") < 0 ||
	    withInterp("/tmp/dynamic-notelf", "/tmp/notelf") < 0) {
		printf("writing copies: %s\n", strerror(errno));
		return 1;
	}
	// Linux reads a whole ELF header (64 bytes) from the interpreter first.
	char text[100];
	memset(text, '#', sizeof text);
	int fd = open("/tmp/short", O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (fd < 0 || write(fd, text, 10) != 10 || close(fd) < 0)
		return 1;
	fd = open("/tmp/notelf", O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (fd < 0 || write(fd, text, sizeof text) != sizeof text || close(fd) < 0)
		return 1;
	tryExec("/tmp/dynamic-missing");
	tryExec("/tmp/dynamic-short");
	tryExec("/tmp/dynamic-notelf");
	const char *files[] = {"/tmp/dynamic-missing", "/tmp/dynamic-short", "/tmp/dynamic-notelf", "/tmp/short", "/tmp/notelf"};
	for (int i = 0; i < 5; i++)
		unlink(files[i]);
	return 3;
}
