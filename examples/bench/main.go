// Command bench runs kvmbox's benchmark suite in one run on this machine:
// a fixed set of workloads, each run several times natively, in kvmbox
// (through a VM exit per system call, and exitless) and, when runsc is on
// PATH, in gVisor on each platform that works. It prints a table of
// medians, minimums and ratios to native, and can write every measurement
// as CSV or JSON and a chart as SVG.
//
//	go run ./examples/bench [-runs 5] [-n 50000] [-mib 64] [-starts 20] [-sandboxes 8]
//	    [-touch 1024] [-netmib 1024] [-only REGEXP] [-gvisor=false] [-markdown]
//	    [-out results.csv|results.json] [-plot chart.svg]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/kvmbox/kvmbox/bench"
)

func main() {
	opt := bench.DefaultOptions
	flag.IntVar(&opt.Runs, "runs", opt.Runs, "runs of each workload in each runtime")
	flag.IntVar(&opt.Ops, "n", opt.Ops, "getppid calls per run (the clock, open, futex, pipe ping-pong and signal loops scale from it)")
	flag.IntVar(&opt.MiB, "mib", opt.MiB, "MiB per run through the pipe and read from the file")
	flag.IntVar(&opt.Starts, "starts", opt.Starts, "programs started per run of the start and fork+exec workloads (the thread workload creates 5× as many threads)")
	flag.IntVar(&opt.Sandboxes, "sandboxes", opt.Sandboxes, "programs held running by the memory workload")
	flag.IntVar(&opt.TouchMiB, "touch", opt.TouchMiB, "MiB of fresh memory the touch workload writes to")
	flag.IntVar(&opt.NetMiB, "netmib", opt.NetMiB, "MiB per run through one TCP connection")
	only := flag.String("only", "", "run only the workloads with a row whose name matches this regular expression")
	flag.BoolVar(&opt.GVisor, "gvisor", opt.GVisor, "also run in gVisor when runsc is on PATH")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
	out := flag.String("out", "", "write every measurement to this .csv or .json file")
	plot := flag.String("plot", "", "write a chart of the ratios to native to this .svg file")
	flag.Parse()
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fail(fmt.Errorf("-only: %w", err))
		}
		opt.Only = re
	}
	ext := filepath.Ext(*out)
	if *out != "" && ext != ".csv" && ext != ".json" {
		fail(fmt.Errorf("-out %s: want a .csv or .json file", *out))
	}
	if *plot != "" && filepath.Ext(*plot) != ".svg" {
		fail(fmt.Errorf("-plot %s: want an .svg file", *plot))
	}
	opt.Log = os.Stderr
	rep, err := bench.Run(opt)
	if err != nil {
		fail(err)
	}
	if *markdown {
		err = rep.WriteMarkdown(os.Stdout)
	} else {
		err = rep.WriteTable(os.Stdout)
	}
	if err != nil {
		fail(err)
	}
	if *out != "" {
		write := rep.WriteCSV
		if ext == ".json" {
			write = rep.WriteJSON
		}
		if err := writeFile(*out, write); err != nil {
			fail(err)
		}
	}
	if *plot != "" {
		if err := writeFile(*plot, rep.WriteSVG); err != nil {
			fail(err)
		}
	}
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
