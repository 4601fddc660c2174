// Command goprog exercises what the Go runtime and standard library need
// from a kernel: threads, futexes, timers, signals, fork and exec, pipes and
// files. It prints one line per check, the same on every run, so a test can
// compare a native run with a sandboxed one. Usage: goprog BUSYBOX.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	runtime.GOMAXPROCS(4)
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: goprog BUSYBOX")
		os.Exit(2)
	}
	busybox := os.Args[1]
	checks := []struct {
		name string
		run  func() (string, error)
	}{
		{"goroutines", goroutines},
		{"mutex", mutex},
		{"timers", timers},
		{"ticker", ticker},
		{"select", selects},
		{"memory", memory},
		{"exec", func() (string, error) { return execs(busybox) }},
		{"signal", signals},
		{"pipe", pipe},
		{"files", files},
		{"getwd", getwd},
	}
	for _, c := range checks {
		result, err := c.run()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
			os.Exit(1)
		}
		fmt.Printf("%s: %s\n", c.name, result)
	}
	fmt.Println("done")
}

// goroutines sums 0..999, each number sent by its own goroutine.
func goroutines() (string, error) {
	const n = 1000
	ch := make(chan int)
	for i := range n {
		go func() { ch <- i }()
	}
	sum := 0
	for range n {
		sum += <-ch
	}
	return fmt.Sprintf("%d goroutines sent %d", n, sum), nil
}

// mutex has goroutines contend for one lock.
func mutex() (string, error) {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		counter int
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20000 {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return fmt.Sprintf("counter %d", counter), nil
}

func timers() (string, error) {
	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	if d := time.Since(start); d < 20*time.Millisecond {
		return "", fmt.Errorf("time.Sleep(20ms) returned after %v", d)
	}
	start = time.Now()
	<-time.After(30 * time.Millisecond)
	if d := time.Since(start); d < 30*time.Millisecond {
		return "", fmt.Errorf("time.After(30ms) fired after %v", d)
	}
	timer := time.NewTimer(time.Hour)
	if !timer.Stop() {
		return "", errors.New("an hour-long timer fired")
	}
	return "sleep, after and stop", nil
}

func ticker() (string, error) {
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	start := time.Now()
	for range 5 {
		<-tk.C
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		return "", fmt.Errorf("5 ticks of 5ms took %v", d)
	}
	return "5 ticks", nil
}

func selects() (string, error) {
	never := make(chan int)
	select {
	case <-never:
		return "", errors.New("received from a silent channel")
	case <-time.After(10 * time.Millisecond):
	}
	ready := make(chan int, 1)
	ready <- 42
	select {
	case v := <-ready:
		if v != 42 {
			return "", fmt.Errorf("received %d", v)
		}
	case <-time.After(10 * time.Second):
		return "", errors.New("a ready channel timed out")
	}
	return "timeout then ready", nil
}

// memory allocates 64 MiB in 1 MiB chunks, touches every page and collects
// garbage between rounds.
func memory() (string, error) {
	const chunk = 1 << 20
	var chunks [][]byte
	for i := range 64 {
		b := make([]byte, chunk)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i + j>>12)
		}
		chunks = append(chunks, b)
		if i%16 == 15 {
			runtime.GC()
		}
	}
	sum := 0
	for _, b := range chunks {
		for j := 0; j < len(b); j += 4096 {
			sum += int(b[j])
		}
	}
	chunks = nil
	runtime.GC()
	return fmt.Sprintf("64 MiB, page sum %d", sum), nil
}

func execs(busybox string) (string, error) {
	out, err := exec.Command(busybox, "echo", "hi").Output()
	if err != nil {
		return "", fmt.Errorf("busybox echo: %w", err)
	}
	var upper bytes.Buffer
	tr := exec.Command(busybox, "tr", "a-z", "A-Z")
	tr.Stdin, tr.Stdout = strings.NewReader("piped"), &upper
	if err := tr.Run(); err != nil {
		return "", fmt.Errorf("busybox tr: %w", err)
	}
	err = exec.Command(busybox, "sh", "-c", "exit 7").Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return "", fmt.Errorf("sh -c 'exit 7': %v", err)
	}
	return fmt.Sprintf("echo %q, tr %q, exit code %d", out, upper.String(), exitErr.ExitCode()), nil
}

func signals() (string, error) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	defer signal.Stop(ch)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		return "", err
	}
	select {
	case s := <-ch:
		return "received " + s.String(), nil
	case <-time.After(10 * time.Second):
		return "", errors.New("SIGUSR1 never arrived")
	}
}

// pipe streams 1 MiB from one goroutine to another through os.Pipe.
func pipe() (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	go func() {
		defer w.Close()
		block := make([]byte, 4096)
		for i := range 256 {
			for j := range block {
				block[j] = byte(i ^ j)
			}
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	}()
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	sum := 0
	for _, b := range data {
		sum += int(b)
	}
	return fmt.Sprintf("%d bytes, sum %d", len(data), sum), nil
}

func files() (string, error) {
	dir, err := os.MkdirTemp("", "goprog-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	a := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(a, []byte("first\n"), 0o644); err != nil {
		return "", err
	}
	f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString("second\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		return "", err
	}
	b := filepath.Join(dir, "sub", "b.txt")
	if err := os.Rename(a, b); err != nil {
		return "", err
	}
	data, err := os.ReadFile(b)
	if err != nil {
		return "", err
	}
	var names []string
	err = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	return fmt.Sprintf("%q in %v", data, names), nil
}

func getwd() (string, error) {
	start, err := os.Getwd()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "goprog-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := os.Chdir(dir); err != nil {
		return "", err
	}
	defer os.Chdir(start)
	now, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("started in %s, chdir reached the temp dir: %v", start, now == dir), nil
}
