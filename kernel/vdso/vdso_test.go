package vdso

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

func exportedSymbols(t *testing.T, image []byte) []string {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(image))
	require.NoError(t, err)
	syms, err := f.DynamicSymbols()
	require.NoError(t, err)
	var names []string
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			names = append(names, s.Name)
		}
	}
	sort.Strings(names)
	return names
}

func TestImageExportsTheLinuxVDSOSymbols(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(Image))
	require.NoError(t, err)
	require.Equal(t, elf.ET_DYN, f.Type)
	require.Equal(t, elf.EM_X86_64, f.Machine)
	require.Equal(t, []string{
		"__vdso_clock_getres", "__vdso_clock_gettime", "__vdso_getcpu", "__vdso_gettimeofday", "__vdso_time",
		"clock_getres", "clock_gettime", "getcpu", "gettimeofday", "time",
	}, exportedSymbols(t, Image))
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			require.Equal(t, uint64(0), p.Vaddr, "the image is mapped at its start")
			require.Equal(t, elf.PF_R|elf.PF_X, p.Flags)
		}
	}
}

// TestImageIsBuiltFromSource rebuilds the image the way gen.go does and
// checks that the checked-in one exports the same code.
func TestImageIsBuiltFromSource(t *testing.T) {
	kvmtest.RequireTool(t, "gcc")
	out := filepath.Join(t.TempDir(), "vdso.so")
	cmd := exec.Command("gcc", "-O2", "-fPIC", "-nostdlib", "-shared", "-fno-asynchronous-unwind-tables",
		"-fno-stack-protector", "-fcf-protection=none", "-Wl,-T,source/vdso.lds", "-Wl,-soname=linux-vdso.so.1",
		"-Wl,--hash-style=both", "-Wl,--build-id=none", "-o", out, "source/vdso.c")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, string(msg))
	rebuilt, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, exportedSymbols(t, Image), exportedSymbols(t, rebuilt))
	require.Equal(t, Image, rebuilt, "vdso.so is stale: run go generate ./kernel/vdso")
}

func TestTimePageExtrapolatesAndStaysMonotonic(t *testing.T) {
	page := make([]byte, 4096)
	p := NewTimePage(page, 1_000_000) // 1 GHz: one tick is one nanosecond
	p.Update(Clocks{TSC: 1000, Realtime: 5000, Monotonic: 7000, Boottime: 8000, TAI: 9000})
	require.Equal(t, uint32(2), *p.word32(offSeq), "even when stable")
	require.Equal(t, int64(500), p.elapsed(1500))
	// The host's monotonic clock lags the guest's extrapolation: keep the latter.
	p.Update(Clocks{TSC: 2000, Realtime: 5900, Monotonic: 7900, Boottime: 9100, TAI: 9900})
	require.Equal(t, int64(8000), p.last.Monotonic)
	require.Equal(t, int64(9100), p.last.Boottime)
	require.Equal(t, int64(5900), p.last.Realtime, "realtime may step back, as on Linux")
}
