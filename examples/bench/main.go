// Command bench measures, in one run on this machine, a raw VM exit, a
// getppid system call served by a kvmbox sandbox (through a VM exit, and
// exitless), the same call made natively by the same program, and file
// workloads natively and sandboxed, and prints them side by side.
//
//	go run ./examples/bench [-n 50000] [-files=false] [-mib 64]
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"text/tabwriter"

	"github.com/kvmbox/kvmbox/bench"
)

func main() {
	n := flag.Int("n", 50000, "operations per system-call workload")
	files := flag.Bool("files", true, "also run the file workloads (needs gcc)")
	mib := flag.Int("mib", 64, "MiB written and read by the file workloads")
	flag.Parse()
	native, err := bench.NativeGetppid(*n)
	check(err)
	raw, err := bench.RawExit(*n)
	check(err)
	exitPath, err := bench.SandboxGetppid(*n, true)
	check(err)
	exitless, err := bench.SandboxGetppid(*n, false)
	check(err)
	native.ExitsPerOp = math.NaN()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "workload\tns/op\tx native\tx raw exit\tVM exits/op\t")
	for _, r := range []bench.Result{native, raw, exitPath, exitless} {
		exits := "-"
		if !math.IsNaN(r.ExitsPerOp) {
			exits = fmt.Sprintf("%.2f", r.ExitsPerOp)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.1f\t%.2f\t%s\t\n", r.Name, r.NsPerOp, r.NsPerOp/native.NsPerOp, r.NsPerOp/raw.NsPerOp, exits)
	}
	w.Flush()

	if !*files {
		return
	}
	pairs, err := bench.FileWorkloads(*mib, 10000, 10000)
	check(err)
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "workload\tnative ns/op\tsandboxed ns/op\tspeed vs native\t")
	for _, p := range pairs {
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.2fx\t\n", p.Name, p.Native, p.Sandboxed, p.Native/p.Sandboxed)
	}
	w.Flush()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
