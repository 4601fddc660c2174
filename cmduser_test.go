package kvmbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A program can run from the sandbox's own file system only, as a given
// user, with given resource limits and no_new_privs; a host file can be
// mounted read-only.
func TestCmdInSandboxUserAndLimits(t *testing.T) {
	kvmtest.RequireFile(t, "/bin/busybox")
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "bin"), 0o755))
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "sh"), busybox, 0o755))
	motd := filepath.Join(t.TempDir(), "motd")
	require.NoError(t, os.WriteFile(motd, []byte("hello from the host\n"), 0o644))

	_, err = kvmbox.New(kvmbox.Config{Root: root, Mounts: []kvmbox.Mount{{Source: motd, Target: "/etc/motd"}}})
	require.ErrorContains(t, err, "read-only", "a file mount must be read-only")

	sb := newSandbox(t, kvmbox.Config{Root: root, Mounts: []kvmbox.Mount{{Source: motd, Target: "/etc/motd", ReadOnly: true}}})
	cmd := sb.Command(context.Background(), "/bin/sh", "-c",
		"id -u; id -g; id -G; ulimit -n; grep NoNewPrivs /proc/self/status; cat /etc/motd; echo x > /etc/motd")
	cmd.InSandbox = true
	cmd.UID, cmd.GID, cmd.Groups = 1000, 100, []uint32{6, 5}
	cmd.NoNewPrivs = true
	cmd.Limits = map[int]syscall.Rlimit{syscall.RLIMIT_NOFILE: {Cur: 64, Max: 128}}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.Error(t, cmd.Run(), "writing the read-only file fails")
	require.Equal(t, "1000\n100\n100 5 6\n64\nNoNewPrivs:\t1\nhello from the host\n", out.String())
	require.NotEmpty(t, errOut.String())

	for _, path := range []string{"/bin/busybox", "bin/sh"} {
		cmd = sb.Command(context.Background(), path)
		cmd.InSandbox = true
		_, err = cmd.Start()
		require.Error(t, err, "%s: a host file is never shown for an in-sandbox path", path)
	}

	cmd = sb.Command(context.Background(), "/bin/sh", "-c", "exit 3")
	cmd.InSandbox = true
	cmd.Limits = map[int]syscall.Rlimit{syscall.RLIMIT_NOFILE: {Cur: 64, Max: 32}}
	_, err = cmd.Start()
	require.ErrorContains(t, err, "invalid argument", "a soft limit above the hard one")
}

// A read-only root refuses writes with EROFS; /tmp and the mounts keep
// their modes.
func TestReadOnlyRoot(t *testing.T) {
	kvmtest.RequireFile(t, "/bin/busybox")
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "bin"), 0o755))
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "sh"), busybox, 0o755))
	rw := t.TempDir()
	sb := newSandbox(t, kvmbox.Config{Root: root, ReadOnlyRoot: true, Mounts: []kvmbox.Mount{{Source: rw, Target: "/data"}}})
	cmd := sb.Command(context.Background(), "/bin/sh", "-c",
		"echo x > /new || echo root refused; echo x > /tmp/new && echo tmp ok; echo x > /data/new && echo data ok")
	cmd.InSandbox = true
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run())
	require.Equal(t, "root refused\ntmp ok\ndata ok\n", out.String())
	require.Contains(t, errOut.String(), "Read-only file system")
}

// A program started with capability sets has those, an execve as root
// regains only its inheritable and bounding sets, and capset cannot make
// a capability outside the bounding set inheritable.
func TestCmdCapabilities(t *testing.T) {
	kvmtest.RequireFile(t, "/bin/busybox")
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "bin"), 0o755))
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "sh"), busybox, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "f"), nil, 0o644))
	sb := newSandbox(t, kvmbox.Config{Root: root})
	chown, kill, bind := uint64(1)<<unix.CAP_CHOWN, uint64(1)<<unix.CAP_KILL, uint64(1)<<unix.CAP_NET_BIND_SERVICE
	cmd := sb.Command(context.Background(), "/bin/sh", "-c",
		// The shell's builtins read its own status; grep runs after an execve.
		"while read -r l; do case $l in Cap*) echo \"$l\";; esac; done < /proc/self/status; grep Cap /proc/self/status; chown 1 /f || echo chown refused")
	cmd.InSandbox = true
	cmd.Capabilities = &kvmbox.Capabilities{Effective: kill, Permitted: kill | bind, Inheritable: bind, Bounding: kill | bind}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run())
	require.Equal(t, fmt.Sprintf("CapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\n", bind, kill|bind, kill, kill|bind, 0)+
		fmt.Sprintf("CapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\n", bind, kill|bind, kill|bind, kill|bind, 0)+
		"chown: /f: Operation not permitted\nchown refused\n", out.String())
	require.Zero(t, chown&(kill|bind))
}
