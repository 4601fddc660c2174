package kvmbox_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// makeTree builds the same small tree, with fixed times, under dir.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"d/fruits.txt":     "banana\napple\ncherry\napple\nbanana\nkiwi\n",
		"d/sub/nums.txt":   strings.Repeat("1\n22\n333\n", 50),
		"d/sub/deep/a.csv": "name,size\nalpha,3\nbeta,14\ngamma,15\n",
		"d/notes.md":       "# notes\nsome text with apple in it\n",
		"d/binary.bin":     string(bytes.Repeat([]byte{0, 1, 2, 250, 251}, 3000)),
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	require.NoError(t, os.Symlink("fruits.txt", filepath.Join(dir, "d/link")))
	stamp := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "d"), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, stamp, stamp)
	}))
	require.NoError(t, exec.Command("touch", "-h", "-d", "2024-03-04 05:06:07", filepath.Join(dir, "d/link")).Run())
}

// treeSummary lists a tree's names, types, modes, sizes, link targets and
// content hashes, to compare the result of the same commands run natively
// and in the sandbox.
func treeSummary(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case info.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %d %x", len(data), data[:min(len(data), 16)])
		}
		b.WriteString("\n")
		return nil
	}))
	return b.String()
}

// TestBusyboxOnAHostTreeMatchesLinux runs busybox applets natively in one
// copy of a tree and in the sandbox on another copy, mounted from the host
// at the first copy's path, and compares every output and the trees.
func TestBusyboxOnAHostTreeMatchesLinux(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	native, inside := t.TempDir(), t.TempDir()
	makeTree(t, native)
	makeTree(t, inside)
	// The sandbox's root is an overlay over a directory holding the host's
	// user and group names, which tar and ls look up.
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "etc"), 0o755))
	for _, f := range []string{"passwd", "group"} {
		data, err := os.ReadFile("/etc/" + f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(root, "etc", f), data, 0o644))
	}
	sb := newSandbox(t, kvmbox.Config{Root: root, Mounts: []kvmbox.Mount{{Source: inside, Target: native}}})
	steps := [][]string{
		{"ls", "-ln", "d", "d/sub"},
		{"cat", "d/fruits.txt", "d/link"},
		{"head", "-n", "2", "d/fruits.txt"},
		{"tail", "-n", "3", "d/sub/nums.txt"},
		{"wc", "d/fruits.txt", "d/sub/nums.txt", "d/binary.bin"},
		{"sort", "d/fruits.txt"},
		{"uniq", "-c", "d/fruits.txt"},
		{"cut", "-d,", "-f2", "d/sub/deep/a.csv"},
		{"grep", "-r", "apple", "d"},
		{"sed", "s/a/A/g", "d/fruits.txt"},
		{"awk", "-F,", "NR>1 {s+=$2} END {print s}", "d/sub/deep/a.csv"},
		{"find", "d", "-name", "*.txt"},
		{"du", "-a", "d"},
		{"stat", "-c", "%n %s %a %F", "d/fruits.txt", "d/link", "d/sub"},
		{"sha256sum", "d/fruits.txt", "d/binary.bin"},
		{"md5sum", "d/sub/nums.txt"},
		{"diff", "d/fruits.txt", "d/notes.md"},
		{"mkdir", "-p", "out/a/b/c"},
		{"cp", "-r", "d", "out/copy"},
		{"mv", "out/copy/sub", "out/moved"},
		{"ln", "-s", "../d/fruits.txt", "out/fruits-link"},
		{"touch", "-d", "2024-05-06 07:08:09", "out/a/new"},
		{"chmod", "600", "out/a/new"},
		{"rm", "-r", "out/copy/sub2", "out/a/b"},
		{"rm", "-r", "out/a/b"},
		{"tar", "cf", "out/d.tar", "d"},
		{"tar", "tvf", "out/d.tar"},
		{"mkdir", "out/untar"},
		{"tar", "xf", "out/d.tar", "-C", "out/untar"},
		{"diff", "-r", "d", "out/untar/d"},
		{"gzip", "-k", "out/untar/d/fruits.txt"},
		{"gunzip", "-c", "out/untar/d/fruits.txt.gz"},
		// What tar and gzip made carries the time they ran, which differs
		// between the native and the sandboxed run.
		{"touch", "-h", "-d", "2024-03-04 05:06:07", "out/untar/d/link", "out/untar/d/sub", "out/untar/d/fruits.txt.gz"},
		{"ls", "-ln", "out/untar/d"},
		{"find", "out", "-type", "f"},
	}
	for _, args := range steps {
		requireMatchesLinux(t, sb, invocation{Path: busybox, Args: args, Dir: native}, 20*time.Second)
	}
	require.Equal(t, treeSummary(t, native), treeSummary(t, inside))
}
