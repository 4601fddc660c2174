package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// podBundle makes a bundle whose rootfs holds busybox and the file
// /marker naming it, with config.json as containerd's CRI plugin writes
// it for a pause container (pauseID empty) or for a container of the pod
// whose pause container is pauseID with host pid pausePid: CRI's
// annotations, mounts and namespaces, with the pod's network the host's
// (hostNetwork), which the pod annotation io.kvmbox.netns=loopback turns
// into the sandbox's own loopback.
func podBundle(t *testing.T, name, pauseID string, pausePid int, args ...string) string {
	bundle := t.TempDir()
	bin := filepath.Join(bundle, "rootfs", "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	busybox, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bin, "busybox"), busybox, 0o755))
	require.NoError(t, os.Symlink("busybox", filepath.Join(bin, "sh")))
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "rootfs", "marker"), []byte(name+"\n"), 0o644))
	shm := filepath.Join(bundle, "shm")
	require.NoError(t, os.Mkdir(shm, 0o755))
	s := defaultSpec()
	s.Process.Terminal = false
	s.Process.Args = args
	s.Process.Env = []string{"PATH=/bin"}
	s.Hostname = ""
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/dev/shm", Type: "bind", Source: shm, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
	}
	s.Annotations = map[string]string{criContainerType: criSandbox, criSandboxID: filepath.Base(bundle), netnsAnnotation: "loopback"}
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}}
	if pauseID == "" {
		s.Hostname = "pod"
		s.Root.Readonly = true
	} else {
		s.Root.Readonly = false
		s.Annotations = map[string]string{criContainerType: criContainer, criSandboxID: pauseID, netnsAnnotation: "loopback"}
		for _, ns := range []struct {
			typ  specs.LinuxNamespaceType
			file string
		}{{specs.IPCNamespace, "ipc"}, {specs.UTSNamespace, "uts"}} {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == ns.typ {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", pausePid, ns.file)
				}
			}
		}
		etc := filepath.Join(bundle, "etc")
		require.NoError(t, os.Mkdir(etc, 0o755))
		for file, content := range map[string]string{"hosts": "127.0.0.1 localhost\n", "resolv.conf": "nameserver 10.0.0.10\n",
			"hostname": "pod\n", "termination-log": ""} {
			require.NoError(t, os.WriteFile(filepath.Join(etc, file), []byte(content), 0o644))
		}
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(etc, "hosts"), Options: []string{"rbind", "rprivate", "rw"}},
			specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(etc, "hostname"), Options: []string{"rbind", "rprivate", "rw"}},
			specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(etc, "resolv.conf"), Options: []string{"rbind", "rprivate", "rw"}},
			specs.Mount{Destination: "/dev/termination-log", Type: "bind", Source: filepath.Join(etc, "termination-log"), Options: []string{"rbind", "rprivate", "rw"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
	}
	data, err := json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644))
	return bundle
}

// podEnv drives kvmbox-oci as containerd's shim does for a pod: the
// runtime's outputs go to files, and this process is the child subreaper
// that reaps the pids the --pid-file names.
type podEnv struct {
	*ociEnv
}

// create creates a container from bundle with its stdout (and stderr) a
// new file, and returns its pid and that file's name.
func (e podEnv) create(id, bundle string) (int, string) {
	e.t.Helper()
	out := filepath.Join(e.t.TempDir(), id+".out")
	f, err := os.Create(out)
	require.NoError(e.t, err)
	defer f.Close()
	pidFile := filepath.Join(e.t.TempDir(), "pid")
	code, _, stderr := e.run(f, "create", "--bundle", bundle, "--pid-file", pidFile, id)
	require.Equal(e.t, 0, code, stderr)
	// A failed test leaves no container running.
	e.t.Cleanup(func() { exec.Command(e.bin, "--root", e.root, "delete", "--force", id).Run() })
	return readPid(e.t, pidFile), out
}

func (e podEnv) ok(args ...string) string {
	e.t.Helper()
	code, stdout, stderr := e.run(nil, args...)
	require.Equal(e.t, 0, code, "%q: %s", args, stderr)
	return stdout
}

func readText(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(data)
}

// A pod as containerd's CRI plugin runs it: a pause container, then
// containers that join its sandbox by its namespace paths. They share the
// network (a server on 127.0.0.1 reached from another container), each
// sees its own root, each has its own state, pid and exit status, killing
// one leaves the others running, one cannot be paused alone nor change
// the pod's pids limit, and the pod's sandbox ends with its pause
// container, taking what still runs in it along.
func TestPodContainersShareASandbox(t *testing.T) {
	e := podEnv{newOCIEnv(t)}
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)

	pauseBundle := podBundle(t, "pause", "", 0, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")
	pausePid, _ := e.create("pause", pauseBundle)
	e.ok("start", "pause")

	server := podBundle(t, "server", "pause", pausePid, "sh", "-c",
		"mkdir /www && { cat /marker; hostname; } > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www")
	serverPid, serverOut := e.create("server", server)
	client := podBundle(t, "client", "pause", pausePid, "sh", "-c",
		"until wget -q -O - http://127.0.0.1:8080/; do sleep 0.1; done; cat /marker; ls /; cat /etc/resolv.conf; "+
			"echo x 2>/dev/null > /etc/hosts || echo hosts is read-only; ls /www 2>/dev/null || echo no /www here")
	// As on a systemd system: mounted on, the link leads to the mount.
	require.NoError(t, os.Mkdir(filepath.Join(client, "rootfs", "etc"), 0o755))
	require.NoError(t, os.Symlink("/run/resolv.conf", filepath.Join(client, "rootfs", "etc", "resolv.conf")))
	clientPid, clientOut := e.create("client", client)
	require.NotEqual(t, serverPid, clientPid)
	s := e.state("client")
	require.Equal(t, specs.State{Version: specs.Version, ID: "client", Status: "created", Pid: clientPid,
		Bundle: client, Annotations: map[string]string{criContainerType: criContainer, criSandboxID: "pause", netnsAnnotation: "loopback"}}, s)

	e.ok("start", "server")
	e.ok("start", "client")
	require.Equal(t, 0, reap(t, clientPid), "the client's pid exits with its status: %s", readText(t, clientOut))
	require.Equal(t, "server\npod\nclient\nbin\ndev\netc\nmarker\nproc\nrun\nsys\ntmp\nnameserver 10.0.0.10\n"+
		"hosts is read-only\nno /www here\n", readText(t, clientOut))
	require.Equal(t, specs.ContainerState("stopped"), e.state("client").Status)
	require.Equal(t, specs.ContainerState("running"), e.state("server").Status, "the client's end leaves the server running")
	require.Equal(t, specs.ContainerState("running"), e.state("pause").Status)

	require.Equal(t, "server\n", e.ok("exec", "server", "busybox", "cat", "/marker"))
	for _, id := range []string{"server", "pause"} {
		code, _, stderr := e.run(nil, "pause", id)
		require.Equal(t, 1, code)
		require.Contains(t, stderr, "the containers of the pod sandbox pause share it, and one cannot be paused alone")
	}
	code, _, stderr := e.run(nil, "update", "--pids-limit", "8", "server")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "linux.resources.pids.limit: the containers of the pod sandbox pause share its limit")
	var pids []int
	require.NoError(t, json.Unmarshal([]byte(e.ok("ps", "--format", "json", "server")), &pids))
	require.Equal(t, []int{serverPid}, pids)
	code, _, stderr = e.run(nil, "kill", "client", "KILL")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container not running")
	e.ok("delete", "client")

	e.ok("kill", "server", "KILL")
	require.Equal(t, 128+9, reap(t, serverPid))
	require.Empty(t, readText(t, serverOut))
	e.ok("delete", "server")
	require.Equal(t, specs.ContainerState("running"), e.state("pause").Status)

	stranger := podBundle(t, "stranger", "pause", pausePid+1, "sh")
	code, _, stderr = e.run(nil, "create", "--bundle", stranger, "stranger")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "linux.namespaces[1].path: kvmbox cannot join the namespace /proc/")
	orphan := podBundle(t, "orphan", "nothere", pausePid, "sh")
	code, _, stderr = e.run(nil, "create", "--bundle", orphan, "orphan")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "annotations.io.kubernetes.cri.sandbox-id: no pod sandbox nothere")

	sleeper := podBundle(t, "sleeper", "pause", pausePid, "sh", "-c", "sleep 1000 & wait")
	sleeperPid, _ := e.create("sleeper", sleeper)
	e.ok("start", "sleeper")
	e.ok("delete", "--force", "pause")
	require.Equal(t, 128+9, reap(t, pausePid))
	require.Equal(t, 128+9, reap(t, sleeperPid), "the pod's sandbox ends with its pause container")
	require.Equal(t, specs.ContainerState("stopped"), e.state("sleeper").Status)
	e.ok("delete", "sleeper")
	entries, err := os.ReadDir(e.root)
	require.NoError(t, err)
	require.Empty(t, entries)
}
