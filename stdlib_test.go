package kvmbox_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// stdlibTests reads testdata/stdlib-tests.txt: the standard-library
// packages whose tests must pass in the sandbox, with the tests each one
// leaves out (a -test.skip pattern). Other tests skip themselves where the
// sandbox lacks what they use: sockets, mount(2), /proc/sys. All run in
// short mode (-test.short), as they do on builders short of time.
func stdlibTests(t *testing.T) []struct{ pkg, skip string } {
	data, err := os.ReadFile(filepath.Join("testdata", "stdlib-tests.txt"))
	require.NoError(t, err)
	var tests []struct{ pkg, skip string }
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pkg, skip, _ := strings.Cut(line, " ")
		tests = append(tests, struct{ pkg, skip string }{pkg, skip})
	}
	return tests
}

// slowUnderEmulation are the packages of stdlib-tests.txt that take 10
// of the 16 minutes TestStdlibTestsPass takes under kvm-in-qemu (os
// nearly 5, net/http 3, time 2). The SVM path they would exercise there
// is the one the others exercise; they run wherever /dev/kvm is the
// machine's own.
var slowUnderEmulation = map[string]bool{"os": true, "net/http": true, "time": true}

// TestStdlibTestsPass runs Go standard-library test binaries, built with
// CGO_ENABLED=0 go test -c, in the sandbox from the package's source
// directory, as go test does, and requires them to pass.
func TestStdlibTestsPass(t *testing.T) {
	kvmtest.RequireKVM(t)
	goTool := kvmtest.RequireTool(t, "go")
	goroot, err := exec.Command(goTool, "env", "GOROOT").Output()
	require.NoError(t, err)
	gorootDir := strings.TrimSpace(string(goroot))
	bin, etc := stdlibFixture(t)
	for _, c := range stdlibTests(t) {
		if kvmtest.Emulated() && slowUnderEmulation[c.pkg] {
			continue
		}
		t.Run(c.pkg, func(t *testing.T) {
			test := kvmtest.GoTest(t, c.pkg)
			// The root is the sandbox's empty one: GOROOT holds the
			// sources and testdata the tests read; busybox is the shell
			// and the commands they run (at /bin and /usr/bin, where they
			// look); /etc has the files os's tests stat.
			sb := newSandbox(t, kvmbox.Config{Mounts: []kvmbox.Mount{
				{Source: gorootDir, Target: gorootDir, ReadOnly: true},
				{Source: bin, Target: "/bin", ReadOnly: true},
				{Source: bin, Target: "/usr/bin", ReadOnly: true},
				{Source: etc, Target: "/etc", ReadOnly: true},
			}})
			ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(4*time.Minute))
			defer cancel()
			// A -test.run pattern also turns off os/exec's check that every
			// helper command ran, which the excluded tests' helpers would fail.
			args := []string{"-test.short", "-test.timeout=" + kvmtest.Slowed(3*time.Minute).String(), "-test.run=."}
			if c.skip != "" {
				args = append(args, "-test.skip="+c.skip)
			}
			cmd := sb.Command(ctx, test, args...)
			cmd.Dir = filepath.Join(gorootDir, "src", c.pkg)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "GOROOT=" + gorootDir}
			var out lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			p, err := cmd.Start()
			require.NoError(t, err)
			state := p.Wait()
			t.Logf("%s in the sandbox: %v", c.pkg, time.Since(start).Round(time.Millisecond))
			output := out.String()
			require.True(t, state.Success(), "%s: %v\n%s", c.pkg, state, output)
			lines := strings.Split(strings.TrimSpace(output), "\n")
			require.Equal(t, "PASS", lines[len(lines)-1], output)
		})
	}
}

// stdlibFixture makes the directories mounted at /bin and /etc: busybox
// with a link for each applet, and group, hosts and passwd.
func stdlibFixture(t *testing.T) (bin, etc string) {
	busybox := kvmtest.RequireTool(t, "busybox")
	dir := t.TempDir()
	bin, etc = filepath.Join(dir, "bin"), filepath.Join(dir, "etc")
	require.NoError(t, os.Mkdir(bin, 0o755))
	require.NoError(t, os.Mkdir(etc, 0o755))
	// A copy, since a mount cannot lead outside its directory.
	exe, err := os.ReadFile(busybox)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bin, "busybox"), exe, 0o755))
	list, err := exec.Command(busybox, "--list").Output()
	require.NoError(t, err)
	applets := strings.Fields(string(list))
	for _, applet := range applets {
		if applet != "busybox" {
			require.NoError(t, os.Symlink("busybox", filepath.Join(bin, applet)))
		}
	}
	// Debian's busybox-static has no nohup applet; os/signal's tests run
	// one. This does what they need of it: SIGHUP ignored across exec.
	if !slices.Contains(applets, "nohup") {
		require.NoError(t, os.WriteFile(filepath.Join(bin, "nohup"), []byte("#!/bin/sh\ntrap '' HUP\nexec \"$@\"\n"), 0o755))
	}
	for name, content := range map[string]string{
		"group":  "root:x:0:\n",
		"hosts":  "127.0.0.1\tlocalhost\n",
		"passwd": "root:x:0:0:root:/tmp:/bin/sh\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644))
	}
	return bin, etc
}

// lockedBuffer collects output that the guest's threads and processes may
// write at the same time.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
