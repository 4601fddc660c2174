package kvmbox_test

import (
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestSysctlUTSAndMountsMatchLinux runs sysctl.c natively and in the
// sandbox with glibc and musl: /proc/sys reads, modes and validated
// writes, sethostname and setdomainname, and mount/umount2 of tmpfs, proc
// and bind mounts, as root and as an unprivileged user.
func TestSysctlUTSAndMountsMatchLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			inv := invocation{Path: kvmtest.Guest(t, tc, "sysctl.c")}
			requireMatchesLinux(t, sb, inv, time.Minute)
		})
	}
}
