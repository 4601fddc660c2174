package bench

import (
	"testing"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/arch/x86/x86asm"
)

func TestSyscallLoopGuestDecodes(t *testing.T) {
	exe, err := syscallLoop(sysGetppid, 3)
	require.NoError(t, err)
	code := exe[headerLen:]
	var text []string
	for len(code) > 0 {
		inst, err := x86asm.Decode(code, 64)
		require.NoError(t, err)
		text = append(text, x86asm.GNUSyntax(inst, 0, nil))
		code = code[inst.Len:]
	}
	require.Contains(t, text, "mov $0x3,%ebx")
	require.Contains(t, text, "mov $0x6e,%eax")
	require.Equal(t, "syscall", text[len(text)-1])
}

func TestWorkloadsRunAndAgree(t *testing.T) {
	kvmtest.RequireKVM(t)
	native, err := NativeGetppid(1000)
	require.NoError(t, err)
	require.Greater(t, native.NsPerOp, 0.0)
	sandboxed, err := SandboxGetppid(1000, true)
	require.NoError(t, err)
	require.Greater(t, sandboxed.NsPerOp, 0.0)
	require.InDelta(t, 1.0, sandboxed.ExitsPerOp, 0.05, "the exit path takes one exit per syscall")
	// Enough calls that the worker serves some even on a loaded machine.
	exitless, err := SandboxGetppid(20000, false)
	require.NoError(t, err)
	require.Greater(t, exitless.NsPerOp, 0.0)
	require.Less(t, exitless.ExitsPerOp, 1.0, "the exitless path must save exits")
	raw, err := RawExit(1000)
	require.NoError(t, err)
	require.Greater(t, raw.NsPerOp, 0.0)
}

func BenchmarkRawExit(b *testing.B) {
	kvmtest.RequireKVM(b)
	r, err := RawExit(b.N)
	require.NoError(b, err)
	b.ReportMetric(r.NsPerOp, "ns/exit")
}

func benchmarkSandboxGetppid(b *testing.B, exitPath bool) {
	kvmtest.RequireKVM(b)
	r, err := SandboxGetppid(max(b.N, 1), exitPath)
	require.NoError(b, err)
	b.ReportMetric(r.NsPerOp, "guest-ns/syscall")
	b.ReportMetric(r.ExitsPerOp, "exits/syscall")
}

func BenchmarkSandboxGetppidExitless(b *testing.B) { benchmarkSandboxGetppid(b, false) }

func BenchmarkSandboxGetppidExitPath(b *testing.B) { benchmarkSandboxGetppid(b, true) }

func BenchmarkNativeGetppid(b *testing.B) {
	r, err := NativeGetppid(max(b.N, 1))
	require.NoError(b, err)
	b.ReportMetric(r.NsPerOp, "guest-ns/syscall")
}

func TestFileWorkloadsRun(t *testing.T) {
	kvmtest.RequireKVM(t)
	kvmtest.RequireTool(t, "gcc")
	pairs, err := FileWorkloads(4, 100, 100)
	require.NoError(t, err)
	require.Len(t, pairs, 8)
	for _, p := range pairs {
		require.Greater(t, p.Native, 0.0, p.Name)
		require.Greater(t, p.Sandboxed, 0.0, p.Name)
	}
}
