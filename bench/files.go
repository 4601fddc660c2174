package bench

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kvmbox/kvmbox"
)

//go:embed guests/fsbench.c
var fsbenchSource []byte

// Pair is one workload measured natively and in a sandbox.
type Pair struct {
	Name              string
	Native, Sandboxed float64 // ns per operation
}

// fsRunner runs fsbench natively and in a sandbox.
type fsRunner struct {
	exe string
	sb  *kvmbox.Sandbox
}

func buildFSBench(dir string) (string, error) {
	src := filepath.Join(dir, "fsbench.c")
	exe := filepath.Join(dir, "fsbench")
	if err := os.WriteFile(src, fsbenchSource, 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", exe, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: building fsbench (gcc is needed): %v\n%s", err, out)
	}
	return exe, nil
}

func parseNs(out []byte) (float64, error) {
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

func (r *fsRunner) native(args ...string) (float64, error) {
	out, err := exec.Command(r.exe, args...).Output()
	if err != nil {
		return 0, fmt.Errorf("bench: native fsbench %v: %w", args, err)
	}
	return parseNs(out)
}

func (r *fsRunner) sandboxed(args ...string) (float64, error) {
	var out, errOut bytes.Buffer
	cmd := r.sb.Command(context.Background(), r.exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("bench: sandboxed fsbench %v: %w: %s", args, err, errOut.String())
	}
	return parseNs(out.Bytes())
}

// FileWorkloads measures sequential write and read throughput (1 MiB
// buffers) on tmpfs and on a host directory, open+fstat+close of a path,
// and getdents64 over a directory of dirents entries, natively and in a
// sandbox, in one run.
func FileWorkloads(mib, opens, dirents int) ([]Pair, error) {
	work, err := os.MkdirTemp("", "kvmbox-fsbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	exe, err := buildFSBench(work)
	if err != nil {
		return nil, err
	}
	hostDir := filepath.Join(work, "host")
	shm, err := os.MkdirTemp("/dev/shm", "kvmbox-fsbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(shm)
	if err := os.Mkdir(hostDir, 0o755); err != nil {
		return nil, err
	}
	sb, err := kvmbox.New(kvmbox.Config{Memory: uint64(mib+256) << 20, Mounts: []kvmbox.Mount{{Source: hostDir, Target: "/data"}}})
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	r := &fsRunner{exe: exe, sb: sb}
	n := strconv.Itoa
	steps := []struct {
		name           string
		nativeDir, dir string
		args           []string
		timed          bool
	}{
		{"write 1 MiB, tmpfs", shm, "/tmp", []string{"write", "", n(mib)}, true},
		{"read 1 MiB, tmpfs", shm, "/tmp", []string{"read", ""}, true},
		{"write 1 MiB, host directory", hostDir, "/data", []string{"write", "", n(mib)}, true},
		{"read 1 MiB, host directory", hostDir, "/data", []string{"read", ""}, true},
		{"open+fstat+close, tmpfs", shm, "/tmp", []string{"open", "", n(opens)}, true},
		{"open+fstat+close, host directory", hostDir, "/data", []string{"open", "", n(opens)}, true},
		{"", shm, "/tmp", []string{"mkdents", "", n(dirents)}, false},
		{fmt.Sprintf("getdents64 per entry, %d entries, tmpfs", dirents), shm, "/tmp", []string{"getdents", ""}, true},
		{"clock_gettime(CLOCK_MONOTONIC), vDSO", shm, "/tmp", []string{"clock", "", n(opens * 100)}, true},
	}
	var pairs []Pair
	for _, s := range steps {
		native := append([]string{}, s.args...)
		native[1] = s.nativeDir
		inside := append([]string{}, s.args...)
		inside[1] = s.dir
		nat, err := r.native(native...)
		if err != nil {
			return nil, err
		}
		sbx, err := r.sandboxed(inside...)
		if err != nil {
			return nil, err
		}
		if s.timed {
			pairs = append(pairs, Pair{Name: s.name, Native: nat, Sandboxed: sbx})
		}
	}
	return pairs, nil
}
