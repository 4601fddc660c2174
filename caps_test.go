package kvmbox_test

import (
	"testing"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestCapabilitiesMatchLinux runs caps.c natively (as root) and in the
// sandbox: permission checks go by capabilities, not by uid 0, and a
// capability dropped with capset or by a uid change is gone at once;
// chroot needs CAP_SYS_CHROOT and fails as Linux's does.
func TestCapabilitiesMatchLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "caps.c")
		for _, section := range []string{"dac", "dacread", "owner", "fsetid", "kill", "rlimit", "setuid", "nokeep", "exec", "bad", "chroot"} {
			t.Run(string(tc)+"/"+section, func(t *testing.T) {
				requireGuestMatchesLinux(t, sb, path, section)
			})
		}
	}
}
