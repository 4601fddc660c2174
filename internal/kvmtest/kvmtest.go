// Package kvmtest holds test helpers shared by kvmbox's packages: the
// /dev/kvm requirement and the guest programs built from testdata.
package kvmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireKVM fails the test when /dev/kvm is unusable and CI is set, and
// skips it otherwise.
func RequireKVM(t testing.TB) {
	t.Helper()
	if err := unix.Access("/dev/kvm", unix.R_OK|unix.W_OK); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI requires /dev/kvm: %v", err)
		}
		t.Skipf("/dev/kvm is not usable: %v", err)
	}
}

// Emulated reports whether the tests run under software emulation
// (../shared/kvm-in-qemu, or KVMBOX_EMULATED set), where everything runs
// 10-50 times slower: tests whose work is slow even natively use smaller
// counts and longer deadlines there, never a skip.
func Emulated() bool {
	emulatedOnce.Do(func() {
		if os.Getenv("KVMBOX_EMULATED") != "" {
			emulated = true
			return
		}
		cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
		emulated = strings.Contains(string(cpuinfo), "QEMU TCG")
	})
	return emulated
}

var (
	emulatedOnce sync.Once
	emulated     bool
)

// Slowed returns d, or d stretched by the emulator's slowdown when the
// tests run under emulation.
func Slowed(d time.Duration) time.Duration {
	if Emulated() {
		return 10 * d
	}
	return d
}

// RequireTool fails the test when a build tool is missing and CI is set
// (CI installs them), and skips it otherwise.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI requires %s: %v", name, err)
		}
		t.Skipf("%s is not installed", name)
	}
	return path
}

// RequireFile fails the test when a host file it uses (glibc's ld.so,
// coreutils) is missing and CI is set, and skips it otherwise.
func RequireFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI requires %s: %v", path, err)
		}
		t.Skipf("the host has no %s: %v", path, err)
	}
}

// Toolchain is a way of building a guest from C source.
type Toolchain string

const (
	// GCC builds with glibc: gcc -static.
	GCC Toolchain = "gcc"
	// GCCStaticPIE builds a static position-independent executable.
	GCCStaticPIE Toolchain = "gcc-static-pie"
	// Musl builds with musl: musl-gcc -static.
	Musl Toolchain = "musl-gcc"
	// GCCDynamic builds a dynamically linked PIE with glibc, whose
	// interpreter is /lib64/ld-linux-x86-64.so.2.
	GCCDynamic Toolchain = "gcc-dynamic"
	// MuslDynamic builds a dynamically linked PIE with musl, whose
	// interpreter is /lib/ld-musl-x86_64.so.1.
	MuslDynamic Toolchain = "musl-gcc-dynamic"
	// Go builds the Go program in a directory with CGO_ENABLED=0, which
	// links it statically.
	Go Toolchain = "go"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

func guestSource(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "guests", name)
}

// Guest builds testdata/guests/NAME (a file, or a directory for Go) with tc
// once per test binary and returns the executable's path.
func Guest(t testing.TB, tc Toolchain, name string) string {
	t.Helper()
	src := guestSource(name)
	return build(t, string(tc)+"/"+name, func(out string) *exec.Cmd {
		switch {
		case strings.HasSuffix(name, ".S"):
			RequireTool(t, "gcc")
			return exec.Command("gcc", "-nostdlib", "-static", "-o", out, src)
		case tc == Go:
			cmd := exec.Command(RequireTool(t, "go"), "build", "-o", out, ".")
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			return cmd
		case tc == Musl:
			return exec.Command(RequireTool(t, "musl-gcc"), "-static", "-O2", "-o", out, src)
		case tc == GCCDynamic:
			return exec.Command(RequireTool(t, "gcc"), "-pie", "-fPIE", "-O2", "-o", out, src)
		case tc == MuslDynamic:
			return exec.Command(RequireTool(t, "musl-gcc"), "-pie", "-fPIE", "-O2", "-o", out, src)
		case tc == GCCStaticPIE:
			return exec.Command(RequireTool(t, "gcc"), "-static-pie", "-fPIE", "-O2", "-o", out, src)
		}
		return exec.Command(RequireTool(t, "gcc"), "-static", "-O2", "-o", out, src)
	})
}

// GoTest builds the test binary of the Go package pkg (an import path, as
// `go test` takes it) with CGO_ENABLED=0, which links it statically, once
// per test binary and returns its path.
func GoTest(t testing.TB, pkg string) string {
	t.Helper()
	return build(t, "gotest/"+pkg, func(out string) *exec.Cmd {
		cmd := exec.Command(RequireTool(t, "go"), "test", "-c", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		return cmd
	})
}

// Main runs a package's tests and then removes the guests they built; a
// package that builds guests calls it from TestMain.
func Main(m *testing.M) int {
	closeInheritedFiles()
	code := m.Run()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
		buildDir = ""
		clear(built)
	}
	return code
}

// closeInheritedFiles marks every descriptor above stderr that the test
// binary inherited close-on-exec. Go passes such descriptors on to every
// child it starts, so a program run natively would find them open and
// number its own descriptors differently from the sandboxed run, which
// starts with stdio only.
func closeInheritedFiles() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// build runs the command that command returns for an output path, once
// per test binary for each key, and returns that path.
func build(t testing.TB, key string, command func(out string) *exec.Cmd) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[key]; ok {
		return p
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "kvmbox-guests-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	out := filepath.Join(buildDir, strings.ReplaceAll(key, "/", "_"))
	if msg, err := command(out).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", key, err, msg)
	}
	built[key] = out
	return out
}
