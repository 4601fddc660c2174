package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kvmbox/kvmbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// newBundle makes a bundle whose rootfs holds an executable /bin/busybox
// with /bin/sh linking to it (empty files: nothing runs them here).
func newBundle(t testing.TB) string {
	t.Helper()
	bundle := t.TempDir()
	bin := filepath.Join(bundle, "rootfs", "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "busybox"), nil, 0o755))
	require.NoError(t, os.Symlink("busybox", filepath.Join(bin, "sh")))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "data"), nil, 0o644))
	require.NoError(t, os.Symlink("/../../../etc/passwd", filepath.Join(bin, "escape")))
	return bundle
}

func int64p(v int64) *int64 { return &v }

// fullSpec uses every field kvmbox maps.
func fullSpec() *specs.Spec {
	s := defaultSpec()
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", "true"}
	s.Process.Env = []string{"PATH=/usr/bin:/bin", "A=1"}
	s.Process.Cwd = "/tmp"
	s.Process.User = specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{5, 6}}
	s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CPU", Hard: 10, Soft: 5})
	s.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL"},
		Permitted: []string{"CAP_KILL"}, Inheritable: []string{"CAP_CHOWN"}}
	s.Hostname = "box"
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: "rootfs/bin", Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/rw", Type: "none", Source: "rootfs", Options: []string{"bind", "rw"}},
		specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: "rootfs/bin/data", Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=64m", "mode=1777"}},
		specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "ptmxmode=0666"}},
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid"}},
	)
	s.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: int64p(256 << 20)},
		Pids:   &specs.LinuxPids{Limit: int64p(64)},
	}
	s.Annotations = map[string]string{"a": "b"}
	return s
}

func TestPlanMapsTheConfiguration(t *testing.T) {
	bundle := newBundle(t)
	p, err := planContainer(fullSpec(), bundle, "/state/empty", 0)
	require.NoError(t, err)
	rootfs := filepath.Join(bundle, "rootfs")
	require.Equal(t, kvmbox.Config{
		Memory:       256 << 20,
		Hostname:     "box",
		Root:         rootfs,
		ReadOnlyRoot: true,
		MaxTasks:     64,
		Mounts: []kvmbox.Mount{
			{Source: "/state/empty", Target: "/sys", ReadOnly: true},
			{Source: filepath.Join(rootfs, "bin"), Target: "/data", ReadOnly: true},
			{Source: rootfs, Target: "/rw"},
			{Source: filepath.Join(rootfs, "bin", "data"), Target: "/etc/hosts", ReadOnly: true},
		},
		Tmpfs: []kvmbox.Tmpfs{{Target: "/scratch", Size: 64 << 20}},
	}, p.sandbox)
	require.Equal(t, procPlan{
		path: "/bin/sh", args: []string{"sh", "-c", "true"}, env: []string{"PATH=/usr/bin:/bin", "A=1"}, dir: "/tmp",
		uid: 1000, gid: 100, groups: []uint32{5, 6}, noNewPrivs: true,
		limits: map[int]syscall.Rlimit{syscall.RLIMIT_NOFILE: {Cur: 1024, Max: 1024}, syscall.RLIMIT_CPU: {Cur: 5, Max: 10}},
		caps:   &kvmbox.Capabilities{Inheritable: 1 << unix.CAP_CHOWN, Bounding: 1<<unix.CAP_KILL | 1<<unix.CAP_CHOWN},
		rows:   24, cols: 80,
	}, p.process, "uid 1000 keeps no effective or permitted capabilities")
	s := fullSpec()
	s.Process.User = specs.User{}
	p, err = planContainer(s, bundle, "/state/empty", 0)
	require.NoError(t, err)
	require.Equal(t, &kvmbox.Capabilities{Effective: 1 << unix.CAP_KILL, Permitted: 1 << unix.CAP_KILL,
		Inheritable: 1 << unix.CAP_CHOWN, Bounding: 1<<unix.CAP_KILL | 1<<unix.CAP_CHOWN}, p.process.caps)
	require.Contains(t, p.notes, "mounts[8]: cgroup at /sys/fs/cgroup is not mounted: /sys above it is an empty directory already")
	require.Contains(t, p.notes, "mounts[5]: the file "+filepath.Join(rootfs, "bin", "data")+" is mounted read-only (kvmbox mounts files read-only only)")
}

func TestNetnsPathNeedsTheAnnotation(t *testing.T) {
	bundle := newBundle(t)
	s := defaultSpec()
	s.Linux.Namespaces[1] = specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1"}
	_, err := planContainer(s, bundle, "/state/empty", 0)
	require.ErrorContains(t, err, "linux.namespaces[1].path")
	s.Annotations = map[string]string{netnsAnnotation: "loopback"}
	p, err := planContainer(s, bundle, "/state/empty", 0)
	require.NoError(t, err)
	require.Contains(t, p.notes, "linux.namespaces[1].path: the sandbox has its own loopback network, not /var/run/netns/cni-1 (annotation io.kvmbox.netns)")
	s.Linux.Namespaces[0].Path = "/proc/1/ns/pid"
	_, err = planContainer(s, bundle, "/state/empty", 0)
	require.ErrorContains(t, err, "linux.namespaces[0].path", "only a network namespace is replaced")
}

// A pod's container may name the pause process's namespaces, and only
// those; no network namespace means the host's network, which only the
// annotation turns into a loopback of the sandbox's own.
func TestPodNamespacePaths(t *testing.T) {
	bundle := newBundle(t)
	s := defaultSpec()
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/proc/42/ns/pid"},
		{Type: specs.NetworkNamespace, Path: "/proc/42/ns/net"}, {Type: specs.IPCNamespace, Path: "/proc/42/ns/ipc"},
		{Type: specs.UTSNamespace, Path: "/proc/42/ns/uts"}, {Type: specs.MountNamespace}}
	_, err := planContainer(s, bundle, "/state/empty", 42)
	require.NoError(t, err)
	_, err = planContainer(s, bundle, "/state/empty", 0)
	require.ErrorContains(t, err, "linux.namespaces[0].path", "no pod to join")
	_, err = planContainer(s, bundle, "/state/empty", 43)
	require.ErrorContains(t, err, "linux.namespaces[0].path", "another process's namespace")
	s.Linux.Namespaces[1].Path = "/proc/42/ns/ipc"
	_, err = planContainer(s, bundle, "/state/empty", 42)
	require.ErrorContains(t, err, "linux.namespaces[1].path", "another type's file")
	s.Linux.Namespaces[1].Path = "/proc/42/ns/net"
	s.Linux.Namespaces[4].Path = "/proc/42/ns/mnt"
	_, err = planContainer(s, bundle, "/state/empty", 42)
	require.ErrorContains(t, err, "linux.namespaces[4].path", "a mount namespace is never joined")

	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}}
	_, err = planContainer(s, bundle, "/state/empty", 42)
	require.NoError(t, err, "a pod's container has the pod's network")
	_, err = planContainer(s, bundle, "/state/empty", 0)
	require.ErrorContains(t, err, "linux.namespaces: no network namespace")
	s.Annotations = map[string]string{netnsAnnotation: "loopback", criContainerType: criSandbox}
	p, err := planContainer(s, bundle, "/state/empty", 0)
	require.NoError(t, err)
	require.Contains(t, p.notes, "linux.namespaces: no network namespace (the host's network): the sandbox has its own loopback network instead (annotation io.kvmbox.netns)")
	require.Contains(t, p.sandbox.Tmpfs, kvmbox.Tmpfs{Target: podContainersDir}, "a pod sandbox has room for its containers' roots")
}

// A mount destination's links resolve inside the root file system, never
// outside it; what does not exist is kept.
func TestResolveInRootfs(t *testing.T) {
	rootfs := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "srv", "data"), 0o755))
	for link, target := range map[string]string{"etc/resolv.conf": "/run/systemd/resolv.conf", "etc/hosts": "../srv/hosts",
		"data": "srv/data", "up": "../../../..", "loop": "loop", "etc/mtab": "/proc/self/mounts"} {
		require.NoError(t, os.Symlink(target, filepath.Join(rootfs, link)))
	}
	for dest, want := range map[string]string{"/etc/resolv.conf": "/run/systemd/resolv.conf", "/etc/hosts": "/srv/hosts",
		"/data/x": "/srv/data/x", "/up/etc/passwd": "/etc/passwd", "/new/dir": "/new/dir", "/etc/../data": "/srv/data",
		"/": "/", "/etc/mtab": "/proc/self/mounts"} {
		got, err := resolveInRootfs(rootfs, dest)
		require.NoError(t, err, dest)
		require.Equal(t, want, got, dest)
	}
	_, err := resolveInRootfs(rootfs, "/loop/x")
	require.ErrorIs(t, err, unix.ELOOP)
}

func TestFindExecutable(t *testing.T) {
	rootfs := filepath.Join(newBundle(t), "rootfs")
	for _, c := range []struct{ name, cwd, want string }{
		{"sh", "/", "/bin/sh"},
		{"/bin/busybox", "/", "/bin/busybox"},
		{"./busybox", "/bin", "/bin/busybox"},
		{"../bin/sh", "/bin", "/bin/sh"},
	} {
		got, err := findExecutable(rootfs, c.name, c.cwd, nil)
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, got)
	}
	for _, name := range []string{"data", "/bin/data", "escape", "/bin/escape", "nothere", "/bin", "/etc/passwd"} {
		_, err := findExecutable(rootfs, name, "/", []string{"PATH=/bin"})
		require.Error(t, err, "%s is not an executable inside the rootfs", name)
	}
	_, err := findExecutable(rootfs, "sh", "/", []string{"PATH=/usr/bin"})
	require.ErrorContains(t, err, "not found in $PATH", "the environment's PATH is searched")
}

func TestPlanRefusesWhatKvmboxCannotHonour(t *testing.T) {
	bundle := newBundle(t)
	for field, change := range map[string]func(s *specs.Spec){
		"root.path":               func(s *specs.Spec) { s.Root.Path = "nothere" },
		"process":                 func(s *specs.Spec) { s.Process = nil },
		"process.args":            func(s *specs.Spec) { s.Process.Args = nil },
		"process.args[0]":         func(s *specs.Spec) { s.Process.Args = []string{"nothere"} },
		"process.cwd":             func(s *specs.Spec) { s.Process.Cwd = "tmp" },
		"process.env":             func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} },
		"process.rlimits[0].type": func(s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_BOGUS" },
		"process.rlimits[0]":      func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 },
		"process.user.username":   func(s *specs.Spec) { s.Process.User.Username = "bob" },
		"process.capabilities.bounding": func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_BOGUS"}}
		},
		"process.capabilities.ambient": func(s *specs.Spec) {
			s.Process.User.UID = 1
			s.Process.Capabilities = &specs.LinuxCapabilities{Ambient: []string{"CAP_KILL"}}
		},
		"process.scheduler":     func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{} },
		"mounts[0].destination": func(s *specs.Spec) { s.Mounts[0].Destination = "/elsewhere" },
		"mounts[1].type":        func(s *specs.Spec) { s.Mounts[1].Type = "nfs" },
		"mounts[2].options":     func(s *specs.Spec) { s.Mounts[2].Options = []string{"weird"} },
		"mounts[3].source": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nothere"})
		},
		"linux":                    func(s *specs.Spec) { s.Linux = nil },
		"linux.namespaces":         func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] },
		"linux.namespaces[1].path": func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/1/ns/net" },
		"linux.namespaces[0].type": func(s *specs.Spec) { s.Linux.Namespaces[0].Type = "bogus" },
		"linux.resources.cpu.quota": func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: int64p(5000)}}
		},
		"linux.resources.blockIO": func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: new(uint16(10))}}
		},
		"linux.sysctl":           func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"} },
		"linux.devices[0].path":  func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sda"}} },
		"hooks.startContainer":   func(s *specs.Spec) { s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}} },
		"hooks.poststop[0].path": func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "true"}}} },
		"domainname":             func(s *specs.Spec) { s.Domainname = "example" },
		"solaris/windows/vm/zos": func(s *specs.Spec) { s.Windows = &specs.Windows{} },
		"linux.resources.memory.kernel": func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: int64p(1)}}
		},
		"linux.resources.pids.limit": func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: int64p(1 << 40)}}
		},
		"linux.timeOffsets":       func(s *specs.Spec) { s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}} },
		"linux.resources.unified": func(s *specs.Spec) { s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"a": "b"}} },
		"mounts[3].options": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"ro"}})
		},
		"process.user.umask": func(s *specs.Spec) { u := uint32(0o077); s.Process.User.Umask = &u },
	} {
		s := defaultSpec()
		s.Process.Terminal = false
		change(s)
		_, err := planContainer(s, bundle, "/state/empty", 0)
		var fe *fieldError
		require.ErrorAs(t, err, &fe, field)
		require.Equal(t, field, fe.field)
	}
}

func TestParseSpecRefusesBadDocuments(t *testing.T) {
	good, err := json.Marshal(defaultSpec())
	require.NoError(t, err)
	_, unknown, err := parseSpec(good)
	require.NoError(t, err)
	require.Empty(t, unknown)
	for doc, want := range map[string]string{
		`{"ociVersion": "1.0.0", "bogus": 1}`:                           `"bogus"`,
		`{"ociVersion": "1.0.0", "process": {"argz": [], "cwd": "/x"}}`: `"argz"`,
	} {
		spec, unknown, err := parseSpec([]byte(doc))
		require.NoError(t, err, "runtimes ignore properties they do not know (config.md, Extensibility)")
		require.Equal(t, want, unknown)
		require.Equal(t, "1.0.0", spec.Version)
	}
	for name, doc := range map[string]string{
		"malformed":     `{"ociVersion": "1.0.0",`,
		"wrong type":    `{"ociVersion": "1.0.0", "process": {"args": "sh"}}`,
		"trailing":      `{"ociVersion": "1.0.0"} {}`,
		"version 2":     `{"ociVersion": "2.0.0"}`,
		"version 1.99":  `{"ociVersion": "1.99.0"}`,
		"no version":    `{}`,
		"not semver":    `{"ociVersion": "1.0"}`,
		"not an object": `[]`,
	} {
		_, _, err := parseSpec([]byte(doc))
		require.Error(t, err, name)
	}
	for _, v := range []string{"1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", specs.Version} {
		require.NoError(t, checkVersion(v), v)
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "web-1", "x_y.z+1", "0123456789abcdef"} {
		require.NoError(t, checkID(id), id)
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a b", "a\x00", "é"} {
		require.Error(t, checkID(id), id)
	}
}

func TestParseSignal(t *testing.T) {
	for s, want := range map[string]syscall.Signal{
		"9": syscall.SIGKILL, "KILL": syscall.SIGKILL, "SIGKILL": syscall.SIGKILL, "term": syscall.SIGTERM,
		"sigusr1": syscall.SIGUSR1, "64": 64,
	} {
		got, err := parseSignal(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"0", "65", "-1", "BOGUS", "SIG", ""} {
		_, err := parseSignal(s)
		require.Error(t, err, s)
	}
}

// FuzzParseSpec feeds config.json documents to the parser and the
// planner: neither may panic, and what they accept must be usable.
func FuzzParseSpec(f *testing.F) {
	bundle := newBundle(f)
	for _, s := range []*specs.Spec{defaultSpec(), fullSpec()} {
		data, err := json.Marshal(s)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, _, err := parseSpec(data)
		if err != nil {
			return
		}
		p, err := planContainer(spec, bundle, "/state/empty", 0)
		if err != nil {
			return
		}
		require.True(t, filepath.IsAbs(p.process.path))
		require.NotEmpty(t, p.process.args)
		for _, m := range p.sandbox.Mounts {
			require.True(t, filepath.IsAbs(m.Target))
		}
		for _, m := range p.sandbox.Tmpfs {
			require.True(t, filepath.IsAbs(m.Target))
			require.GreaterOrEqual(t, m.Size, int64(0))
		}
	})
}

func TestCapabilityNamesAreLinuxs(t *testing.T) {
	require.Len(t, capabilityNames, unix.CAP_LAST_CAP+1)
	require.Equal(t, "CAP_NET_BIND_SERVICE", capabilityNames[unix.CAP_NET_BIND_SERVICE])
	require.Equal(t, "CAP_SYS_ADMIN", capabilityNames[unix.CAP_SYS_ADMIN])
	require.Equal(t, "CAP_CHECKPOINT_RESTORE", capabilityNames[unix.CAP_CHECKPOINT_RESTORE])
}
