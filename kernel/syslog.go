package kernel

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Log levels of the boot log's records (KERN_NOTICE, KERN_INFO).
const (
	logNotice = 5
	logInfo   = 6
)

// LogBufferSize is the size of the kernel log buffer that syslog(2)
// reports (SYSLOG_ACTION_SIZE_BUFFER), Linux's default of 128 KiB.
const LogBufferSize = 1 << 17

// SysLog is the sandbox kernel's own log, which dmesg reads through
// syslog(2): a few lines written at boot that describe this kernel, as
// gVisor's describe its own. Nothing of the host's log is shown.
type SysLog struct {
	mu sync.Mutex
	// records are the log's lines in syslog(2)'s format, each ending in
	// a newline.
	records [][]byte
	// cleared counts the records that SYSLOG_ACTION_CLEAR hid from the
	// read-all actions; read counts those SYSLOG_ACTION_READ consumed,
	// and partial the bytes it returned of the next one.
	cleared, read, partial int
}

// newSysLog writes the boot log of a kernel with that memory limit.
func newSysLog(memoryLimit uint64, hostname string) *SysLog {
	l := &SysLog{}
	l.add(logNotice, "Linux version %s (%s) (%s) %s", Release, builtBy, compiler, Version)
	l.add(logInfo, "kvmbox: this is the sandbox's own kernel, written in Go, serving its system calls from outside the virtual machine")
	l.add(logInfo, "Memory: %dK available", memoryLimit>>10)
	l.add(logInfo, "smp: Brought up 1 node, %d CPUs", CPUs())
	l.add(logInfo, "devtmpfs: initialized")
	l.add(logInfo, "Hostname: %s", hostname)
	l.add(logInfo, "kvmbox: ready")
	return l
}

// add appends a record at boot time (timestamp 0).
func (l *SysLog) add(level int, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	l.records = append(l.records, fmt.Appendf(nil, "<%d>[%5d.%06d] %s\n", level, 0, 0, text))
}

// Log is the sandbox kernel's log (syslog(2), dmesg).
func (k *Kernel) Log() *SysLog { return k.log }

// ReadAll implements SYSLOG_ACTION_READ_ALL and, with clear,
// SYSLOG_ACTION_READ_CLEAR: the newest whole records that fit in max bytes.
func (l *SysLog) ReadAll(max int, clear bool) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, size := len(l.records), 0
	for first > l.cleared && size+len(l.records[first-1]) <= max {
		first--
		size += len(l.records[first])
	}
	out := bytes.Join(l.records[first:], nil)
	if clear {
		l.cleared = len(l.records)
	}
	return out
}

// Clear implements SYSLOG_ACTION_CLEAR.
func (l *SysLog) Clear() {
	l.mu.Lock()
	l.cleared = len(l.records)
	l.mu.Unlock()
}

// Unread implements SYSLOG_ACTION_SIZE_UNREAD: the bytes that Read has
// yet to return.
func (l *SysLog) Unread() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := -l.partial
	for _, r := range l.records[l.read:] {
		n += len(r)
	}
	return n
}

// Read implements SYSLOG_ACTION_READ: it consumes up to max bytes of the
// oldest unread records, and waits, until ctx ends (EINTR), while none is
// left, since the log never grows.
func (l *SysLog) Read(ctx context.Context, max int) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read == len(l.records) {
		l.mu.Unlock()
		<-ctx.Done()
		l.mu.Lock()
		return nil, unix.EINTR
	}
	var out []byte
	for l.read < len(l.records) && len(out) < max {
		rest := l.records[l.read][l.partial:]
		n := min(len(rest), max-len(out))
		out = append(out, rest[:n]...)
		l.partial += n
		if l.partial == len(l.records[l.read]) {
			l.read++
			l.partial = 0
		}
	}
	return out, nil
}
