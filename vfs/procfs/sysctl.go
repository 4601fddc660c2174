package procfs

import (
	"math"

	"golang.org/x/sys/unix"
)

// sysctlHandler says which of Linux's proc_handlers a numeric sysctl
// uses: they differ in what they accept and what a write returns.
type sysctlHandler uint8

const (
	// dointvecMinmax is proc_dointvec_minmax: a C int within bounds.
	dointvecMinmax sysctlHandler = iota
	// doulongvecMinmax is proc_doulongvec_minmax: an unsigned long within
	// bounds, no sign.
	doulongvecMinmax
	// dopipeMaxSize is proc_dopipe_max_size: an unsigned int rounded up to
	// a power of two of at least a page, at most 2 GiB.
	dopipeMaxSize
)

// Linux's bounds on sysctl writes: proc_get_long reads a number of
// fewer than TMPBUFLEN-1 characters from at most a page.
const (
	sysctlTmpBufLen = 22
	sysctlMaxWrite  = 4096 - 1
	pipeMinSize     = 4096

	// nrOpenMin and nrOpenMax bound fs/nr_open (sysctl_nr_open_min and
	// _max: BITS_PER_LONG, and INT_MAX rounded down to a multiple of it).
	nrOpenMin = 64
	nrOpenMax = math.MaxInt32 &^ 63
	// pidMaxMin and pidMaxLimit bound kernel/pid_max (RESERVED_PIDS+1,
	// PID_MAX_LIMIT).
	pidMaxMin   = 301
	pidMaxLimit = 1 << 22
	// maxUTSLen is the longest host or domain name (__NEW_UTS_LEN).
	maxUTSLen = 64
)

// sysctlNum makes a numeric file of /proc/sys whose value is
// Sysctls.Num(path); perm without owner write makes it read-only, even
// for uid 0.
func sysctlNum(name, path string, perm uint32, h sysctlHandler, lo, hi uint64) *entry {
	e := sysctl(name, perm, func(c *call) ([]byte, error) { return line(c.fs.src.Sysctls().Num(path)), nil })
	if perm&0o200 != 0 {
		e.write = func(c *call, data []byte, off int64) (int, error) {
			return writeNum(c, path, h, lo, hi, data, off)
		}
	}
	return e
}

// sysctlString makes a string file of /proc/sys (proc_dostring) whose
// value is Sysctls.String(path), at most maxLen bytes.
func sysctlString(name, path string, perm uint32, maxLen int) *entry {
	e := sysctl(name, perm, func(c *call) ([]byte, error) { return line(c.fs.src.Sysctls().String(path)), nil })
	if perm&0o200 != 0 {
		e.write = func(c *call, data []byte, off int64) (int, error) {
			// As with sysctl_writes_strict: a write continues the value
			// at its offset, and one past its end changes nothing.
			cur := c.fs.src.Sysctls().String(path)
			if len(data) == 0 || off > int64(len(cur)) {
				return len(data), nil
			}
			b := []byte(cur[:off])
			for _, ch := range data {
				if ch == 0 || ch == '\n' || len(b) >= maxLen {
					break
				}
				b = append(b, ch)
			}
			if err := c.fs.src.Sysctls().SetString(c, path, string(b)); err != nil {
				return 0, err
			}
			return len(data), nil
		}
	}
	return e
}

// writeNum parses and stores a numeric sysctl write as Linux's handler
// h does. As with sysctl_writes_strict, a write at a non-zero offset
// changes nothing.
func writeNum(c *call, path string, h sysctlHandler, lo, hi uint64, data []byte, off int64) (int, error) {
	if len(data) == 0 {
		return 0, nil
	}
	if off != 0 {
		if h == dopipeMaxSize {
			return len(data), nil
		}
		return 0, nil
	}
	left := data[:min(len(data), sysctlMaxWrite)]
	left = left[spaces(left):]
	if len(left) == 0 {
		return 0, unix.EINVAL
	}
	v, neg, n, ok := parseLong(left)
	if !ok {
		return 0, unix.EINVAL
	}
	left = left[n:]
	left = left[spaces(left):]
	switch h {
	case dointvecMinmax:
		if !neg && v > math.MaxInt32 || neg && v > math.MaxInt32+1 {
			return 0, unix.EINVAL
		}
		if neg && v != 0 || v < lo || v > hi {
			return 0, unix.EINVAL
		}
	case doulongvecMinmax:
		if neg || v < lo || v > hi {
			return 0, unix.EINVAL
		}
	case dopipeMaxSize:
		if neg || v > 1<<31 {
			return 0, unix.EINVAL
		}
		v = max(v, pipeMinSize)
		for v&(v-1) != 0 {
			v += v & -v
		}
	}
	if err := c.fs.src.Sysctls().SetNum(c, path, v); err != nil {
		return 0, err
	}
	if h == dopipeMaxSize {
		return len(data), nil
	}
	return len(data) - len(left), nil
}

// spaces counts the leading white space of b, as isspace sees it.
func spaces(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == ' ' || b[n] >= '\t' && b[n] <= '\r') {
		n++
	}
	return n
}

// parseLong is Linux's proc_get_long: an optional minus sign, then a
// number in C notation (0x hex, 0 octal, decimal) that must be followed
// by the end of the write or by a space, tab or newline. It returns the
// magnitude and the number of bytes read.
func parseLong(b []byte) (v uint64, neg bool, n int, ok bool) {
	tmp := b[:min(len(b), sysctlTmpBufLen-1)]
	if len(tmp) > 1 && tmp[0] == '-' {
		neg, n = true, 1
	}
	if n >= len(tmp) || tmp[n] < '0' || tmp[n] > '9' {
		return 0, false, 0, false
	}
	base := uint64(10)
	if tmp[n] == '0' {
		base = 8
		if n+2 < len(tmp) && tmp[n+1]|0x20 == 'x' && digit(tmp[n+2], 16) >= 0 {
			base, n = 16, n+2
		}
	}
	for ; n < len(tmp); n++ {
		d := digit(tmp[n], base)
		if d < 0 {
			break
		}
		hi, lo := mulAdd(v, base, uint64(d))
		if hi {
			return 0, false, 0, false
		}
		v = lo
	}
	if n == sysctlTmpBufLen-1 || n < len(b) && b[n] != ' ' && b[n] != '\t' && b[n] != '\n' {
		return 0, false, 0, false
	}
	return v, neg, n, true
}

// mulAdd returns v*base+d and whether it overflowed.
func mulAdd(v, base, d uint64) (bool, uint64) {
	if v > (math.MaxUint64-d)/base {
		return true, 0
	}
	return false, v*base + d
}

// digit is the value of ch as a digit in base, or -1.
func digit(ch byte, base uint64) int {
	var d int
	switch {
	case ch >= '0' && ch <= '9':
		d = int(ch - '0')
	case ch|0x20 >= 'a' && ch|0x20 <= 'f':
		d = int(ch|0x20-'a') + 10
	default:
		return -1
	}
	if uint64(d) >= base {
		return -1
	}
	return d
}
