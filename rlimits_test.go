package kvmbox_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestResourceLimitsMatchLinux runs rlimits.c natively and in the
// sandbox: RLIMIT_FSIZE's EFBIG and SIGXFSZ, RLIMIT_AS and RLIMIT_DATA on
// mmap, mremap, mprotect and brk, RLIMIT_STACK across exec, RLIMIT_NPROC
// for a non-root user, setrlimit's rules and inheritance, with glibc and
// musl, through both ways a system call reaches the kernel (SIGXFSZ must
// arrive before a failed write returns either way).
func TestResourceLimitsMatchLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				inv := invocation{Path: kvmtest.Guest(t, tc, "rlimits.c")}
				requireMatchesLinux(t, sb, inv, time.Minute)
			})
		}
	}
}
