package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// readyWriter discards a program's output and closes ready at its first
// byte.
type readyWriter struct {
	once  sync.Once
	ready chan struct{}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.ready) })
	return len(p), nil
}

// memory starts Sandboxes programs that block reading stdin and returns
// the PSS of this process and its descendants while they run, beyond what
// it was before, per program, in KiB.
func (s *suite) memory(r runner) ([]float64, error) {
	before, err := treePSS()
	if err != nil {
		return nil, err
	}
	type held struct {
		p     process
		stdin *io.PipeWriter
		out   *readyWriter
	}
	var hs []held
	release := func() error {
		for _, h := range hs {
			h.stdin.Close()
		}
		var errs []error
		for _, h := range hs {
			errs = append(errs, h.p.wait())
		}
		return errors.Join(errs...)
	}
	for range s.opt.Sandboxes {
		stdin, stdinW := io.Pipe()
		out := &readyWriter{ready: make(chan struct{})}
		p, err := r.start(s.blocker, nil, stdin, out)
		if err != nil {
			return nil, errors.Join(err, release())
		}
		hs = append(hs, held{p, stdinW, out})
	}
	deadline := time.After(time.Minute)
	for _, h := range hs {
		select {
		case <-h.out.ready:
		case <-deadline:
			return nil, errors.Join(errors.New("bench: a program was not running after a minute"), release())
		}
	}
	during, err := treePSS()
	if err != nil {
		return nil, errors.Join(err, release())
	}
	// In kvmbox, the part of that which is the guests' own memory.
	guest := math.NaN()
	for i, h := range hs {
		if sp, ok := h.p.(*sandboxProcess); ok {
			if i == 0 {
				guest = 0
			}
			guest += float64(sp.sb.Stats().GuestResidentBytes)
		}
	}
	if err := release(); err != nil {
		return nil, err
	}
	perProgram := (float64(during) - float64(before)) / float64(s.opt.Sandboxes) / 1024
	return []float64{perProgram, perProgram - guest/float64(s.opt.Sandboxes)/1024}, nil
}

// treePSS returns the proportional set size of this process and its
// descendants, in bytes, after returning what the Go heap can to the OS.
func treePSS() (uint64, error) {
	debug.FreeOSMemory()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it exited
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
	self := os.Getpid()
	var total uint64
	for queue := []int{self}; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		queue = append(queue, children[pid]...)
		pss, err := pssOf(pid)
		if err != nil && pid == self {
			return 0, err
		}
		total += pss
	}
	return total, nil
}

// pssOf returns a process's proportional set size in bytes.
func pssOf(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("bench: no Pss in /proc/%d/smaps_rollup", pid)
}
