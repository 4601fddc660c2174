package kvmbox_test

import (
	"testing"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestIOAndFDSemanticsMatchLinux runs each family of iofds.c natively and
// in the sandbox and compares the results: iovec and count checks, getdents
// counts, memfd names and seals, pipe capacities and readahead.
func TestIOAndFDSemanticsMatchLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "iofds.c")
		for _, family := range []string{"iov", "rwcount", "getdents", "memfd", "pipesz", "readahead"} {
			t.Run(string(tc)+"/"+family, func(t *testing.T) {
				requireGuestMatchesLinux(t, sb, path, family)
			})
		}
	}
}
