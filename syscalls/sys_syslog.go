package syscalls

import (
	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

var syslogEntries = []entryAt{
	{unix.SYS_SYSLOG, Entry{"syslog", sysSyslog, Partial, "the sandbox kernel's own boot log; the console actions change nothing", []Arg{ArgInt, ArgHex, ArgInt}}},
}

// The syslog(2) actions (SYSLOG_ACTION_*), which x/sys/unix lacks.
const (
	syslogActionClose       = 0
	syslogActionOpen        = 1
	syslogActionRead        = 2
	syslogActionReadAll     = 3
	syslogActionReadClear   = 4
	syslogActionClear       = 5
	syslogActionConsoleOff  = 6
	syslogActionConsoleOn   = 7
	syslogActionConsoleLvl  = 8
	syslogActionSizeUnread  = 9
	syslogActionSizeBuffer  = 10
	syslogConsoleLevelLimit = 8
)

// sysSyslog serves the kernel log as Linux does with dmesg_restrict set
// (Debian's default): every action needs CAP_SYSLOG or CAP_SYS_ADMIN.
func sysSyslog(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	action, buf, size := int32(a[0]), a[1], int(int32(a[2]))
	c := creds(t)
	if !c.Capable(unix.CAP_SYSLOG) && !c.Capable(unix.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	log := t.Kernel().Log()
	switch action {
	case syslogActionClose, syslogActionOpen, syslogActionConsoleOff, syslogActionConsoleOn:
		return 0, nil
	case syslogActionRead, syslogActionReadAll, syslogActionReadClear:
		if buf == 0 || size < 0 {
			return 0, unix.EINVAL
		}
		if size == 0 {
			return 0, nil
		}
		var text []byte
		if action == syslogActionRead {
			var err error
			if text, err = log.Read(t.Context(), size); err != nil {
				return 0, err
			}
		} else {
			text = log.ReadAll(size, action == syslogActionReadClear)
		}
		return uint64(len(text)), copyOut(t, buf, text)
	case syslogActionClear:
		log.Clear()
		return 0, nil
	case syslogActionConsoleLvl:
		if size < 1 || size > syslogConsoleLevelLimit {
			return 0, unix.EINVAL
		}
		return 0, nil
	case syslogActionSizeUnread:
		return uint64(log.Unread()), nil
	case syslogActionSizeBuffer:
		return kernel.LogBufferSize, nil
	}
	return 0, unix.EINVAL
}
