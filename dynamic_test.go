package kvmbox_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// dynamicSandbox makes the host's programs and libraries visible
// read-only, as dynamically linked programs need them, and dirs at their
// own paths.
func dynamicSandbox(t *testing.T, dirs ...string) *kvmbox.Sandbox {
	t.Helper()
	var mounts []kvmbox.Mount
	for _, dir := range append([]string{"/lib", "/lib64", "/usr", "/bin"}, dirs...) {
		if _, err := os.Stat(dir); err == nil {
			mounts = append(mounts, kvmbox.Mount{Source: dir, Target: dir, ReadOnly: true})
		}
	}
	return newSandbox(t, kvmbox.Config{Mounts: mounts})
}

var dynamicLibcs = []kvmtest.Toolchain{kvmtest.GCCDynamic, kvmtest.MuslDynamic}

// TestDynamicProgramsMatchLinux runs dynamically linked glibc and musl
// programs: one that loads libm with dlopen, runs itself again under
// personality(ADDR_NO_RANDOMIZE) and executes programs whose interpreter
// is missing, too short or not ELF; and basics.c.
func TestDynamicProgramsMatchLinux(t *testing.T) {
	sb := dynamicSandbox(t)
	for _, tc := range dynamicLibcs {
		t.Run(string(tc), func(t *testing.T) {
			path := kvmtest.Guest(t, tc, "dynamic.c")
			requireMatchesLinux(t, sb, invocation{Path: path}, 60*time.Second)
			basics := kvmtest.Guest(t, tc, "basics.c")
			requireMatchesLinux(t, sb, invocation{Path: basics, Args: []string{"5", "two words"}, Stdin: "first line\nsecond\n"}, 60*time.Second)
		})
	}
}

// TestExecBetweenStaticAndDynamic executes a dynamically linked program
// from a static one and the reverse.
func TestExecBetweenStaticAndDynamic(t *testing.T) {
	for _, pair := range [][2]kvmtest.Toolchain{{kvmtest.GCC, kvmtest.GCCDynamic}, {kvmtest.Musl, kvmtest.MuslDynamic}} {
		t.Run(string(pair[1]), func(t *testing.T) {
			static := kvmtest.Guest(t, pair[0], "dynamic.c")
			dynamic := kvmtest.Guest(t, pair[1], "dynamic.c")
			sb := dynamicSandbox(t, filepath.Dir(static), filepath.Dir(dynamic))
			for _, inv := range []invocation{
				{Path: static, Args: []string{"exec", dynamic, "hello"}},
				{Path: dynamic, Args: []string{"exec", static, "hello"}},
				{Path: static, Args: []string{"exec", dynamic}},
			} {
				requireMatchesLinux(t, sb, inv, 60*time.Second)
			}
		})
	}
}

// TestHostDynamicProgramsMatchLinux runs the host's own coreutils, and
// glibc's ld.so as the program.
func TestHostDynamicProgramsMatchLinux(t *testing.T) {
	const ldso = "/lib64/ld-linux-x86-64.so.2"
	for _, path := range []string{"/bin/true", "/bin/echo", ldso} {
		kvmtest.RequireFile(t, path)
	}
	sb := dynamicSandbox(t)
	for _, inv := range []invocation{
		{Path: "/bin/true"},
		{Path: "/bin/echo", Args: []string{"hello"}},
		{Path: ldso, Args: []string{"/bin/echo", "hi"}},
	} {
		requireMatchesLinux(t, sb, inv, 60*time.Second)
	}
}

// TestMissingInterpreterIsExplained starts a dynamically linked program in
// a sandbox that does not show the host's libraries.
func TestMissingInterpreterIsExplained(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	_, err := sb.Command(context.Background(), "/bin/true").Start()
	require.ErrorContains(t, err, "/bin/true is dynamically linked and its interpreter /lib64/ld-linux-x86-64.so.2 is not visible inside the sandbox")
	require.ErrorContains(t, err, "(Config.HostUserland; sandbox-exec --userland)")
	script := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(script, []byte("echo hi\n"), 0o755))
	_, err = sb.Command(context.Background(), script).Start()
	require.ErrorContains(t, err, "not an ELF executable")
	_, err = sb.Command(context.Background(), "/etc/passwd").Start()
	require.ErrorContains(t, err, "permission denied", "execve needs an execute bit")
}
