package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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

func TestGuestsRunNatively(t *testing.T) {
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello")
	require.NoError(t, os.WriteFile(hello, helloGuest(), 0o755))
	out, err := exec.Command(hello).Output()
	require.NoError(t, err)
	require.Equal(t, "hello\n", string(out))

	blocker := filepath.Join(dir, "blocker")
	require.NoError(t, os.WriteFile(blocker, blockerGuest(), 0o755))
	cmd := exec.Command(blocker)
	cmd.Stdin = strings.NewReader("x")
	out, err = cmd.Output()
	require.NoError(t, err)
	require.Equal(t, "r", string(out))
}

func TestTreePSSCountsThisProcess(t *testing.T) {
	pss, err := treePSS()
	require.NoError(t, err)
	require.Greater(t, pss, uint64(0))
}

// smallOptions keep a run of the suite to a few seconds.
var smallOptions = Options{Runs: 2, Ops: 1000, MiB: 1, Starts: 2, Sandboxes: 2, TouchMiB: 16, NetMiB: 4}

func byCell(rep *Report) map[[2]string]Measurement {
	cells := map[[2]string]Measurement{}
	for _, m := range rep.Measurements {
		cells[[2]string{m.Workload, m.Runtime}] = m
	}
	return cells
}

func TestRunNativeAndKvmbox(t *testing.T) {
	kvmtest.RequireKVM(t)
	kvmtest.RequireTool(t, "gcc")
	rep, err := Run(smallOptions)
	require.NoError(t, err)
	require.Equal(t, []string{Native, KvmboxExitPath, KvmboxExitless}, rep.Runtimes)
	require.Empty(t, rep.Unavailable)
	cells := byCell(rep)
	for _, m := range rep.Measurements {
		require.Empty(t, m.Note, "%s in %s", m.Workload, m.Runtime)
		require.Equal(t, 2, m.Runs, "%s in %s", m.Workload, m.Runtime)
		require.LessOrEqual(t, m.Min, m.Median)
	}
	for _, rt := range rep.Runtimes {
		for _, w := range []row{rowPipe, rowStart, rowGetppid, rowSpawn, rowThread, rowFutex, rowPipePong, rowSignal, rowTCP, rowConnect, rowUDP} {
			m, ok := cells[[2]string{w.name, rt}]
			require.True(t, ok, "%s in %s", w.name, rt)
			require.Greater(t, m.Median, 0.0, "%s in %s", w.name, rt)
			require.Greater(t, m.Ratio, 0.0, "%s in %s", w.name, rt)
		}
	}
	require.Greater(t, cells[[2]string{rowPSS.name, KvmboxExitless}].Median, 0.0)
	beyond := cells[[2]string{rowPSSBeyond.name, KvmboxExitless}]
	require.Empty(t, beyond.Note)
	require.Less(t, beyond.Median, cells[[2]string{rowPSS.name, KvmboxExitless}].Median, "the guest's own pages are part of the PSS")
	require.InDelta(t, 1.0, cells[[2]string{rowExits.name, KvmboxExitPath}].Median, 0.05)
}

// TestWorkloadsInGVisor runs the pipe, start, process and network
// workloads under gVisor's ptrace platform; CI installs Debian's runsc,
// elsewhere it is optional.
func TestWorkloadsInGVisor(t *testing.T) {
	kvmtest.RequireTool(t, "runsc")
	kvmtest.RequireTool(t, "gcc")
	s := &suite{opt: smallOptions, files: filepath.Join(t.TempDir(), "files")}
	require.NoError(t, s.setup(filepath.Dir(s.files), &Report{}))
	r, err := probeGVisor("ptrace", s.files, s.hello)
	require.NoError(t, err, "gVisor's ptrace platform must run here")
	rep := &Report{}
	for _, w := range workloads {
		if !slices.Contains([]row{rowPipe, rowStart, rowSpawn, rowThread, rowFutex, rowPipePong, rowSignal, rowTCP, rowConnect, rowUDP}, w.rows[0]) {
			continue
		}
		r := r
		if w.network {
			r = s.networked(r.(gvisorRunner), rep)
		}
		m := s.measure(w, r)
		require.Len(t, m, 1)
		require.Empty(t, m[0].Note)
		require.Greater(t, m[0].Median, 0.0)
	}
	// The network workloads ran with --network=sandbox, or the report
	// says why not.
	n := s.gvisorNetworked["ptrace"]
	if n.network == "sandbox" {
		require.Empty(t, rep.Unavailable)
	} else {
		require.Equal(t, "none", n.network)
		require.Len(t, rep.Unavailable, 1)
		require.Equal(t, "gVisor ptrace --network=sandbox", rep.Unavailable[0].Name)
	}
}

func TestOnlyRunsTheWorkloadsItMatches(t *testing.T) {
	kvmtest.RequireTool(t, "gcc")
	opt := smallOptions
	opt.GVisor = false
	opt.Only = regexp.MustCompile("UDP|exits per syscall")
	rep, err := Run(opt)
	require.NoError(t, err)
	var got []string
	for _, m := range rep.Measurements {
		if m.Runtime == Native {
			got = append(got, m.Workload)
		}
	}
	require.Equal(t, []string{rowGetppid.name, rowUDP.name}, got, "the getppid workload has the exits row")
}

func sampleReport() *Report {
	return &Report{
		Runtimes: []string{Native, KvmboxExitPath, KvmboxExitless, "gVisor ptrace"},
		Measurements: []Measurement{
			{Workload: "getppid loop", Runtime: Native, Runs: 3, Median: 100, Min: 90, Unit: "ns/call", Ratio: 1},
			{Workload: "getppid loop", Runtime: KvmboxExitPath, Runs: 3, Median: 28000, Min: 27000, Unit: "ns/call", Ratio: 280},
			{Workload: "getppid loop", Runtime: KvmboxExitless, Runs: 3, Median: 1500, Min: 1400, Unit: "ns/call", Ratio: 15},
			{Workload: "pipe", Runtime: Native, Runs: 3, Median: 1.2345678e6, Min: 1e6, Unit: "ns/MiB", Ratio: 1},
			{Workload: "getppid loop", Runtime: "gVisor ptrace", Runs: 3, Median: 20000, Min: 19000, Unit: "ns/call", Ratio: 200},
			{Workload: "VM exits per syscall (getppid loop)", Runtime: KvmboxExitPath, Runs: 3, Median: 1, Min: 1, Unit: "exits/call"},
			{Workload: "clock_gettime loop", Runtime: Native, Runs: 3, Median: 20, Min: 19, Unit: "ns/call", Ratio: 1},
			{Workload: "clock_gettime loop", Runtime: KvmboxExitless, Runs: 3, Median: 10, Min: 9, Unit: "ns/call", Ratio: 0.5},
			{Workload: "fork+exec+wait", Runtime: Native, Runs: 3, Median: 90000, Min: 80000, Unit: "ns/op", Ratio: 1},
			{Workload: "fork+exec+wait", Runtime: KvmboxExitPath, Unit: "ns/op", Note: "error: exit status 1"},
			{Workload: "fork+exec+wait", Runtime: "gVisor ptrace", Unit: "ns/op", Note: "error: runsc: timed out"},
		},
		Unavailable: []Unavailable{{"gVisor kvm", "timed out"}},
	}
}

func TestTableAndMarkdown(t *testing.T) {
	rep := sampleReport()
	var text, md bytes.Buffer
	require.NoError(t, rep.WriteTable(&text))
	require.NoError(t, rep.WriteMarkdown(&md))
	for _, out := range []string{text.String(), md.String()} {
		require.Contains(t, out, "28,000 (27,000) 280×")
		require.Contains(t, out, "10.0 (9.00) 0.50×")
		require.Contains(t, out, "fork+exec+wait in kvmbox exit path: error: exit status 1")
		require.Contains(t, out, "gVisor kvm: unavailable: timed out")
		require.Contains(t, out, "fork+exec+wait in gVisor ptrace: error: runsc: timed out")
	}
	require.Contains(t, md.String(), "| workload | unit | native | kvmbox exit path | kvmbox exitless | gVisor ptrace |\n|---|---|---:|---:|---:|---:|\n")
}

func TestCSVAndJSON(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	require.NoError(t, rep.WriteCSV(&b))
	records, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 1+len(rep.Measurements))
	require.Equal(t, []string{"workload", "runtime", "runs", "median", "min", "unit", "ratio_to_native", "note"}, records[0])
	require.Equal(t, []string{"getppid loop", KvmboxExitPath, "3", "28000", "27000", "ns/call", "280", ""}, records[2])
	require.Equal(t, []string{"pipe", Native, "3", "1234570", "1000000", "ns/MiB", "1", ""}, records[4])
	require.Equal(t, []string{"fork+exec+wait", KvmboxExitPath, "0", "", "", "ns/op", "", "error: exit status 1"}, records[10])

	b.Reset()
	require.NoError(t, rep.WriteJSON(&b))
	var back Report
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	require.Equal(t, *rep, back)
}

func TestSVGHasABarPerRatio(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	require.NoError(t, rep.WriteSVG(&b))
	type rect struct {
		Class string `xml:"class,attr"`
		Title string `xml:"title"`
	}
	var svg struct {
		XMLName xml.Name `xml:"svg"`
		Rects   []rect   `xml:"rect"`
		Texts   []string `xml:"text"`
	}
	require.NoError(t, xml.Unmarshal(b.Bytes(), &svg))
	var bars []string
	for _, r := range svg.Rects {
		if r.Class == "bar" {
			bars = append(bars, r.Title)
		}
	}
	require.Equal(t, []string{
		"getppid loop, kvmbox exit path: 280×",
		"getppid loop, kvmbox exitless: 15.0×",
		"getppid loop, gVisor ptrace: 200×",
		"clock_gettime loop, kvmbox exitless: 0.50×",
	}, bars)
	require.Contains(t, svg.Texts, "getppid loop")
	require.Contains(t, svg.Texts, "gVisor ptrace")
}

// BenchmarkSandboxTCPThroughput sends b.N MiB through one TCP connection
// on the loopback of an exitless sandbox (the netbench tcp workload), for
// profiling the path with -cpuprofile.
func BenchmarkSandboxTCPThroughput(b *testing.B) {
	kvmtest.RequireKVM(b)
	kvmtest.RequireTool(b, "gcc")
	exe, err := buildC(b.TempDir(), "netbench", netbenchSource)
	require.NoError(b, err)
	b.ResetTimer()
	out, _, err := run(kvmboxRunner{files: b.TempDir()}, exe, "tcp", strconv.Itoa(b.N))
	require.NoError(b, err)
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(b, err)
	b.SetBytes(1 << 20)
	b.ReportMetric(ns, "guest-ns/MiB")
}
