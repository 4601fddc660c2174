package kvmbox_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestUnixSocketsMatchLinux runs unixsock.c natively and in the sandbox:
// Unix-domain sockets of each type, names in a directory the program
// makes under /tmp (which exists natively and in the sandbox's root) and
// in the abstract namespace, descriptor and credential passing, readiness and SIGPIPE,
// with glibc and musl, through both ways a system call reaches the
// kernel.
func TestUnixSocketsMatchLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				inv := invocation{Path: kvmtest.Guest(t, tc, "unixsock.c")}
				requireMatchesLinux(t, sb, inv, time.Minute)
			})
		}
	}
}
