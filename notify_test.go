package kvmbox_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
)

// notifyFamilies are the families of notify.c. The queue's overflow,
// which takes thousands of calls, does not depend on the file system:
// only the tmpfs test runs it.
var (
	notifyFamilies   = []string{"inotify", "overflow", "dnotify", "async"}
	notifyFSFamilies = []string{"inotify", "dnotify", "async"}
)

// searchableTempDir is a temporary directory that every user may search,
// as the sandbox's /tmp is: notify.c checks what a user who is not root
// may watch in it.
func searchableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's own parent is private to root too.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	return dir
}

// TestNotifyMatchesLinux runs each family of notify.c natively and in the
// sandbox, in a directory of the sandbox's tmpfs, and compares the events
// and signals they see.
func TestNotifyMatchesLinux(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "notify.c")
		for _, family := range notifyFamilies {
			t.Run(string(tc)+"/"+family, func(t *testing.T) {
				want := runNative(t, path, []string{family, searchableTempDir(t)}, "")
				got, state := runSandboxed(t, sb, context.Background(), path, []string{family, "/tmp"}, "")
				require.Nil(t, state.Crash())
				require.Equal(t, 0, want.Code, want.Stdout+want.Stderr)
				require.Equal(t, want, got)
			})
		}
	}
}

// TestNotifyOnHostDirectoryMatchesLinux runs the families of notify.c in
// a writable host directory mounted into the sandbox: changes made
// through the sandbox are seen as on Linux.
func TestNotifyOnHostDirectoryMatchesLinux(t *testing.T) {
	dir := searchableTempDir(t)
	sb := newSandbox(t, kvmbox.Config{Mounts: []kvmbox.Mount{{Source: dir, Target: dir}}})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "notify.c")
		for _, family := range notifyFSFamilies {
			t.Run(string(tc)+"/"+family, func(t *testing.T) {
				want := runNative(t, path, []string{family, searchableTempDir(t)}, "")
				got, state := runSandboxed(t, sb, context.Background(), path, []string{family, dir}, "")
				require.Nil(t, state.Crash())
				require.Equal(t, 0, want.Code, want.Stdout+want.Stderr)
				require.Equal(t, want, got)
			})
		}
	}
}

// TestTailFollowsAppends runs coreutils' tail -f, which waits for
// changes with inotify, on a file that lines are appended to
// (testdata/scripts/tailf.sh), natively and in the sandbox.
func TestTailFollowsAppends(t *testing.T) {
	requireHostPrograms(t, "/bin/bash", "/usr/bin/tail", "/usr/bin/timeout", "/usr/bin/grep")
	dir := t.TempDir()
	sb := userlandSandbox(t, dir)
	script := filepath.Join(scriptsDir(t), "tailf.sh")
	requireMatchesLinux(t, sb, invocation{Path: "/bin/bash", Args: []string{script, dir}, Env: userlandEnv}, 90*time.Second)
}

// TestNotifyOnOverlayRootMatchesLinux runs the families of notify.c in a
// directory of an overlay root (Config.Root) whose lower layer holds it:
// the changes copy it up.
func TestNotifyOnOverlayRootMatchesLinux(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "work"), 0o755))
	sb := newSandbox(t, kvmbox.Config{Root: root})
	for _, tc := range bothLibcs {
		path := kvmtest.Guest(t, tc, "notify.c")
		for _, family := range notifyFSFamilies {
			t.Run(string(tc)+"/"+family, func(t *testing.T) {
				want := runNative(t, path, []string{family, searchableTempDir(t)}, "")
				got, state := runSandboxed(t, sb, context.Background(), path, []string{family, "/work"}, "")
				require.Nil(t, state.Crash())
				require.Equal(t, 0, want.Code, want.Stdout+want.Stderr)
				require.Equal(t, want, got)
			})
		}
	}
}
