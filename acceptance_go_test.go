package kvmbox_test

import (
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// TestGoProgramMatchesLinux runs a static Go program that leans on threads,
// futexes, timers, signals, fork and exec, pipes and files, natively and in
// the sandbox, and compares what each run printed and how it ended.
func TestGoProgramMatchesLinux(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	sb := newSandbox(t, kvmbox.Config{})
	prog := kvmtest.Guest(t, kvmtest.Go, "goprog")
	// The program and busybox are each made visible at their host paths
	// when started; Dir makes the working directory the same on both sides.
	requireMatchesLinux(t, sb, invocation{Path: prog, Args: []string{busybox}, Dir: "/"}, time.Minute)
}
