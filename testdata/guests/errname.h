// errname.h: the name of an errno value, as the conformance programs print
// it ("0" for none; "errno N" for one without a name here), so that a
// native run and a sandboxed one can be compared line by line.
#include <errno.h>
#include <stdio.h>

static const char *ename(int e) {
	switch (e) {
	case 0: return "0";
#define E(x) case x: return #x;
	E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(ENOEXEC) E(EBADF)
	E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENOTDIR)
	E(EISDIR) E(EINVAL) E(EMFILE) E(ENOTTY) E(EFBIG) E(ESPIPE) E(EROFS)
	E(EPIPE) E(ENODEV) E(ENOSYS) E(ENOTSOCK) E(EMSGSIZE) E(EPROTOTYPE)
	E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT) E(EOPNOTSUPP)
	E(EAFNOSUPPORT) E(EADDRINUSE) E(ECONNRESET) E(ENOBUFS) E(EISCONN)
	E(ENODATA) E(ERANGE) E(E2BIG)
	E(ENOTCONN) E(ECONNREFUSED) E(EINPROGRESS) E(EALREADY) E(EADDRNOTAVAIL)
	E(EDESTADDRREQ) E(EDOM) E(ENETUNREACH) E(ETIMEDOUT) E(ECONNABORTED)
	E(EHOSTUNREACH)
#undef E
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}
