package kvmbox_test

import (
	"path/filepath"
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
	// The program is made visible at its host path when started; busybox,
	// which it runs, through a read-only mount of its directory. Dir makes
	// the working directory the same on both sides.
	dir := filepath.Dir(busybox)
	sb := newSandbox(t, kvmbox.Config{Mounts: []kvmbox.Mount{{Source: dir, Target: dir, ReadOnly: true}}})
	prog := kvmtest.Guest(t, kvmtest.Go, "goprog")
	requireMatchesLinux(t, sb, invocation{Path: prog, Args: []string{busybox}, Dir: "/"}, time.Minute)
}
