package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// dockerImage is what the Docker test loads its image as.
const dockerImage = "kvmbox-busybox:test"

// writeDockerArchive writes an image as docker save does, which docker
// load reads, of busyboxLayer.
func writeDockerArchive(t testing.TB, name string, busybox []byte) {
	t.Helper()
	layer := busyboxLayer(t, busybox)
	hash := func(data []byte) string {
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:])
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sh"}, "Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hash(layer.Bytes())}},
	})
	require.NoError(t, err)
	layerName := hash(layer.Bytes()) + "/layer.tar"
	configName := hash(config) + ".json"
	manifest, err := json.Marshal([]any{map[string]any{"Config": configName, "RepoTags": []string{dockerImage}, "Layers": []string{layerName}}})
	require.NoError(t, err)

	f, err := os.Create(name)
	require.NoError(t, err)
	defer f.Close()
	out := tar.NewWriter(f)
	for _, file := range []struct {
		name string
		data []byte
	}{{"manifest.json", manifest}, {configName, config}, {layerName, layer.Bytes()}} {
		require.NoError(t, out.WriteHeader(&tar.Header{Name: file.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(file.data))}))
		_, err := out.Write(file.data)
		require.NoError(t, err)
	}
	require.NoError(t, out.Close())
}

// dockerd is a Docker daemon of the test's own, with kvmbox-oci as its
// runtime "kvmbox": socket, data and state in a temporary directory, no
// bridge and no iptables.
type dockerd struct {
	t    *testing.T
	host string
}

func startDockerd(t *testing.T) *dockerd {
	kvmtest.RequireKVM(t)
	kvmtest.RequireFile(t, "/bin/busybox")
	daemon := kvmtest.RequireTool(t, "dockerd")
	kvmtest.RequireTool(t, "docker")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs the Docker test as root")
		}
		t.Skip("dockerd needs root")
	}
	dir := t.TempDir()
	d := &dockerd{t: t, host: "unix://" + filepath.Join(dir, "docker.sock")}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	require.NoError(t, err)
	cmd := exec.Command(daemon, "--host", d.host, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--bridge", "none", "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs",
		"--add-runtime", "kvmbox="+runtimeBinary(t))
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if _, out, err := d.docker("ps", "--all", "--quiet"); err == nil && strings.TrimSpace(out) != "" {
			d.docker(append([]string{"rm", "--force"}, strings.Fields(out)...)...)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(kvmtest.Slowed(20 * time.Second)):
			cmd.Process.Kill()
			<-exited
		}
		killShimsUnder(dir)
		log.Close()
		if t.Failed() {
			text, _ := os.ReadFile(log.Name())
			t.Logf("dockerd's log:\n%s", text)
		}
		unmountUnder(t, dir)
	})
	deadline := time.Now().Add(kvmtest.Slowed(30 * time.Second))
	for {
		if code, _, err := d.docker("version"); err == nil && code == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "dockerd did not start")
		select {
		case <-exited:
			t.Fatal("dockerd exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	image := filepath.Join(dir, "image.tar")
	writeDockerArchive(t, image, busybox)
	d.mustDocker("load", "--input", image)
	return d
}

func (d *dockerd) docker(args ...string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(60*time.Second))
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", append([]string{"--host", d.host}, args...)...).CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), string(out), nil
	}
	return 0, string(out), err
}

// mustDocker returns what a docker command that must succeed printed on
// stdout: the client's warnings about the host's cgroups go to stderr.
func (d *dockerd) mustDocker(args ...string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(60*time.Second))
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, "docker", append([]string{"--host", d.host}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(d.t, cmd.Run(), "docker %q: %s%s", args, stdout.String(), stderr.String())
	return stdout.String()
}

// docker run --runtime=kvmbox: output, exit status, exec, pause,
// unpause, update, stop, a
// read-only root and a memory limit, and the host network refused.
func TestDocker(t *testing.T) {
	d := startDockerd(t)
	code, out, err := d.docker("run", "--rm", "--runtime=kvmbox", "--network=none", dockerImage,
		"sh", "-c", "echo hello from $(uname -r); exit 3")
	require.NoError(t, err)
	require.Regexp(t, "^hello from .*kvmbox\n$", out)
	require.Equal(t, 3, code)

	out = d.mustDocker("run", "--rm", "--runtime=kvmbox", "--network=none", "--read-only", "--memory=64m", dockerImage,
		"sh", "-c", "{ echo x > /x; } 2>/dev/null || echo read-only; grep MemTotal /proc/meminfo; echo shm > /dev/shm/f && cat /dev/shm/f")
	require.Regexp(t, `^read-only\nMemTotal: +65536 kB\nshm\n$`, out)

	out = d.mustDocker("run", "--rm", "--runtime=kvmbox", "--network=none", dockerImage, "sh", "-c", "grep CapEff /proc/self/status")
	require.Equal(t, "CapEff:\t00000000a80425fb\n", out, "Docker's default capabilities")
	out = d.mustDocker("run", "--rm", "--runtime=kvmbox", "--network=none", "--cap-drop=ALL", "--cap-add=KILL", dockerImage,
		"sh", "-c", "grep CapEff /proc/self/status")
	require.Equal(t, "CapEff:\t0000000000000020\n", out)

	d.mustDocker("run", "--detach", "--name", "long", "--runtime=kvmbox", "--network=none", dockerImage,
		"sh", "-c", `trap "exit 4" TERM; while :; do sleep 0.05; done`)
	code, out, err = d.docker("exec", "long", "sh", "-c", "echo in exec; exit 5")
	require.NoError(t, err)
	require.Equal(t, "in exec\n", out)
	require.Equal(t, 5, code)
	d.mustDocker("pause", "long")
	require.Equal(t, "paused\n", d.mustDocker("inspect", "--format", "{{.State.Status}}", "long"))
	d.mustDocker("unpause", "long")
	require.Equal(t, "running\n", d.mustDocker("inspect", "--format", "{{.State.Status}}", "long"))
	d.mustDocker("update", "--pids-limit", "32", "long")
	d.mustDocker("stop", "long")
	require.Equal(t, "4\n", d.mustDocker("inspect", "--format", "{{.State.ExitCode}}", "long"))
	d.mustDocker("rm", "long")

	code, out, err = d.docker("run", "--rm", "--runtime=kvmbox", "--network=host", dockerImage, "sh", "-c", "true")
	require.NoError(t, err)
	require.Equal(t, 125, code)
	require.Contains(t, out, "linux.namespaces[1].path: kvmbox cannot join the namespace")
}

// unmountUnder detaches the mounts dockerd leaves under dir (the host
// network namespace it bind-mounts for --network=host).
func unmountUnder(t *testing.T, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			require.NoError(t, unix.Unmount(fields[4], unix.MNT_DETACH), fields[4])
		}
	}
}
