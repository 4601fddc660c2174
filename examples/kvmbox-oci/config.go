package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/kvmbox/kvmbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxConfigSize bounds config.json and process.json: real ones are a few
// kilobytes.
const maxConfigSize = 4 << 20

// plan is how a bundle's config.json runs in kvmbox.
type plan struct {
	sandbox kvmbox.Config
	process procPlan
	// notes say what the configuration asks for that a kvmbox sandbox
	// gives by construction or that has no effect there; they go to the
	// log.
	notes []string
}

// procPlan is how a process of the OCI configuration starts.
type procPlan struct {
	// path is the executable, absolute inside the sandbox.
	path       string
	args       []string
	env        []string
	dir        string
	uid, gid   uint32
	groups     []uint32
	noNewPrivs bool
	limits     map[int]syscall.Rlimit
	// caps are process.capabilities' sets, nil when it has none.
	caps     *kvmbox.Capabilities
	terminal bool
	// rows and cols are the terminal's size, 0 when not given.
	rows, cols uint16
}

// fieldError is configuration kvmbox cannot honour, named by its JSON
// path.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func refuse(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// decodeStrict decodes one JSON document into v, refusing fields the
// runtime specification does not define and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// readLimited reads a JSON file of at most maxConfigSize bytes.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s is over %d bytes", name, maxConfigSize)
	}
	return data, nil
}

// parseSpec decodes and checks config.json's bytes: well-formed JSON
// with a 1.x version this runtime knows. Properties the specification
// does not define are ignored, as it requires of runtimes; unknown names
// the first of them, for a warning.
func parseSpec(data []byte) (spec *specs.Spec, unknown string, err error) {
	spec = &specs.Spec{}
	if err := decodeStrict(data, spec); err != nil {
		name, isUnknown := unknownField(err)
		if !isUnknown {
			return nil, "", fmt.Errorf("config.json: %w", err)
		}
		unknown = name
		spec = &specs.Spec{}
		if err := json.Unmarshal(data, spec); err != nil {
			return nil, "", fmt.Errorf("config.json: %w", err)
		}
	}
	if err := checkVersion(spec.Version); err != nil {
		return nil, "", err
	}
	return spec, unknown, nil
}

// unknownField reads the field name out of encoding/json's error for a
// field the destination does not have.
func unknownField(err error) (string, bool) {
	name, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	return name, ok
}

var versionPattern = regexp.MustCompile(`^1\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.+-]*)?$`)

// checkVersion accepts the 1.x versions up to the one the spec package
// describes.
func checkVersion(v string) error {
	m := versionPattern.FindStringSubmatch(v)
	if m == nil {
		return refuse("ociVersion", "%q is not a version this runtime supports (1.0.0 to %s)", v, specs.Version)
	}
	if minor, err := strconv.Atoi(m[1]); err != nil || minor > specs.VersionMinor {
		return refuse("ociVersion", "%q is newer than this runtime supports (%s)", v, specs.Version)
	}
	return nil
}

// planContainer checks a configuration and maps it onto a sandbox and its
// first process. bundle is the absolute bundle directory; emptyDir is a
// host directory that stays empty, shown read-only where the configuration
// mounts a file system kvmbox has no content for. podPid, when not 0, is
// the host pid of the pause container of the pod whose sandbox the
// container joins: its namespace paths may name that process's.
func planContainer(spec *specs.Spec, bundle, emptyDir string, podPid int) (*plan, error) {
	p := &plan{}
	if spec.Solaris != nil || spec.Windows != nil || spec.VM != nil || spec.ZOS != nil {
		return nil, refuse("solaris/windows/vm/zos", "only Linux containers run in kvmbox")
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, refuse("root.path", "required")
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil {
		return nil, refuse("root.path", "%v", err)
	} else if !st.IsDir() {
		return nil, refuse("root.path", "%s is not a directory", rootfs)
	}
	p.sandbox.Root = rootfs
	p.sandbox.ReadOnlyRoot = spec.Root.Readonly
	if spec.Process == nil {
		return nil, refuse("process", "required")
	}
	proc, notes, err := planProcess("process", spec.Process, rootfs)
	if err != nil {
		return nil, err
	}
	p.process = proc
	p.notes = append(p.notes, notes...)
	p.sandbox.Hostname = spec.Hostname
	if spec.Domainname != "" {
		return nil, refuse("domainname", "kvmbox has no NIS domain name to set")
	}
	for i := range spec.Mounts {
		if err := p.addMount(fmt.Sprintf("mounts[%d]", i), &spec.Mounts[i], bundle, emptyDir); err != nil {
			return nil, err
		}
	}
	if err := checkHooks(spec.Hooks); err != nil {
		return nil, err
	}
	if spec.Linux == nil {
		return nil, refuse("linux", "required: kvmbox runs Linux containers")
	}
	if err := p.addLinux(spec.Linux, spec.Annotations[netnsAnnotation] == "loopback", podPid); err != nil {
		return nil, err
	}
	switch {
	case spec.Annotations[criContainerType] == criSandbox:
		// The pod's containers get their roots here, under a root that
		// CRI makes read-only.
		p.sandbox.Tmpfs = append(p.sandbox.Tmpfs, kvmbox.Tmpfs{Target: podContainersDir})
	case podPid != 0:
		p.notePodWide()
	}
	return p, nil
}

// notePodWide notes what a container that joins a pod asks of the sandbox,
// which is the pod's: the pause container's configuration set it.
func (p *plan) notePodWide() {
	if p.sandbox.Hostname != "" {
		p.note("hostname: the pod's sandbox keeps the pause container's hostname")
	}
	if p.sandbox.Memory != 0 || p.sandbox.MaxTasks != 0 {
		p.note("linux.resources: memory and pids limits are the pod sandbox's, from the pause container's configuration")
	}
}

// Annotations containerd's CRI plugin puts on a pod's containers.
const (
	criContainerType = "io.kubernetes.cri.container-type" // criSandbox or criContainer
	criSandboxID     = "io.kubernetes.cri.sandbox-id"     // a criContainer's pause container
	criSandbox       = "sandbox"
	criContainer     = "container"
)

// podContainersDir is where, inside a pod's sandbox, the roots of the
// containers that join it are mounted, each under its ID.
const podContainersDir = "/.kvmbox-oci-containers"

func (p *plan) note(format string, args ...any) {
	p.notes = append(p.notes, fmt.Sprintf(format, args...))
}

// rlimitNumbers maps the names process.rlimits uses to RLIMIT_*.
var rlimitNumbers = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// planProcess checks a process (config.json's, or exec's process.json,
// named field) and finds its executable in rootfs. It returns notes on
// what has no effect in kvmbox.
func planProcess(field string, sp *specs.Process, rootfs string) (procPlan, []string, error) {
	var notes []string
	pp := procPlan{terminal: sp.Terminal, env: sp.Env, dir: sp.Cwd}
	if len(sp.Args) == 0 {
		return pp, nil, refuse(field+".args", "required: at least the program to run")
	}
	if sp.CommandLine != "" {
		return pp, nil, refuse(field+".commandLine", "is for Windows")
	}
	if sp.Cwd == "" || !path.IsAbs(sp.Cwd) {
		return pp, nil, refuse(field+".cwd", "%q is not an absolute path", sp.Cwd)
	}
	if sp.ConsoleSize != nil {
		if sp.ConsoleSize.Height > 0xffff || sp.ConsoleSize.Width > 0xffff {
			return pp, nil, refuse(field+".consoleSize", "%dx%d is too large", sp.ConsoleSize.Width, sp.ConsoleSize.Height)
		}
		pp.rows, pp.cols = uint16(sp.ConsoleSize.Height), uint16(sp.ConsoleSize.Width)
	}
	for _, kv := range sp.Env {
		if !strings.Contains(kv, "=") {
			return pp, nil, refuse(field+".env", "%q is not KEY=VALUE", kv)
		}
	}
	u := sp.User
	if u.Username != "" {
		return pp, nil, refuse(field+".user.username", "is for Windows")
	}
	if u.Umask != nil && *u.Umask != 0o022 {
		return pp, nil, refuse(field+".user.umask", "kvmbox starts processes with umask 022 only")
	}
	pp.uid, pp.gid, pp.groups = u.UID, u.GID, u.AdditionalGids
	pp.noNewPrivs = sp.NoNewPrivileges
	if len(sp.Rlimits) > 0 {
		pp.limits = map[int]syscall.Rlimit{}
	}
	for i, rl := range sp.Rlimits {
		r, ok := rlimitNumbers[rl.Type]
		if !ok {
			return pp, nil, refuse(fmt.Sprintf("%s.rlimits[%d].type", field, i), "unknown resource %q", rl.Type)
		}
		if _, dup := pp.limits[r]; dup {
			return pp, nil, refuse(fmt.Sprintf("%s.rlimits[%d].type", field, i), "%s given twice", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return pp, nil, refuse(fmt.Sprintf("%s.rlimits[%d]", field, i), "soft limit %d is above the hard limit %d", rl.Soft, rl.Hard)
		}
		pp.limits[r] = syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}
	}
	if sp.Capabilities != nil {
		caps, note, err := capabilitySets(field+".capabilities", sp.Capabilities, pp.uid)
		if err != nil {
			return pp, nil, err
		}
		pp.caps = caps
		if note != "" {
			notes = append(notes, note)
		}
	}
	if sp.ApparmorProfile != "" || sp.SelinuxLabel != "" {
		notes = append(notes, field+".apparmorProfile/selinuxLabel: host security modules do not see the sandbox's programs, which never make host system calls")
	}
	if sp.OOMScoreAdj != nil {
		notes = append(notes, field+".oomScoreAdj: the sandbox's memory is bounded by its own limit")
	}
	if sp.IOPriority != nil {
		return pp, nil, refuse(field+".ioPriority", "kvmbox does not schedule I/O by priority")
	}
	if sp.Scheduler != nil {
		return pp, nil, refuse(field+".scheduler", "kvmbox does not set scheduling policies")
	}
	if sp.ExecCPUAffinity != nil {
		return pp, nil, refuse(field+".execCPUAffinity", "kvmbox does not pin processes to CPUs")
	}
	exe, err := findExecutable(rootfs, sp.Args[0], sp.Cwd, sp.Env)
	if err != nil {
		return pp, nil, refuse(field+".args[0]", "%v", err)
	}
	pp.path, pp.args = exe, sp.Args
	return pp, notes, nil
}

// capabilityNames are the capabilities by number, as config.json names
// them.
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
	"CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// capabilitySet turns capability names into a set.
func capabilitySet(field string, names []string) (uint64, error) {
	var set uint64
	for _, name := range names {
		n := slices.Index(capabilityNames, name)
		if n < 0 {
			return 0, refuse(field, "unknown capability %q", name)
		}
		set |= 1 << n
	}
	return set, nil
}

// capabilitySets maps process.capabilities onto the sets a process starts
// with, as they are once runc has run the program: uid 0 holds the
// configured sets; another uid has lost its effective and permitted ones
// in that execve, having no ambient ones, which kvmbox does not keep.
func capabilitySets(field string, c *specs.LinuxCapabilities, uid uint32) (*kvmbox.Capabilities, string, error) {
	var sets [5]uint64
	for i, s := range []struct {
		name  string
		names []string
	}{{"effective", c.Effective}, {"permitted", c.Permitted}, {"inheritable", c.Inheritable}, {"bounding", c.Bounding}, {"ambient", c.Ambient}} {
		set, err := capabilitySet(field+"."+s.name, s.names)
		if err != nil {
			return nil, "", err
		}
		sets[i] = set
	}
	caps := &kvmbox.Capabilities{Effective: sets[0], Permitted: sets[1], Inheritable: sets[2], Bounding: sets[3]}
	if sets[4] == 0 {
		if uid != 0 {
			caps.Effective, caps.Permitted = 0, 0
		}
		return caps, "", nil
	}
	if uid != 0 {
		return nil, "", refuse(field+".ambient", "kvmbox keeps no ambient capabilities for a uid other than 0")
	}
	return caps, field + ".ambient: no effect for uid 0, whose capabilities are the other sets", nil
}

// findExecutable resolves name as execvp would inside the container: a
// name with a slash is taken relative to cwd, a bare name is looked up in
// the environment's PATH. Links resolve inside rootfs, never outside it.
func findExecutable(rootfs, name, cwd string, env []string) (string, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return "", err
	}
	defer root.Close()
	isExecutable := func(p string) bool {
		st, err := root.Stat(strings.TrimPrefix(path.Clean(p), "/"))
		return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
	}
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		if !isExecutable(p) {
			return "", fmt.Errorf("%s: no such executable in the container's root", name)
		}
		return path.Clean(p), nil
	}
	search := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	for dir := range strings.SplitSeq(search, ":") {
		if dir == "" || !path.IsAbs(dir) {
			continue
		}
		if p := path.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", name)
}

// knownMountOptions are the mount options accepted; what each means in
// kvmbox is in addMount.
var knownMountOptions = []string{
	"ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "relatime", "norelatime", "strictatime",
	"noatime", "atime", "nodiratime", "diratime", "bind", "rbind", "private", "rprivate", "slave", "rslave",
	"shared", "rshared", "unbindable", "runbindable", "sync", "async", "newinstance",
}

// knownMountKeys are the KEY=VALUE mount options accepted.
var knownMountKeys = []string{"mode", "size", "nr_inodes", "uid", "gid", "ptmxmode"}

// kvmboxDevices are the device files kvmbox's /dev holds.
var kvmboxDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

func (p *plan) addMount(field string, m *specs.Mount, bundle, emptyDir string) error {
	dest := m.Destination
	if !path.IsAbs(dest) {
		return refuse(field+".destination", "%q is not an absolute path", dest)
	}
	dest = path.Clean(dest)
	if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		return refuse(field+".uidMappings", "kvmbox does not map IDs of mounts")
	}
	readOnly, bind := false, m.Type == "bind"
	var size int64
	for _, o := range m.Options {
		key, value, hasValue := strings.Cut(o, "=")
		switch {
		case o == "ro":
			readOnly = true
		case o == "rw":
			readOnly = false
		case o == "bind" || o == "rbind":
			bind = true
		case hasValue && key == "size":
			n, err := parseSize(value)
			if err != nil {
				return refuse(field+".options", "size %q: %v", value, err)
			}
			size = n
		case hasValue && slices.Contains(knownMountKeys, key):
		case !hasValue && slices.Contains(knownMountOptions, o):
		default:
			return refuse(field+".options", "option %q is not supported", o)
		}
	}
	switch {
	case bind:
		src := m.Source
		if src == "" {
			return refuse(field+".source", "required for a bind mount")
		}
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		st, err := os.Stat(src)
		if err != nil {
			return refuse(field+".source", "%v", err)
		}
		if st.Mode().IsRegular() && !readOnly {
			p.note("%s: the file %s is mounted read-only (kvmbox mounts files read-only only)", field, src)
			readOnly = true
		} else if !st.IsDir() && !st.Mode().IsRegular() {
			return refuse(field+".source", "%s is neither a directory nor a regular file", src)
		}
		if dest == "/" {
			return refuse(field+".destination", "a bind mount over / is root.path's job")
		}
		p.sandbox.Mounts = append(p.sandbox.Mounts, kvmbox.Mount{Source: src, Target: dest, ReadOnly: readOnly})
	case m.Type == "proc":
		if dest != "/proc" {
			return refuse(field+".destination", "kvmbox shows proc at /proc only, not at %s", dest)
		}
	case m.Type == "tmpfs" && dest == "/dev":
		p.note("%s: /dev is kvmbox's own (null, zero, full, random, urandom, tty, fd, stdin, stdout, stderr)", field)
	case m.Type == "tmpfs":
		if readOnly {
			return refuse(field+".options", "kvmbox has no read-only tmpfs")
		}
		p.sandbox.Tmpfs = append(p.sandbox.Tmpfs, kvmbox.Tmpfs{Target: dest, Size: size})
	case m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2":
		for _, above := range p.sandbox.Mounts {
			if above.Source == emptyDir && strings.HasPrefix(dest, above.Target+"/") {
				p.note("%s: %s at %s is not mounted: %s above it is an empty directory already", field, m.Type, dest, above.Target)
				return nil
			}
		}
		p.note("%s: %s at %s is an empty read-only directory (kvmbox has no %s)", field, m.Type, dest, m.Type)
		p.sandbox.Mounts = append(p.sandbox.Mounts, kvmbox.Mount{Source: emptyDir, Target: dest, ReadOnly: true})
	case m.Type == "devpts" || m.Type == "mqueue":
		if !strings.HasPrefix(dest, "/dev/") {
			return refuse(field+".destination", "kvmbox has no %s to show at %s", m.Type, dest)
		}
		switch {
		case m.Type == "mqueue":
			p.note("%s: %s is not mounted: kvmbox has no %s inside the sandbox", field, dest, m.Type)
		case dest == "/dev/pts":
			p.note("%s: /dev/pts is the sandbox's own devpts; its options have no effect", field)
		default:
			p.note("%s: %s is not mounted: the sandbox's one devpts is at /dev/pts", field, dest)
		}
	default:
		return refuse(field+".type", "%q is not supported (bind, proc, tmpfs, sysfs, cgroup, cgroup2, devpts and mqueue are)", m.Type)
	}
	return nil
}

// checkHooks checks that every hook names an absolute program.
func checkHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	if len(h.StartContainer) > 0 {
		return refuse("hooks.startContainer", "these run inside the container before its process, which kvmbox does not do")
	}
	for name, hooks := range hookLists(h) {
		for i, hook := range hooks {
			if !filepath.IsAbs(hook.Path) {
				return refuse(fmt.Sprintf("hooks.%s[%d].path", name, i), "%q is not an absolute path", hook.Path)
			}
			if hook.Timeout != nil && *hook.Timeout <= 0 {
				return refuse(fmt.Sprintf("hooks.%s[%d].timeout", name, i), "must be positive")
			}
		}
	}
	return nil
}

// hookLists names the hook lists as config.json does.
func hookLists(h *specs.Hooks) map[string][]specs.Hook {
	return map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"poststart": h.Poststart, "poststop": h.Poststop,
	}
}

// dockerSysctls are the sysctls Docker sets in every container; kvmbox's
// network already behaves so inside the sandbox.
var dockerSysctls = []string{"net.ipv4.ip_unprivileged_port_start", "net.ipv4.ping_group_range"}

// netnsAnnotation set to "loopback" accepts a network namespace path
// (Kubernetes pods, Docker networks) and gives the sandbox its own
// loopback network instead: kvmbox cannot reach the namespace's devices.
const netnsAnnotation = "io.kvmbox.netns"

// podNamespaceFiles name the namespace files under /proc/PID/ns that a
// pod's containers join, by namespace type.
var podNamespaceFiles = map[specs.LinuxNamespaceType]string{
	specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.PIDNamespace: "pid",
}

// isPodNamespace reports whether nsPath is the namespace of type typ of
// the pod's pause process podPid (0: the container joins no pod).
func isPodNamespace(typ specs.LinuxNamespaceType, nsPath string, podPid int) bool {
	file, ok := podNamespaceFiles[typ]
	return ok && podPid != 0 && path.Clean(nsPath) == fmt.Sprintf("/proc/%d/ns/%s", podPid, file)
}

func (p *plan) addLinux(l *specs.Linux, loopbackForNetnsPath bool, podPid int) error {
	network := false
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range l.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		switch ns.Type {
		case specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace,
			specs.CgroupNamespace, specs.UserNamespace, specs.TimeNamespace:
		case specs.NetworkNamespace:
			network = true
		default:
			return refuse(field+".type", "unknown namespace %q", ns.Type)
		}
		if seen[ns.Type] {
			return refuse(field+".type", "%s given twice", ns.Type)
		}
		seen[ns.Type] = true
		switch {
		case ns.Path == "":
		case isPodNamespace(ns.Type, ns.Path, podPid):
		case ns.Type == specs.NetworkNamespace && loopbackForNetnsPath:
			p.note("%s.path: the sandbox has its own loopback network, not %s (annotation %s)", field, ns.Path, netnsAnnotation)
		default:
			return refuse(field+".path", "kvmbox cannot join the namespace %s: the sandbox has its own kernel "+
				"(a pod's containers join its sandbox through the pause container's /proc/PID/ns paths; "+
				"for a network namespace, the annotation %s=loopback gives the sandbox its own loopback network instead)", ns.Path, netnsAnnotation)
		}
	}
	switch {
	case network, podPid != 0:
	case loopbackForNetnsPath:
		p.note("linux.namespaces: no network namespace (the host's network): the sandbox has its own loopback network instead (annotation %s)", netnsAnnotation)
	default:
		return refuse("linux.namespaces", "no network namespace means the host's network, which a kvmbox sandbox never shares "+
			"(add {\"type\": \"network\"}, or the annotation %s=loopback, for a sandbox with its own loopback)", netnsAnnotation)
	}
	if len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0 {
		if !seen[specs.UserNamespace] {
			return refuse("linux.uidMappings", "ID mappings need a user namespace")
		}
		p.note("linux.uidMappings: IDs inside the sandbox are its own; none of them is a host ID")
	}
	for key := range l.Sysctl {
		if !slices.Contains(dockerSysctls, key) {
			return refuse("linux.sysctl", "%q cannot be set in kvmbox", key)
		}
	}
	if err := p.addResources(l.Resources); err != nil {
		return err
	}
	for i, d := range l.Devices {
		if !slices.Contains(kvmboxDevices, path.Clean(d.Path)) {
			return refuse(fmt.Sprintf("linux.devices[%d].path", i), "kvmbox has no device %s (it has %s)", d.Path, strings.Join(kvmboxDevices, ", "))
		}
	}
	if l.CgroupsPath != "" {
		p.note("linux.cgroupsPath: the sandbox's limits are its own (linux.resources), not a host cgroup's")
	}
	if l.Seccomp != nil {
		p.note("linux.seccomp: the sandbox's programs never make host system calls; kvmbox's kernel serves them")
	}
	if len(l.MaskedPaths) > 0 || len(l.ReadonlyPaths) > 0 {
		p.note("linux.maskedPaths/readonlyPaths: kvmbox's /proc and /sys show nothing of the host to mask")
	}
	if l.RootfsPropagation != "" || l.MountLabel != "" {
		p.note("linux.rootfsPropagation/mountLabel: no host mount is made for the sandbox")
	}
	switch {
	case len(l.NetDevices) > 0:
		return refuse("linux.netDevices", "kvmbox cannot move host network devices into a sandbox")
	case l.IntelRdt != nil:
		return refuse("linux.intelRdt", "not supported by kvmbox")
	case l.MemoryPolicy != nil:
		return refuse("linux.memoryPolicy", "not supported by kvmbox")
	case l.Personality != nil && l.Personality.Domain != specs.PerLinux:
		return refuse("linux.personality", "kvmbox runs x86-64 Linux programs only")
	case len(l.TimeOffsets) > 0:
		return refuse("linux.timeOffsets", "kvmbox's clocks are the host's")
	}
	return nil
}

func (p *plan) addResources(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil && *m.Limit > 0 {
			p.sandbox.Memory = uint64(*m.Limit)
		}
		if m.Kernel != nil || m.KernelTCP != nil {
			return refuse("linux.resources.memory.kernel", "kvmbox has no separate kernel memory limit")
		}
		if m.Swap != nil || m.Reservation != nil || m.Swappiness != nil || m.DisableOOMKiller != nil || m.UseHierarchy != nil || m.CheckBeforeUpdate != nil {
			p.note("linux.resources.memory: only limit applies; the sandbox has no swap and its own memory")
		}
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil && *c.Quota > 0 {
			return refuse("linux.resources.cpu.quota", "kvmbox cannot enforce a CPU quota yet")
		}
		if c.RealtimeRuntime != nil || c.RealtimePeriod != nil || c.Idle != nil || c.Burst != nil {
			return refuse("linux.resources.cpu", "kvmbox has no real-time, idle or burst CPU control")
		}
		p.note("linux.resources.cpu: shares, period, cpus and mems have no effect on the sandbox's vCPUs")
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		if *r.Pids.Limit > 1<<22 {
			return refuse("linux.resources.pids.limit", "%d is above Linux's pid_max", *r.Pids.Limit)
		}
		p.sandbox.MaxTasks = int(*r.Pids.Limit)
	}
	if len(r.Devices) > 0 {
		p.note("linux.resources.devices: the sandbox reaches no host device; its /dev is kvmbox's")
	}
	if len(r.HugepageLimits) > 0 {
		p.note("linux.resources.hugepageLimits: the sandbox uses no host huge pages")
	}
	switch {
	case r.BlockIO != nil && (nonZero(r.BlockIO.Weight) || nonZero(r.BlockIO.LeafWeight) || len(r.BlockIO.WeightDevice) > 0 ||
		len(r.BlockIO.ThrottleReadBpsDevice) > 0 || len(r.BlockIO.ThrottleWriteBpsDevice) > 0 ||
		len(r.BlockIO.ThrottleReadIOPSDevice) > 0 || len(r.BlockIO.ThrottleWriteIOPSDevice) > 0):
		return refuse("linux.resources.blockIO", "kvmbox does not weigh or throttle block I/O")
	case r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0):
		return refuse("linux.resources.network", "kvmbox does not classify network traffic")
	case len(r.Rdma) > 0:
		return refuse("linux.resources.rdma", "kvmbox has no RDMA")
	case len(r.Unified) > 0:
		return refuse("linux.resources.unified", "kvmbox has no cgroup files to write")
	}
	return nil
}

// nonZero reports whether an optional weight is set to something: 0 is
// what Docker sends when none is asked for.
func nonZero(w *uint16) bool { return w != nil && *w != 0 }

// parseSize reads tmpfs sizes: bytes, or with k, m or g.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	mult := int64(1)
	switch strings.ToLower(s[len(s)-1:]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
