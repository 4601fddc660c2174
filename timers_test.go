package kvmbox_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestTimersAndProcessBitsMatchLinux runs timers.c natively and in the
// sandbox: alarm, interval and POSIX timers, signalfd, SIGPIPE, prctl,
// resource usage and credentials, with glibc and musl, through both ways a
// system call reaches the kernel (a failed pipe write's SIGPIPE must
// arrive before the call returns either way).
func TestTimersAndProcessBitsMatchLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				inv := invocation{Path: kvmtest.Guest(t, tc, "timers.c")}
				requireMatchesLinux(t, sb, inv, time.Minute)
			})
		}
	}
}
