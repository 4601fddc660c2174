package kvmbox_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestPTYMatchesLinux runs pty.c natively and in the sandbox, with glibc
// and musl, through both ways a system call reaches the kernel: a pty
// pair opened as openpty does, canonical line editing and its echo, raw
// reads, ^C and SIGINT, the window size and SIGWINCH, the controlling
// terminal, EIO on the master after the slave closes and SIGHUP after the
// master closes.
func TestPTYMatchesLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				requireMatchesLinux(t, sb, invocation{Path: kvmtest.Guest(t, tc, "pty.c")}, time.Minute)
			})
		}
	}
}
