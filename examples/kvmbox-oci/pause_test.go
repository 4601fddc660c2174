package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fileSize is the size of the file name, 0 when it cannot be read.
func fileSize(name string) int64 {
	st, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return st.Size()
}

// pause stops the container's output (at most the write in progress
// finishes) for as long as it lasts, state says paused, and resume lets
// it go on; the errors are runc's.
func TestPauseAndResume(t *testing.T) {
	e := newOCIEnv(t)
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	e.writeSpec(nil, "sh", "-c", "while :; do echo x; sleep 0.02; done")
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer out.Close()
	pidFile := filepath.Join(t.TempDir(), "pid")
	code, _, stderr := e.run(out, "create", "--bundle", e.bundle, "--pid-file", pidFile, "p")
	require.Equal(t, 0, code, stderr)
	pid := readPid(t, pidFile)
	code, _, stderr = e.run(nil, "start", "p")
	require.Equal(t, 0, code, stderr)
	require.Eventually(t, func() bool { return fileSize(out.Name()) > 0 }, time.Minute, 10*time.Millisecond)

	code, _, stderr = e.run(nil, "pause", "p")
	require.Equal(t, 0, code, stderr)
	atPause := fileSize(out.Name())
	require.Equal(t, specs.ContainerState("paused"), e.state("p").Status)
	time.Sleep(500 * time.Millisecond)
	during := fileSize(out.Name())
	time.Sleep(500 * time.Millisecond)
	later := fileSize(out.Name())
	require.Equal(t, during, later, "nothing is written while paused")
	require.LessOrEqual(t, later-atPause, int64(len("x\n")), "at most the write in progress finishes")

	code, _, stderr = e.run(nil, "pause", "p")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container not running")
	code, _, stderr = e.run(nil, "exec", "p", "sh", "-c", "exit 0")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "cannot exec in a paused container")
	code, _, stderr = e.run(nil, "start", "p")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "cannot start a container in the paused state")
	code, _, stderr = e.run(nil, "delete", "p")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "cannot delete container p that is not stopped: paused")

	code, _, stderr = e.run(nil, "resume", "p")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, specs.ContainerState("running"), e.state("p").Status)
	require.Eventually(t, func() bool { return fileSize(out.Name()) > later }, time.Minute, 10*time.Millisecond)
	code, _, stderr = e.run(nil, "resume", "p")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container not paused")

	code, _, stderr = e.run(nil, "pause", "p")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = e.run(nil, "kill", "p", "KILL")
	require.Equal(t, 0, code, "a paused container is killed: %s", stderr)
	require.Equal(t, 128+9, reap(t, pid))
	code, _, stderr = e.run(nil, "pause", "p")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container not running")
	code, _, stderr = e.run(nil, "resume", "p")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container not paused")
	code, _, stderr = e.run(nil, "delete", "p")
	require.Equal(t, 0, code, stderr)
}

// statsEventOf runs events --stats and decodes its line.
func (e *ociEnv) statsEventOf(id string) event {
	e.t.Helper()
	code, out, stderr := e.run(nil, "events", "--stats", id)
	require.Equal(e.t, 0, code, stderr)
	require.Equal(e.t, 1, strings.Count(out, "\n"), "one line: %s", out)
	var ev event
	require.NoError(e.t, json.Unmarshal([]byte(out), &ev))
	return ev
}

// update changes the pids limit of a running container (a fork past it
// fails inside), refuses a memory limit the sandbox cannot take, and
// events reports the limits and usage as runc's stats event does.
func TestUpdateAndEvents(t *testing.T) {
	e := newOCIEnv(t)
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	memory := int64(256 << 20)
	e.writeSpec(func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &memory}}
	}, "sh", "-c", "while :; do sleep 1; done")
	pidFile := filepath.Join(t.TempDir(), "pid")
	code, _, stderr := e.run(nil, "create", "--bundle", e.bundle, "--pid-file", pidFile, "u")
	require.Equal(t, 0, code, stderr)
	pid := readPid(t, pidFile)
	code, _, stderr = e.run(nil, "start", "u")
	require.Equal(t, 0, code, stderr)

	ev := e.statsEventOf("u")
	require.Equal(t, "stats", ev.Type)
	require.Equal(t, "u", ev.ID)
	require.Equal(t, uint64(memory), ev.Data.Memory.Usage.Limit)
	require.NotZero(t, ev.Data.Memory.Usage.Usage)
	require.Equal(t, uint64(1024), ev.Data.Pids.Limit)
	require.NotZero(t, ev.Data.Pids.Current)
	require.NotZero(t, ev.Data.CPU.Usage.Total)

	code, _, stderr = e.run(nil, "update", "--pids-limit", "6", "u")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, uint64(6), e.statsEventOf("u").Data.Pids.Limit)
	code, _, stderr = e.run(nil, "exec", "u", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; kill $(jobs -p)")
	require.NotEqual(t, 0, code)
	require.Contains(t, stderr, "can't fork")

	resources := filepath.Join(t.TempDir(), "resources.json")
	require.NoError(t, os.WriteFile(resources, []byte(`{"pids":{"limit":64},"memory":{"limit":268435456}}`), 0o644))
	code, _, stderr = e.run(nil, "update", "-r", resources, "u")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, uint64(64), e.statsEventOf("u").Data.Pids.Limit)
	code, stdout, stderr := e.run(nil, "exec", "u", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; kill $(jobs -p); echo forked")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "forked\n", stdout)

	code, _, stderr = e.run(nil, "update", "--memory", "512m", "u")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "linux.resources.memory.limit")

	events := exec.Command(e.bin, "--root", e.root, "events", "--interval", "50ms", "u")
	eventsOut := filepath.Join(t.TempDir(), "events")
	f, err := os.Create(eventsOut)
	require.NoError(t, err)
	defer f.Close()
	events.Stdout = f
	require.NoError(t, events.Start())
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile(eventsOut)
		return strings.Count(string(data), "\n") >= 2
	}, time.Minute, 10*time.Millisecond)
	code, _, stderr = e.run(nil, "kill", "u", "KILL")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 128+9, reap(t, pid))
	require.NoError(t, events.Wait(), "events ends when the container stops")
	data, err := os.ReadFile(eventsOut)
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		var ev event
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		require.Equal(t, "u", ev.ID)
	}

	code, _, stderr = e.run(nil, "events", "--stats", "u")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container with id u is not running")
	code, _, stderr = e.run(nil, "update", "--pids-limit", "6", "u")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "container not running")
}
