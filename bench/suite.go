package bench

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kvmbox/kvmbox"
)

// Options sizes a run of the suite.
type Options struct {
	// Runs is how many times each workload runs in each runtime.
	Runs int
	// Ops is the number of calls a run of the getppid loop makes; the
	// clock and open loops make 20× and 1/5 of it, the futex, pipe
	// ping-pong and signal loops 1/50.
	Ops int
	// MiB is how much a run sends through the pipe and reads from the file.
	MiB int
	// Starts is how many programs a run of the start and fork+exec
	// workloads starts; the thread workload creates 5× as many threads.
	Starts int
	// Sandboxes is how many programs the memory workload holds running.
	Sandboxes int
	// TouchMiB is how much fresh memory the touch workload writes to.
	TouchMiB int
	// NetMiB is how much the TCP throughput workload sends through one
	// connection.
	NetMiB int
	// Only, when set, runs just the workloads one of whose row names it
	// matches.
	Only *regexp.Regexp
	// GVisor runs the workloads in gVisor too, on each platform that works,
	// when runsc is on PATH.
	GVisor bool
	// Log, when set, receives progress lines.
	Log io.Writer
}

// DefaultOptions are the sizes examples/bench uses.
var DefaultOptions = Options{Runs: 5, Ops: 50000, MiB: 64, Starts: 20, Sandboxes: 8, TouchMiB: 1024, NetMiB: 1024, GVisor: true}

// Measurement is one workload in one runtime over Runs runs.
type Measurement struct {
	Workload string  `json:"workload"`
	Runtime  string  `json:"runtime"`
	Runs     int     `json:"runs"`
	Median   float64 `json:"median"`
	Min      float64 `json:"min"`
	Unit     string  `json:"unit"`
	// Ratio is Median over the native median; 0 where there is none.
	Ratio float64 `json:"ratio_to_native,omitempty"`
	// Note says why there is no value: the error the workload failed with.
	Note string `json:"note,omitempty"`
}

// Unavailable is a runtime or workload that was left out, and why.
type Unavailable struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Report is the result of one run of the suite.
type Report struct {
	// Runtimes are the columns, native first.
	Runtimes     []string      `json:"runtimes"`
	Measurements []Measurement `json:"measurements"`
	Unavailable  []Unavailable `json:"unavailable,omitempty"`
}

// row is one line of the report.
type row struct{ name, unit string }

var (
	rowGetppid    = row{"getppid loop", "ns/call"}
	rowExits      = row{"VM exits per syscall (getppid loop)", "exits/call"}
	rowRawExit    = row{"raw VM exit (guest out loop)", "ns/exit"}
	rowClock      = row{"clock_gettime loop", "ns/call"}
	rowTouch      = row{"touch fresh memory (1 GiB by default)", "ns/page"}
	rowTouchExits = row{"VM exits of the touch program, in all", "exits"}
	rowPipe       = row{"1 MiB through a pipe", "ns/MiB"}
	rowTCP        = row{"TCP throughput on loopback, one connection (1 GiB by default)", "ns/MiB"}
	rowConnect    = row{"TCP connect+accept+close on loopback", "ns/connection"}
	rowUDP        = row{"UDP round trip of 64 bytes on loopback", "ns/round trip"}
	rowRead       = row{"file read, host directory", "ns/MiB"}
	rowWrite      = row{"file write, host directory", "ns/MiB"}
	rowMemRead    = row{"file read, tmpfs", "ns/MiB"}
	rowMemWrite   = row{"file write, tmpfs", "ns/MiB"}
	rowDents      = row{"getdents64 of 10,000 entries, tmpfs", "ns/entry"}
	rowOpen       = row{"open+fstat+close, host directory", "ns/op"}
	rowSpawn      = row{"fork+exec+wait of a static hello", "ns/cycle"}
	rowThread     = row{"thread create+join", "ns/pair"}
	rowFutex      = row{"futex ping-pong between two threads", "ns/round trip"}
	rowPipePong   = row{"pipe ping-pong between two processes", "ns/round trip"}
	rowSignal     = row{"signal to self, handled (tgkill+rt_sigreturn)", "ns/signal"}
	rowStart      = row{"start+hello+exit of a static program", "µs/start"}
	rowPSS        = row{"host memory per running program (PSS)", "KiB"}
	rowPSSBeyond  = row{"host memory per running program beyond its guest pages", "KiB"}
)

// support says whether a runtime runs a workload.
type support int

const (
	runs          support = iota
	notApplicable         // no cell at all
)

// workload is measured once per run; run returns one value per row, NaN
// for a row without a value in that runtime.
type workload struct {
	rows   []row
	in     func(r runner) support
	run    func(s *suite, r runner) ([]float64, error)
	needCC bool
	// network workloads run in gVisor with --network=sandbox where it
	// works.
	network bool
}

func everywhere(runner) support { return runs }

// cWorkload runs one mode, op, of a C guest, which prints one number.
func cWorkload(rw row, exe func(s *suite) string, op string, arg func(s *suite, r runner) []string) workload {
	return workload{rows: []row{rw}, in: everywhere, needCC: true, run: func(s *suite, r runner) ([]float64, error) {
		out, _, err := run(r, exe(s), append([]string{op}, arg(s, r)...)...)
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		return []float64{v}, err
	}}
}

func fsbench(rw row, op string, arg func(s *suite, r runner) []string) workload {
	return cWorkload(rw, func(s *suite) string { return s.fsbench }, op, arg)
}

func procbench(rw row, op string, n func(s *suite) int) workload {
	return cWorkload(rw, func(s *suite) string { return s.procbench }, op, func(s *suite, _ runner) []string {
		return []string{strconv.Itoa(n(s))}
	})
}

func netbench(rw row, op string, n func(s *suite) int) workload {
	w := cWorkload(rw, func(s *suite) string { return s.netbench }, op, func(s *suite, _ runner) []string {
		return []string{strconv.Itoa(n(s))}
	})
	w.network = true
	return w
}

func inFiles(n func(s *suite) int) func(s *suite, r runner) []string {
	return func(s *suite, r runner) []string { return []string{r.filesDir(), strconv.Itoa(n(s))} }
}

// inMem gives the program a fresh directory in the runtime's in-memory
// file system, and n.
func inMem(n func(s *suite) int) func(s *suite, r runner) []string {
	return func(s *suite, r runner) []string {
		s.memRuns++
		return []string{fmt.Sprintf("%s/run-%d", r.memDir(), s.memRuns), strconv.Itoa(n(s))}
	}
}

var workloads = []workload{
	{rows: []row{rowGetppid, rowExits}, in: everywhere, run: func(s *suite, r runner) ([]float64, error) {
		ns, exits, err := getppid(r, s.getppid, s.opt.Ops)
		return []float64{ns, exits}, err
	}},
	{rows: []row{rowRawExit}, in: func(r runner) support {
		if r.name() == KvmboxExitPath {
			return runs
		}
		return notApplicable
	}, run: func(s *suite, _ runner) ([]float64, error) {
		res, err := RawExit(s.opt.Ops)
		return []float64{res.NsPerOp}, err
	}},
	fsbench(rowClock, "clock", inFiles(func(s *suite) int { return s.opt.Ops * 20 })),
	fsbench(rowPipe, "pipe", inFiles(func(s *suite) int { return s.opt.MiB })),
	fsbench(rowRead, "read", func(_ *suite, r runner) []string { return []string{r.filesDir()} }),
	fsbench(rowWrite, "write", inFiles(func(s *suite) int { return s.opt.MiB })),
	fsbench(rowMemWrite, "write", inMem(func(s *suite) int { return s.opt.MiB })),
	fsbench(rowMemRead, "rwback", inMem(func(s *suite) int { return s.opt.MiB })),
	fsbench(rowDents, "dents", inMem(func(*suite) int { return 10000 })),
	fsbench(rowOpen, "open", inFiles(func(s *suite) int { return s.opt.Ops / 5 })),
	// The spawned hello is the start workload's, in the files directory.
	cWorkload(rowSpawn, func(s *suite) string { return s.procbench }, "spawn", func(s *suite, r runner) []string {
		return []string{path.Join(r.filesDir(), filepath.Base(s.hello)), strconv.Itoa(s.opt.Starts)}
	}),
	procbench(rowThread, "thread", func(s *suite) int { return s.opt.Starts * 5 }),
	procbench(rowFutex, "futex", pingPongs),
	procbench(rowPipePong, "pipe", pingPongs),
	procbench(rowSignal, "signal", pingPongs),
	netbench(rowTCP, "tcp", func(s *suite) int { return s.opt.NetMiB }),
	netbench(rowConnect, "connect", pingPongs),
	netbench(rowUDP, "udp", pingPongs),
	{rows: []row{rowTouch, rowTouchExits}, in: everywhere, needCC: true, run: (*suite).touch},
	{rows: []row{rowStart}, in: everywhere, run: (*suite).start},
	{rows: []row{rowPSS, rowPSSBeyond}, in: everywhere, run: (*suite).memory},
	publishedHTTPWorkload,
}

// pingPongs sizes the futex, pipe, signal, connect and UDP loops: each
// iteration costs a few VM exits in kvmbox.
func pingPongs(s *suite) int { return max(s.opt.Ops/50, 1) }

type suite struct {
	opt                          Options
	files                        string
	getppid, hello, blocker      string
	fsbench, procbench, netbench string
	// memRuns numbers the directories the in-memory workloads write in.
	memRuns int
	// gvisorNetworked holds, per gVisor platform, the runner of the
	// network workloads.
	gvisorNetworked map[string]gvisorRunner
}

func (s *suite) logf(format string, args ...any) {
	if s.opt.Log != nil {
		fmt.Fprintf(s.opt.Log, format+"\n", args...)
	}
}

// Run runs every workload opt.Runs times in each runtime available here:
// native, kvmbox (exit path and exitless) when /dev/kvm works, and gVisor
// on each platform that works when opt.GVisor is set and runsc is on PATH.
// A runtime, or the C workloads without gcc, that cannot run is listed in
// Report.Unavailable; a workload that fails in a runtime gets a Note.
func Run(opt Options) (*Report, error) {
	if opt.Runs < 1 || opt.Ops < 5 || opt.MiB < 1 || opt.Starts < 1 || opt.Sandboxes < 1 || opt.NetMiB < 1 {
		return nil, fmt.Errorf("bench: options out of range: %+v", opt)
	}
	work, err := os.MkdirTemp("", "kvmbox-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	s := &suite{opt: opt, files: filepath.Join(work, "files")}
	rep := &Report{}
	if err := s.setup(work, rep); err != nil {
		return nil, err
	}
	shm, err := os.MkdirTemp("/dev/shm", "kvmbox-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(shm)
	runners := []runner{nativeRunner{files: s.files, shm: shm}}
	if err := kvmbox.Available(); err != nil {
		rep.Unavailable = append(rep.Unavailable, Unavailable{"kvmbox", err.Error()})
	} else {
		runners = append(runners, kvmboxRunner{exitPath: true, files: s.files}, kvmboxRunner{files: s.files})
	}
	if opt.GVisor {
		g, unavailable := gvisorRunners(s.files, s.hello)
		runners = append(runners, g...)
		rep.Unavailable = append(rep.Unavailable, unavailable...)
	}
	for _, r := range runners {
		rep.Runtimes = append(rep.Runtimes, r.name())
	}
	for _, w := range workloads {
		if w.needCC && s.fsbench == "" || !opt.selects(w) {
			continue
		}
		for _, r := range runners {
			if g, ok := r.(gvisorRunner); ok && w.network {
				r = s.networked(g, rep)
			}
			rep.Measurements = append(rep.Measurements, s.measure(w, r)...)
		}
	}
	rep.setRatios()
	return rep, nil
}

func (s *suite) setup(work string, rep *Report) error {
	if err := os.Mkdir(s.files, 0o755); err != nil {
		return err
	}
	exe, err := syscallLoop(sysGetppid, uint32(s.opt.Ops))
	if err != nil {
		return err
	}
	// hello is in the files directory because the fork+exec workload
	// execs it inside the runtime, where only that directory is visible.
	guests := []struct {
		path      *string
		dir, name string
		code      []byte
	}{
		{&s.getppid, work, "getppid-loop", exe},
		{&s.hello, s.files, "hello", helloGuest()},
		{&s.blocker, work, "blocker", blockerGuest()},
	}
	for _, g := range guests {
		*g.path = filepath.Join(g.dir, g.name)
		if err := os.WriteFile(*g.path, g.code, 0o755); err != nil {
			return err
		}
	}
	s.fsbench, err = buildC(work, "fsbench", fsbenchSource)
	if err == nil {
		s.procbench, err = buildC(work, "procbench", procbenchSource)
	}
	if err == nil {
		s.netbench, err = buildC(work, "netbench", netbenchSource)
	}
	if err != nil {
		rep.Unavailable = append(rep.Unavailable, Unavailable{"C workloads (fsbench, procbench, netbench)", err.Error()})
		s.fsbench, s.procbench, s.netbench = "", "", ""
	}
	return os.WriteFile(filepath.Join(s.files, "data"), bytes.Repeat([]byte{'x'}, s.opt.MiB<<20), 0o644)
}

// networked returns g for the network workloads: with --network=sandbox
// if it works on g's platform, which is tried once; otherwise as it is,
// and the report says why.
func (s *suite) networked(g gvisorRunner, rep *Report) runner {
	if n, ok := s.gvisorNetworked[g.platform]; ok {
		return n
	}
	n, err := withSandboxNetwork(g, s.hello)
	if err != nil {
		rep.Unavailable = append(rep.Unavailable, Unavailable{g.name() + " --network=sandbox",
			err.Error() + "; the network workloads ran with --network=none, whose loopback is the same"})
	}
	if s.gvisorNetworked == nil {
		s.gvisorNetworked = map[string]gvisorRunner{}
	}
	s.gvisorNetworked[g.platform] = n
	return n
}

// selects says whether opt.Only lets w run.
func (opt Options) selects(w workload) bool {
	if opt.Only == nil {
		return true
	}
	return slices.ContainsFunc(w.rows, func(r row) bool { return opt.Only.MatchString(r.name) })
}

// measure runs w opt.Runs times in r and summarises each of its rows.
func (s *suite) measure(w workload, r runner) []Measurement {
	var out []Measurement
	if w.in(r) == notApplicable {
		return nil
	}
	s.logf("%s: %s", r.name(), w.rows[0].name)
	samples := make([][]float64, len(w.rows))
	for range s.opt.Runs {
		v, err := w.run(s, r)
		if err != nil {
			s.logf("  %v", err)
			for _, row := range w.rows {
				out = append(out, Measurement{Workload: row.name, Runtime: r.name(), Unit: row.unit, Note: "error: " + err.Error()})
			}
			return out
		}
		for i := range w.rows {
			if !math.IsNaN(v[i]) {
				samples[i] = append(samples[i], v[i])
			}
		}
	}
	for i, row := range w.rows {
		if len(samples[i]) == 0 {
			continue
		}
		slices.Sort(samples[i])
		out = append(out, Measurement{Workload: row.name, Runtime: r.name(), Unit: row.unit,
			Runs: len(samples[i]), Median: median(samples[i]), Min: samples[i][0]})
	}
	return out
}

// median of sorted values.
func median(v []float64) float64 {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func (rep *Report) setRatios() {
	native := map[string]float64{}
	for _, m := range rep.Measurements {
		if m.Runtime == Native && m.Runs > 0 {
			native[m.Workload] = m.Median
		}
	}
	for i := range rep.Measurements {
		m := &rep.Measurements[i]
		if n := native[m.Workload]; n > 0 && m.Runs > 0 {
			m.Ratio = m.Median / n
		}
	}
}

// start times Starts programs that write "hello\n" and exit, one after
// another, each seen from the host: natively fork+exec+wait, in kvmbox a
// sandbox's New, Command, Wait and Close, in gVisor `runsc do`.
func (s *suite) start(r runner) ([]float64, error) {
	t := time.Now()
	for range s.opt.Starts {
		out, _, err := run(r, s.hello)
		if err != nil {
			return nil, err
		}
		if string(out) != "hello\n" {
			return nil, fmt.Errorf("bench: hello wrote %q", out)
		}
	}
	return []float64{float64(time.Since(t).Microseconds()) / float64(s.opt.Starts)}, nil
}

// touch maps TouchMiB of memory and writes a byte to each page, and counts
// the VM exits the whole program took in kvmbox: with eagerly built page
// tables a well-behaved program takes no page-fault exits.
func (s *suite) touch(r runner) ([]float64, error) {
	mib := s.opt.TouchMiB
	if kr, ok := r.(kvmboxRunner); ok {
		kr.memory = uint64(mib+256) << 20
		r = kr
	}
	out, p, err := run(r, s.fsbench, "touch", r.filesDir(), strconv.Itoa(mib))
	if err != nil {
		return nil, err
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	exits := math.NaN()
	if sp, ok := p.(*sandboxProcess); ok {
		exits = float64(sp.stats.VMExits)
	}
	return []float64{ns, exits}, err
}
