package kvmbox_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// busyboxRoot makes a host directory holding busybox as /bin/sh and the
// file /name with contents name.
func busyboxRoot(t *testing.T, name string) string {
	t.Helper()
	kvmtest.RequireFile(t, "/bin/busybox")
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "bin"), 0o755))
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "sh"), busybox, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(name+"\n"), 0o644))
	return root
}

// Directories mounted into a running sandbox become the roots of programs
// started there: each sees its own files only, with the sandbox's /proc
// bound under it and a tmpfs of its own; an overlay mount keeps writes
// off the host; Remount and Unmount act on a running sandbox; SignalRoot
// and KillRoot reach the programs of one root only.
func TestCmdRootInRunningSandbox(t *testing.T) {
	first, second := busyboxRoot(t, "first"), busyboxRoot(t, "second")
	sb := newSandbox(t, kvmbox.Config{})
	require.NoError(t, sb.Mount(kvmbox.Mount{Source: first, Target: "/pods/first", Overlay: true}))
	require.NoError(t, sb.Mount(kvmbox.Mount{Source: second, Target: "/pods/second", ReadOnly: true}))
	require.NoError(t, sb.Bind("/proc", "/pods/first/proc"))
	require.NoError(t, sb.MountTmpfs(kvmbox.Tmpfs{Target: "/pods/first/scratch", Size: 1 << 20}))
	require.Error(t, sb.Mount(kvmbox.Mount{Source: first, Target: "relative"}))
	require.Error(t, sb.Bind("/missing", "/pods/x"))

	run := func(root, script string) (string, error) {
		cmd := sb.Command(context.Background(), "/bin/sh", "-c", script)
		cmd.InSandbox, cmd.Root = true, root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := run("/pods/first", "cat /first; ls /; cd /..; pwd; echo new > /first; cat /first; echo t > /scratch/t; cat /scratch/t; cat /proc/self/comm")
	require.NoError(t, err, out)
	require.Equal(t, "first\nbin\nfirst\nproc\nscratch\n/\nnew\nt\ncat\n", out)
	data, err := os.ReadFile(filepath.Join(first, "first"))
	require.NoError(t, err)
	require.Equal(t, "first\n", string(data), "the overlay keeps writes off the host")

	out, err = run("/pods/second", "read l < /second; echo $l; read l < /first; echo x > /second")
	require.Error(t, err)
	require.Contains(t, out, "second\n")
	require.Contains(t, out, "/first")
	require.Contains(t, out, "Read-only file system")

	require.NoError(t, sb.Remount("/pods/first", true))
	out, err = run("/pods/first", "echo x > /first")
	require.Error(t, err)
	require.Contains(t, out, "Read-only file system")
	require.NoError(t, sb.Remount("/pods/first", false))
	require.NoError(t, sb.Unmount("/pods/second"))
	_, err = run("/pods/second", "true")
	require.Error(t, err, "nothing is left at an unmounted root")

	cmd := sb.Command(context.Background(), "/bin/sh")
	cmd.Root = "/pods/first"
	_, err = cmd.Start()
	require.ErrorContains(t, err, "InSandbox")
	cmd = sb.Command(context.Background(), "/bin/sh")
	cmd.InSandbox, cmd.Root = true, "/pods/missing"
	_, err = cmd.Start()
	require.ErrorContains(t, err, "no such file")

	start := func(root string) *kvmbox.Process {
		cmd := sb.Command(context.Background(), "/bin/sh", "-c", "sleep 1000")
		cmd.InSandbox, cmd.Root = true, root
		p, err := cmd.Start()
		require.NoError(t, err)
		return p
	}
	require.NoError(t, sb.Mount(kvmbox.Mount{Source: second, Target: "/pods/second", ReadOnly: true}))
	inFirst, inSecond := start("/pods/first"), start("/pods/second")
	require.NoError(t, sb.SignalRoot("/pods/first", syscall.SIGTERM))
	require.Equal(t, syscall.SIGTERM, inFirst.Wait().Signal())
	// Had SIGTERM reached it too, it would have ended by SIGTERM first.
	require.NoError(t, inSecond.Signal(syscall.SIGUSR1))
	st := inSecond.Wait()
	require.Equal(t, syscall.SIGUSR1, st.Signal(), "%s", st)

	// KillRoot returns once every process under the root has exited,
	// children included.
	cmd = sb.Command(context.Background(), "/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait")
	cmd.InSandbox, cmd.Root = true, "/pods/second"
	p, err := cmd.Start()
	require.NoError(t, err)
	require.NoError(t, sb.KillRoot("/pods/second"))
	require.Equal(t, syscall.SIGKILL, p.Wait().Signal())
	require.NoError(t, sb.KillRoot("/pods/second"), "nothing left to kill")
}
