package kvmbox_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestGuestCannotReachHostFilesOutsideItsMounts plants escape routes in a
// mounted host tree (absolute and relative symlinks, a symlink to /, a
// directory swapped for a symlink while the guest walks it) and checks that
// a host file outside the mounts is never read, that moves across mounts
// fail with EXDEV and writes to a read-only mount with EROFS.
func TestGuestCannotReachHostFilesOutsideItsMounts(t *testing.T) {
	escape := kvmtest.Guest(t, kvmtest.GCC, "escape.c")
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("TOPSECRET"), 0o644))
	rw := filepath.Join(host, "rw")
	ro := filepath.Join(host, "ro")
	for _, d := range []string{rw, ro, filepath.Join(rw, "swap-dir", "inner")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(rw, "inside.txt"), []byte("inside"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ro, "file.txt"), []byte("read-only"), 0o644))
	require.NoError(t, os.Symlink(secret, filepath.Join(rw, "abs-link")))
	require.NoError(t, os.Symlink("../../../../../../../.."+secret, filepath.Join(rw, "rel-link")))
	require.NoError(t, os.Symlink("/", filepath.Join(rw, "root-link")))
	require.NoError(t, os.Rename(filepath.Join(rw, "swap-dir"), filepath.Join(rw, "swap")))
	roBefore := treeSummary(t, ro)

	// Swap rw/swap between a real directory and a symlink to the host
	// directory that holds the secret, while the guest walks through it.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		swap, real, link := filepath.Join(rw, "swap"), filepath.Join(rw, "swap-real"), filepath.Join(rw, "swap-link")
		os.Symlink(host, link)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.Rename(swap, real)
			os.Rename(link, swap)
			runtime.Gosched()
			os.Rename(swap, link)
			os.Rename(real, swap)
		}
	}()

	sb := newSandbox(t, kvmbox.Config{Mounts: []kvmbox.Mount{{Source: rw, Target: "/mnt/rw"}, {Source: ro, Target: "/mnt/ro", ReadOnly: true}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, _ := runSandboxed(t, sb, ctx, escape, []string{"/mnt/rw", "/mnt/ro", secret}, "")
	close(stop)
	wg.Wait()
	require.NotContains(t, got.Stdout, "TOPSECRET")
	require.NotContains(t, got.Stdout, "LEAK")
	for _, line := range []string{
		"absolute path of the secret: ENOENT",
		"absolute symlink: ENOENT",
		"relative symlink climbing out: ENOENT",
		"symlink to the root: ENOENT",
		"dot-dot chain: ENOENT",
		"/proc/self/root: ENOENT",
		"openat from an O_PATH dirfd: ENOENT",
		"O_NOFOLLOW on the absolute symlink: ELOOP",
		"/proc/self/fd of a mounted file shows the sandbox path: 1",
		"walked the swapping directory 2000 times",
		"hard link to /tmp: EXDEV",
		"rename to /tmp: EXDEV",
		"write to the read-only mount: EROFS",
		"create in the read-only mount: EROFS",
		"unlink in the read-only mount: EROFS",
		"chmod in the read-only mount: EROFS",
		"mkdir in the read-only mount: EROFS",
	} {
		require.Contains(t, got.Stdout, line+"\n")
	}
	require.Equal(t, roBefore, treeSummary(t, ro), "the read-only mount changed on the host")
	data, err := os.ReadFile(secret)
	require.NoError(t, err)
	require.Equal(t, "TOPSECRET", string(data))
}

// TestOverlayRootNeverChangesTheHost writes, deletes, renames and chmods
// through an overlay root and checks the host directory is untouched, and
// that no host file descriptor outlives the sandbox.
func TestOverlayRootNeverChangesTheHost(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	root := t.TempDir()
	makeTree(t, root)
	before := treeSummary(t, root)
	kvmtest.RequireKVM(t)
	fds := openFDs(t)
	sb, err := kvmbox.New(kvmbox.Config{Root: root})
	require.NoError(t, err)
	for _, args := range [][]string{
		{"rm", "-r", "/d/sub"},
		{"mv", "/d/fruits.txt", "/d/renamed.txt"},
		{"chmod", "777", "/d/notes.md"},
		{"cp", "/d/notes.md", "/d/copy.md"},
		{"mkdir", "-p", "/d/new/dir"},
		{"ln", "-s", "x", "/d/newlink"},
		{"truncate", "-s", "0", "/d/binary.bin"},
	} {
		got, _ := runSandboxed(t, sb, context.Background(), busybox, args, "")
		require.Equal(t, outcome{}, got, "busybox %v", args)
	}
	got, _ := runSandboxed(t, sb, context.Background(), busybox, []string{"ls", "/d"}, "")
	require.Equal(t, strings.Join([]string{"binary.bin", "copy.md", "link", "new", "newlink", "notes.md", "renamed.txt"}, "\n")+"\n", got.Stdout)
	require.NoError(t, sb.Close())
	require.Equal(t, before, treeSummary(t, root))
	require.Equal(t, fds, openFDs(t), "host file descriptors outlived the sandbox")
}
