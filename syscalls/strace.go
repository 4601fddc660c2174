package syscalls

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

// Arg says how strace shows one argument.
type Arg int

const (
	// ArgInt is a signed integer.
	ArgInt Arg = iota
	// ArgHex is a flag word, address or size shown in hex.
	ArgHex
	// ArgPath is a NUL-terminated string in guest memory.
	ArgPath
	// ArgInBuf is a buffer the call reads; its length is the next argument.
	ArgInBuf
	// ArgOutBuf is a buffer the call fills; its length is the result.
	ArgOutBuf
	// ArgDirFD is a directory descriptor of the *at calls: AT_FDCWD by
	// name, other values as signed integers.
	ArgDirFD
	// ArgOct is a file mode, shown in octal.
	ArgOct
)

const straceBufMax = 32

func trace(w io.Writer, t *kernel.Task, e *Entry, a *kernel.SyscallArgs, result uint64) {
	var b strings.Builder
	fmt.Fprintf(&b, "[pid %d] %s(", t.TID(), e.Name)
	for i, kind := range e.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		formatArg(&b, t, kind, a, i, result)
	}
	b.WriteString(") = ")
	formatResult(&b, result)
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}

func traceUnknown(w io.Writer, t *kernel.Task, nr uint64, e *Entry, a *kernel.SyscallArgs) {
	name := "syscall_" + strconv.FormatUint(nr, 10)
	if e != nil && e.Name != "" {
		name = e.Name
	}
	fmt.Fprintf(w, "[pid %d] %s(%#x, %#x, %#x, %#x, %#x, %#x) = -1 ENOSYS (%s)\n",
		t.TID(), name, a[0], a[1], a[2], a[3], a[4], a[5], unix.ENOSYS.Error())
}

func writeUnsupported(w io.Writer, t *kernel.Task, nr uint64, name string) {
	fmt.Fprintf(w, "kvmbox: pid %d: unsupported system call %d (%s): ENOSYS\n", t.TID(), nr, name)
}

func formatResult(b *strings.Builder, r uint64) {
	if e := -int64(r); e > 0 && e < 4096 {
		errno := unix.Errno(e)
		fmt.Fprintf(b, "-1 %s (%s)", unix.ErrnoName(errno), errno.Error())
		return
	}
	if int64(r) < 0 || r > 1<<32 {
		fmt.Fprintf(b, "%#x", r)
		return
	}
	b.WriteString(strconv.FormatUint(r, 10))
}

func formatArg(b *strings.Builder, t *kernel.Task, kind Arg, a *kernel.SyscallArgs, i int, result uint64) {
	v := a[i]
	switch kind {
	case ArgInt:
		b.WriteString(strconv.FormatInt(int64(int32(v)), 10))
	case ArgHex:
		fmt.Fprintf(b, "%#x", v)
	case ArgDirFD:
		if int32(v) == unix.AT_FDCWD {
			b.WriteString("AT_FDCWD")
			return
		}
		b.WriteString(strconv.FormatInt(int64(int32(v)), 10))
	case ArgOct:
		fmt.Fprintf(b, "%#o", v)
	case ArgPath:
		s, err := t.ThreadGroup().MM().ReadString(v, unix.PathMax)
		if err != nil {
			fmt.Fprintf(b, "%#x", v)
			return
		}
		b.WriteString(strconv.Quote(s))
	case ArgInBuf, ArgOutBuf:
		n := uint64(0)
		if kind == ArgInBuf && i+1 < len(a) {
			n = a[i+1]
		} else if kind == ArgOutBuf && int64(result) > 0 {
			n = result
		}
		quoteGuestBuffer(b, t, v, n)
	}
}

func quoteGuestBuffer(b *strings.Builder, t *kernel.Task, addr, n uint64) {
	show := min(n, straceBufMax)
	buf := make([]byte, show)
	got, _ := t.ThreadGroup().MM().CopyIn(buf, addr)
	if got == 0 && show > 0 {
		fmt.Fprintf(b, "%#x", addr)
		return
	}
	q := strconv.Quote(string(buf[:got]))
	b.WriteString(q)
	if n > uint64(got) {
		b.WriteString("...")
	}
}
