package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A container's state directory, --root/ID, holds:
const (
	stateFile  = "state.json" // containerState
	socketFile = "sock"       // the monitor's socket while it runs
	emptyDir   = "empty"      // stays empty: shown where kvmbox has no file system to mount
)

// containerState is what the state directory records of a container.
type containerState struct {
	ID      string    `json:"id"`
	Bundle  string    `json:"bundle"`
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	// MonitorPid is the host pid that stands for the container: its
	// monitor's, or for one in a pod's sandbox its waiter's.
	MonitorPid int `json:"monitorPid"`
	// Pod is the pause container whose monitor holds the pod's sandbox,
	// which this container joined; "" when it has its own sandbox.
	Pod         string            `json:"pod,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
}

var errNotExist = errors.New("container does not exist")

func (rt *runtime) stateDir(id string) string { return filepath.Join(rt.root, id) }

// loadState reads a container's recorded state.
func (rt *runtime) loadState(id string) (*containerState, error) {
	data, err := os.ReadFile(filepath.Join(rt.stateDir(id), stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotExist
	}
	if err != nil {
		return nil, err
	}
	var st containerState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state of %s: %w", id, err)
	}
	return &st, nil
}

// saveState writes the state file whole, through a rename, so that readers
// never see half of it.
func (rt *runtime) saveState(st *containerState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(rt.stateDir(st.ID), stateFile), data)
}

func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// request is what commands ask a container's monitor.
type request struct {
	Op      string         `json:"op"`
	Signal  int            `json:"signal,omitempty"`
	All     bool           `json:"all,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
	// Container names a container that joined the monitor's pod sandbox;
	// "" for the monitor's own.
	Container string `json:"container,omitempty"`
	// Resources are update's.
	Resources *specs.LinuxResources `json:"resources,omitempty"`
}

// Requests.
const (
	opStatus = "status" // reply: status and the container's process count
	opStart  = "start"
	opKill   = "kill"
	opPs     = "ps"     // reply: host pids
	opExec   = "exec"   // with 3 descriptors; replies twice: started, then exited
	opSignal = "signal" // on an exec or join connection: signal the process
	opJoin   = "join"   // with 3 descriptors: add Container to the pod sandbox; replies twice: joined, then exited
	opPause  = "pause"
	opResume = "resume"
	opUpdate = "update"
	opStats  = "stats" // reply: stats
)

// reply is a monitor's answer.
type reply struct {
	Error  string        `json:"error,omitempty"`
	Status string        `json:"status,omitempty"`
	Pids   []int         `json:"pids,omitempty"`
	Stats  *sandboxStats `json:"stats,omitempty"`
	// Exited, ExitCode and Signal end an exec.
	Exited   bool `json:"exited,omitempty"`
	ExitCode int  `json:"exitCode,omitempty"`
	Signal   int  `json:"signal,omitempty"`
}

// maxMessage bounds a request or reply: exec's process.json is the
// largest. One over maxInline (what a SOCK_SEQPACKET message carries
// whatever the socket buffers) travels in a memfd sent with a message
// that is only largeMessage.
const (
	maxMessage   = maxConfigSize
	maxInline    = 64 << 10
	largeMessage = "@"
)

// socketPath names a socket in dir through /proc/self/fd, so that a deep
// --root does not run into sun_path's 108 bytes; the caller keeps dirFD
// open while it uses the path.
func socketPath(dirFD *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(dirFD.Fd())) + "/" + socketFile
}

// conn is a connection to a monitor: one SOCK_SEQPACKET message per
// request or reply.
type conn struct{ *net.UnixConn }

// dial connects to the monitor that holds container id's sandbox: its
// own, or its pod's, when member is the Container its requests name. It
// fails when the monitor is gone (the container has stopped).
func (rt *runtime) dial(id string) (c *conn, member string, err error) {
	monitorID := id
	if st, err := rt.loadState(id); err == nil && st.Pod != "" {
		monitorID, member = st.Pod, id
	}
	dir, err := os.Open(rt.stateDir(monitorID))
	if err != nil {
		return nil, "", err
	}
	defer dir.Close()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socketPath(dir), Net: "unixpacket"})
	if err != nil {
		return nil, "", err
	}
	return &conn{uc}, member, nil
}

// send writes one message, with descriptors when files are given.
func (c *conn) send(v any, files ...*os.File) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > maxMessage {
		return fmt.Errorf("message of %d bytes is too large", len(data))
	}
	if len(data) > maxInline {
		body, err := memfdWith(data)
		if err != nil {
			return err
		}
		defer body.Close()
		data, files = []byte(largeMessage), append(files[:len(files):len(files)], body)
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(data, oob, nil)
	return err
}

// memfdWith returns a memfd holding data.
func memfdWith(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("kvmbox-oci-message", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "kvmbox-oci-message")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readLarge reads a large message's body from the memfd sent with it,
// from its start (the sender's writes moved the shared offset to its end).
func readLarge(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxMessage {
		return nil, fmt.Errorf("message of %d bytes is too large", st.Size())
	}
	return io.ReadAll(io.NewSectionReader(f, 0, st.Size()))
}

// receive reads one message into v, and the descriptors sent with it.
func (c *conn) receive(v any) ([]*os.File, error) {
	buf := make([]byte, maxInline)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	files, ferr := receivedFiles(oob[:oobn])
	if n == 0 {
		closeAll(files)
		return nil, errClosed
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || ferr != nil {
		closeAll(files)
		return nil, errors.Join(errors.New("truncated message"), ferr)
	}
	data := buf[:n]
	if string(data) == largeMessage {
		if len(files) == 0 {
			return nil, errors.New("a large message without its body")
		}
		body := files[len(files)-1]
		files = files[:len(files)-1]
		data, ferr = readLarge(body)
		body.Close()
		if ferr != nil {
			closeAll(files)
			return nil, ferr
		}
	}
	if err := decodeStrict(data, v); err != nil {
		closeAll(files)
		return nil, err
	}
	return files, nil
}

var errClosed = errors.New("connection closed")

func receivedFiles(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "received"))
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// ask sends one request to a container's monitor and returns its reply.
func (rt *runtime) ask(id string, req request) (*reply, error) {
	c, member, err := rt.dial(id)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req.Container = member
	if err := c.send(req); err != nil {
		return nil, err
	}
	var r reply
	if _, err := c.receive(&r); err != nil {
		return nil, err
	}
	if r.Error != "" {
		return &r, errors.New(r.Error)
	}
	return &r, nil
}

// Container statuses.
const (
	statusCreated = "created"
	statusRunning = "running"
	statusStopped = "stopped"
	statusPaused  = "paused"
)

// status asks the monitor how the container is; a monitor that does not
// answer has exited, and so has the container.
func (rt *runtime) status(id string) string {
	r, err := rt.ask(id, request{Op: opStatus})
	if err != nil {
		return statusStopped
	}
	return r.Status
}

// ociState is the state document runc prints, the OCI one with rootfs,
// created and owner added.
type ociState struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

func (rt *runtime) ociState(st *containerState) ociState {
	s := ociState{
		State: specs.State{Version: specs.Version, ID: st.ID, Status: specs.ContainerState(rt.status(st.ID)),
			Bundle: st.Bundle, Annotations: st.Annotations},
		Rootfs: st.Rootfs, Created: st.Created,
	}
	if s.Status != statusStopped {
		s.Pid = st.MonitorPid
	}
	return s
}

// waitStopped waits for a container's monitor to exit.
func (rt *runtime) waitStopped(id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for rt.status(id) != statusStopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s did not stop within %v", id, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// signalNumbers names the signals kill accepts, with or without SIG.
var signalNumbers = map[string]syscall.Signal{
	"HUP": unix.SIGHUP, "INT": unix.SIGINT, "QUIT": unix.SIGQUIT, "ILL": unix.SIGILL, "TRAP": unix.SIGTRAP,
	"ABRT": unix.SIGABRT, "IOT": unix.SIGIOT, "BUS": unix.SIGBUS, "FPE": unix.SIGFPE, "KILL": unix.SIGKILL,
	"USR1": unix.SIGUSR1, "SEGV": unix.SIGSEGV, "USR2": unix.SIGUSR2, "PIPE": unix.SIGPIPE, "ALRM": unix.SIGALRM,
	"TERM": unix.SIGTERM, "STKFLT": unix.SIGSTKFLT, "CHLD": unix.SIGCHLD, "CONT": unix.SIGCONT, "STOP": unix.SIGSTOP,
	"TSTP": unix.SIGTSTP, "TTIN": unix.SIGTTIN, "TTOU": unix.SIGTTOU, "URG": unix.SIGURG, "XCPU": unix.SIGXCPU,
	"XFSZ": unix.SIGXFSZ, "VTALRM": unix.SIGVTALRM, "PROF": unix.SIGPROF, "WINCH": unix.SIGWINCH, "IO": unix.SIGIO,
	"POLL": unix.SIGPOLL, "PWR": unix.SIGPWR, "SYS": unix.SIGSYS,
}

// parseSignal reads a signal as a number (1 to 64) or a name, with or
// without SIG, in any case.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signalNumbers[name]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
