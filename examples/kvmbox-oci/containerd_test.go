package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// imageName is what the test's OCI image is imported as.
const imageName = "docker.io/library/kvmbox-busybox:test"

// busyboxLayer is the one layer of the tests' images: busybox as
// /bin/busybox and /bin/sh, and /tmp.
func busyboxLayer(t testing.TB, busybox []byte) *bytes.Buffer {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(busybox))},
		{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777},
	} {
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(busybox)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return &layer
}

// pauseImageName is the test's pod sandbox image: busybox waiting for
// TERM, as a pause container does.
const pauseImageName = "docker.io/library/kvmbox-pause:test"

// writeImageTar writes an OCI image layout, as a tar that ctr images
// import reads, of one uncompressed layer holding busybox as /bin/busybox
// and /bin/sh, with the reference ref and the command cmd.
func writeImageTar(t testing.TB, name string, busybox []byte, ref string, cmd ...string) {
	t.Helper()
	layer := busyboxLayer(t, busybox)

	blobs := map[string][]byte{}
	descriptor := func(mediaType string, data []byte) map[string]any {
		sum := sha256.Sum256(data)
		digest := "sha256:" + hex.EncodeToString(sum[:])
		blobs[digest] = data
		return map[string]any{"mediaType": mediaType, "digest": digest, "size": len(data)}
	}
	mustJSON := func(v any) []byte {
		data, err := json.Marshal(v)
		require.NoError(t, err)
		return data
	}
	layerDesc := descriptor("application/vnd.oci.image.layer.v1.tar", layer.Bytes())
	config := descriptor("application/vnd.oci.image.config.v1+json", mustJSON(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": cmd, "Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc["digest"].(string)}},
	}))
	manifest := descriptor("application/vnd.oci.image.manifest.v1+json", mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": config, "layers": []any{layerDesc},
	}))
	manifest["annotations"] = map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "test"}
	index := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{manifest}})

	f, err := os.Create(name)
	require.NoError(t, err)
	defer f.Close()
	out := tar.NewWriter(f)
	add := func(name string, data []byte) {
		require.NoError(t, out.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}))
		_, err := out.Write(data)
		require.NoError(t, err)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for digest, data := range blobs {
		add("blobs/sha256/"+strings.TrimPrefix(digest, "sha256:"), data)
	}
	require.NoError(t, out.Close())
}

// containerd is a containerd daemon of the test's own: its socket, state
// and root in a temporary directory.
type containerd struct {
	t       testing.TB
	dir     string
	address string
	runtime string
	// namespace is where ctr works: "k8s.io", the CRI plugin's, when the
	// daemon has it.
	namespace string
}

// criConfig enables containerd's CRI plugin with the runtime handler
// kvmbox, as README's "With Kubernetes" has it (the only one, so also the
// default), pods' sandboxes from the
// test's pause image, the native snapshotter and an empty CNI
// configuration: only pods on the host's network run.
const criConfig = `[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "kvmbox"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kvmbox]
      runtime_type = "io.containerd.runc.v2"
      pod_annotations = ["io.kvmbox.*"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kvmbox.options]
        BinaryName = %q
        Root = %q
`

func startContainerd(t testing.TB) *containerd { return startContainerdWith(t, false) }

// startContainerdWith starts the test's containerd, with its CRI plugin
// when cri is set.
func startContainerdWith(t testing.TB, cri bool) *containerd {
	kvmtest.RequireKVM(t)
	kvmtest.RequireFile(t, "/bin/busybox")
	daemon := kvmtest.RequireTool(t, "containerd")
	kvmtest.RequireTool(t, "ctr")
	kvmtest.RequireTool(t, "containerd-shim-runc-v2")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs the containerd test as root")
		}
		t.Skip("containerd needs root")
	}
	c := &containerd{t: t, dir: t.TempDir(), runtime: runtimeBinary(t), namespace: "kvmbox-test"}
	c.address = filepath.Join(c.dir, "containerd.sock")
	disabled := `["io.containerd.grpc.v1.cri"]`
	if cri {
		disabled, c.namespace = "[]", "k8s.io"
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = %s
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(c.dir, "root"), filepath.Join(c.dir, "state"), disabled, c.address, c.address+".ttrpc")
	if cri {
		cni := filepath.Join(c.dir, "cni")
		require.NoError(t, os.Mkdir(cni, 0o755))
		config += fmt.Sprintf(criConfig, pauseImageName, cni, cni, c.runtime, filepath.Join(c.dir, "runc-kvmbox"))
	}
	configFile := filepath.Join(c.dir, "config.toml")
	require.NoError(t, os.WriteFile(configFile, []byte(config), 0o644))
	log, err := os.Create(filepath.Join(c.dir, "containerd.log"))
	require.NoError(t, err)
	cmd := exec.Command(daemon, "--config", configFile)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		// A shim outlives containerd: delete what a failed test left.
		if _, out, err := c.ctr("task", "ls", "--quiet"); err == nil {
			for id := range strings.FieldsSeq(out) {
				c.ctr("task", "delete", "--force", id)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		killShimsUnder(c.dir)
		log.Close()
		if t.Failed() {
			text, _ := os.ReadFile(log.Name())
			t.Logf("containerd's log:\n%s", text)
		}
	})
	deadline := time.Now().Add(kvmtest.Slowed(20 * time.Second))
	for {
		if _, _, err := c.ctr("version"); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "containerd did not start")
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// killShimsUnder ends the containerd shims a test's daemon left behind:
// those whose command line names its directory. A shim outlives the
// daemon that started it, and one whose task was being deleted when the
// daemon stopped waits for it forever.
func killShimsUnder(dir string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if err == nil && strings.Contains(filepath.Base(argv0), "containerd-shim") &&
			strings.Contains(string(cmdline), "\x00"+dir+"/") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ctr runs ctr against the test's containerd and returns its exit status
// and output.
func (c *containerd) ctr(args ...string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(60*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.address, "--namespace", c.namespace}, args...)...)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), string(out), nil
	}
	return 0, string(out), err
}

func (c *containerd) mustCtr(args ...string) string {
	c.t.Helper()
	code, out, err := c.ctr(args...)
	require.NoError(c.t, err)
	require.Equal(c.t, 0, code, "ctr %q: %s", args, out)
	return out
}

// runArgs are ctr run's flags that pick kvmbox-oci through the runc shim.
func (c *containerd) runArgs() []string { return c.runArgsFor(c.runtime) }

// runArgsFor are ctr run's flags that run containers with the runc-like
// binary runtime through the runc shim.
func (c *containerd) runArgsFor(runtime string) []string {
	return []string{"run", "--runtime", "io.containerd.runc.v2", "--runc-binary", runtime,
		"--runc-root", filepath.Join(c.dir, "runc-"+filepath.Base(runtime)), "--snapshotter", "native"}
}

// importBusybox imports the test's busybox image, and its pause image.
func (c *containerd) importBusybox() {
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(c.t, err)
	image := filepath.Join(c.dir, "image.tar")
	writeImageTar(c.t, image, busybox, imageName, "sh")
	c.mustCtr("images", "import", image)
	writeImageTar(c.t, image, busybox, pauseImageName, "sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done")
	c.mustCtr("images", "import", image)
}

// containerd's runc shim runs containers with kvmbox-oci: an image built
// here and imported, the container's output and exit status, and ctr task
// exec, ps and kill.
func TestContainerd(t *testing.T) {
	c := startContainerd(t)
	c.importBusybox()

	code, out, err := c.ctr(append(c.runArgs(), "--rm", imageName, "once", "sh", "-c", "echo hello from $(uname -r); exit 3")...)
	require.NoError(t, err)
	require.Regexp(t, "^hello from .*kvmbox\n$", out, "the container ran in kvmbox")
	require.Equal(t, 3, code, "ctr run exits with the container's status")

	c.mustCtr(append(c.runArgs(), "--detach", imageName, "long", "sh", "-c",
		`trap "exit 4" TERM; while :; do sleep 0.05; done`)...)
	out = c.mustCtr("task", "ls")
	require.Regexp(t, `long\s+[0-9]+\s+RUNNING`, out)
	code, out, err = c.ctr("task", "exec", "--exec-id", "e1", "long", "sh", "-c", "echo in exec; exit 5")
	require.NoError(t, err)
	require.Equal(t, "in exec\n", out)
	require.Equal(t, 5, code, "ctr task exec exits with the process's status")
	c.mustCtr("task", "exec", "--detach", "--exec-id", "e2", "long", "sh", "-c", "sleep 1000")
	out = c.mustCtr("task", "ps", "long")
	require.Regexp(t, `^PID\s+INFO\n[0-9]+\s+-\n[0-9]+\s+.*ExecID:e2\b.*\n$`, out, "the container's pid and the detached exec's")

	// ctr run --tty, on a terminal of the test's: the shim's console
	// socket gets the container's pty. (Its size is ctr's to set, after
	// the start.)
	master, slave, err := newPty(24, 80)
	require.NoError(t, err)
	defer master.Close()
	tty := exec.Command("ctr", append([]string{"--address", c.address, "--namespace", "kvmbox-test"},
		append(c.runArgs(), "--tty", "--rm", imageName, "tty", "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on a terminal; exit 6")...)...)
	tty.Stdin, tty.Stdout, tty.Stderr = slave, slave, slave
	tty.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	require.NoError(t, tty.Start())
	slave.Close()
	err = tty.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 6, exit.ExitCode())
	// The master reads what the terminal holds, then EIO: ctr, which had
	// the slave, has exited.
	text, _ := io.ReadAll(master)
	require.Contains(t, strings.ReplaceAll(string(text), "\r", ""), "on a terminal\n")

	c.mustCtr("task", "kill", "long")
	deadline := time.Now().Add(kvmtest.Slowed(20 * time.Second))
	for {
		out = c.mustCtr("task", "ls")
		if strings.Contains(out, "STOPPED") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the task did not stop: %s", out)
		time.Sleep(20 * time.Millisecond)
	}
	out = c.mustCtr("task", "delete", "long")
	require.Contains(t, out, "exit code 4", "the exit status the shim reaped")
	c.mustCtr("containers", "delete", "long")
}

// BenchmarkCtrRun times ctr run --rm of a busybox echo through containerd's
// runc shim, from start to the first output and to ctr's exit, with
// kvmbox-oci, runc and runsc (those installed) in turn in each iteration,
// and reports kvmbox-oci's times as ratios to the others'.
func BenchmarkCtrRun(b *testing.B) {
	c := startContainerd(b)
	c.importBusybox()
	runtimes := map[string]string{"kvmbox": c.runtime}
	if path, err := exec.LookPath("runc"); err == nil {
		runtimes["runc"] = path
	}
	if path, err := exec.LookPath("runsc"); err == nil {
		// Behind the runc shim, runsc refuses the network it would find
		// (the host's); kvmbox's sandboxes have only loopback too.
		wrapper := filepath.Join(c.dir, "runsc")
		require.NoError(b, os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+path+" --network=none \"$@\"\n"), 0o755))
		runtimes["runsc"] = wrapper
	}
	firstOutput, exit := map[string]time.Duration{}, map[string]time.Duration{}
	for i := 0; b.Loop(); i++ {
		for name, path := range runtimes {
			args := append(c.runArgsFor(path), "--rm", imageName, fmt.Sprintf("bench-%s-%d-%d", name, os.Getpid(), i), "sh", "-c", "echo hi")
			cmd := exec.Command("ctr", append([]string{"--address", c.address, "--namespace", "kvmbox-test"}, args...)...)
			stdout, err := cmd.StdoutPipe()
			require.NoError(b, err)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			require.NoError(b, cmd.Start())
			buf := make([]byte, 64)
			n, _ := stdout.Read(buf)
			firstOutput[name] += time.Since(start)
			io.Copy(io.Discard, stdout)
			err = cmd.Wait()
			exit[name] += time.Since(start)
			require.NoError(b, err, "%s: %s", name, stderr.String())
			require.Equal(b, "hi\n", string(buf[:n]), name)
		}
	}
	runs := float64(b.N)
	for name := range runtimes {
		b.ReportMetric(float64(firstOutput[name].Milliseconds())/runs, "ms-to-output-"+name)
		b.ReportMetric(float64(exit[name].Milliseconds())/runs, "ms-to-exit-"+name)
		if name != "kvmbox" {
			b.ReportMetric(float64(exit["kvmbox"])/float64(exit[name]), "kvmbox/"+name+"-exit")
			b.ReportMetric(float64(firstOutput["kvmbox"])/float64(firstOutput[name]), "kvmbox/"+name+"-output")
		}
	}
}

// ctr task pause and resume go through kvmbox-oci's pause and resume.
func TestContainerdPauseResume(t *testing.T) {
	c := startContainerd(t)
	c.importBusybox()
	c.mustCtr(append(c.runArgs(), "--detach", imageName, "paused", "sh", "-c", "while :; do sleep 0.05; done")...)
	c.mustCtr("task", "pause", "paused")
	require.Regexp(t, `paused\s+[0-9]+\s+PAUSED`, c.mustCtr("task", "ls"))
	c.mustCtr("task", "resume", "paused")
	require.Regexp(t, `paused\s+[0-9]+\s+RUNNING`, c.mustCtr("task", "ls"))
	c.mustCtr("task", "delete", "--force", "paused")
	c.mustCtr("containers", "delete", "paused")
}
