package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// crictlCommand is crictl with args against the test's containerd.
func (c *containerd) crictlCommand(ctx context.Context, args ...string) *exec.Cmd {
	endpoint := "unix://" + c.address
	return exec.CommandContext(ctx, "crictl", append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint,
		"--timeout", "60s"}, args...)...)
}

// crictl runs crictl and returns its standard output; it fails the test
// when crictl does.
func (c *containerd) crictl(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(90*time.Second))
	defer cancel()
	cmd := c.crictlCommand(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(c.t, err, "crictl %q: %s%s", args, out, stderr.String())
	return string(out)
}

// writeJSON writes v as JSON to a new file in dir and returns its name.
func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	file := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(file, data, 0o644))
	return file
}

// A pod through containerd's CRI plugin and crictl, as the kubelet runs
// one: a pod on the host's network (no CNI) with the runtime handler
// kvmbox and the annotation io.kvmbox.netns=loopback, a container serving
// on 127.0.0.1 and one reaching it, crictl exec, logs and the exit status
// CRI records, then the pod's stop and removal.
func TestCRIPod(t *testing.T) {
	kvmtest.RequireTool(t, "crictl")
	c := startContainerdWith(t, true)
	// Before containerd stops: a pod left by a failed test keeps its
	// shim, its sandbox and the /dev/shm that CRI mounted for it.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(60*time.Second))
		defer cancel()
		c.crictlCommand(ctx, "rmp", "--force", "--all").Run()
	})
	c.importBusybox()
	dir := t.TempDir()
	podConfig := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "web", "namespace": "default", "uid": "kvmbox-pod-1"},
		"hostname":      "web",
		"log_directory": filepath.Join(dir, "logs"),
		"annotations":   map[string]string{netnsAnnotation: "loopback"},
		// 2 is NODE: the host's network, which needs no CNI.
		"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}}},
	})
	container := func(name string, command ...string) string {
		return writeJSON(t, dir, name+".json", map[string]any{
			"metadata": map[string]any{"name": name},
			"image":    map[string]any{"image": imageName},
			"command":  command,
			"log_path": name + ".log",
		})
	}
	server := container("server", "sh", "-c", "mkdir /www && echo served by the server > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www")
	client := container("client", "sh", "-c", "until wget -q -O - http://127.0.0.1:8080/; do sleep 0.1; done; ls /www || echo no /www here")

	pod := strings.TrimSpace(c.crictl("runp", "--runtime", "kvmbox", podConfig))
	serverID := strings.TrimSpace(c.crictl("create", pod, server, podConfig))
	c.crictl("start", serverID)
	clientID := strings.TrimSpace(c.crictl("create", pod, client, podConfig))
	c.crictl("start", clientID)

	deadline := time.Now().Add(kvmtest.Slowed(60 * time.Second))
	for {
		state := c.crictl("inspect", "-o", "go-template", "--template", "{{.status.state}} {{.status.exitCode}}", clientID)
		if strings.HasPrefix(state, "CONTAINER_EXITED") {
			require.Equal(t, "CONTAINER_EXITED 0", strings.TrimSpace(state))
			break
		}
		require.True(t, time.Now().Before(deadline), "the client did not exit: %s", state)
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, "served by the server\nno /www here\n", c.crictl("logs", clientID))
	require.Contains(t, c.crictl("inspect", "-o", "go-template", "--template", "{{.status.state}}", serverID), "CONTAINER_RUNNING")
	require.Equal(t, "served by the server\n", c.crictl("exec", serverID, "busybox", "cat", "/www/index.html"))
	require.Equal(t, "web\n", c.crictl("exec", serverID, "busybox", "hostname"))

	c.crictl("stop", serverID)
	require.Contains(t, c.crictl("inspect", "-o", "go-template", "--template", "{{.status.state}}", serverID), "CONTAINER_EXITED")
	c.crictl("rm", serverID, clientID)
	c.crictl("stopp", pod)
	c.crictl("rmp", pod)
	require.Empty(t, strings.TrimSpace(c.crictl("pods", "-q")))
	mounts, err := os.ReadFile("/proc/self/mounts")
	require.NoError(t, err)
	require.NotContains(t, string(mounts), c.dir, "the containers' root file systems and the pod's /dev/shm are unmounted")
}
