package bench

import (
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Legend explains a table cell.
const Legend = "each cell: median (minimum) over the runs, and the median over native's"

// workloads returns the report's workloads, in order, with their units.
func (rep *Report) workloads() []row {
	var rows []row
	seen := map[string]bool{}
	for _, m := range rep.Measurements {
		if !seen[m.Workload] {
			seen[m.Workload] = true
			rows = append(rows, row{m.Workload, m.Unit})
		}
	}
	return rows
}

func (rep *Report) lookup(workload, runtime string) (Measurement, bool) {
	for _, m := range rep.Measurements {
		if m.Workload == workload && m.Runtime == runtime {
			return m, true
		}
	}
	return Measurement{}, false
}

// number formats v with three significant digits, or as a whole number
// with thousands separators from 100 up.
func number(v float64) string {
	switch {
	case v >= 100:
		s := strconv.FormatInt(int64(math.Round(v)), 10)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// tick formats a power of ten: 0.01, 1, 1,000.
func tick(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return number(v)
}

func cell(m Measurement, ok bool) string {
	switch {
	case !ok:
		return "-"
	case m.Note != "":
		return "error"
	}
	s := number(m.Median) + " (" + number(m.Min) + ")"
	if m.Ratio > 0 && m.Runtime != Native {
		s += " " + number(m.Ratio) + "×"
	}
	return s
}

// grid returns the table's header and rows: a workload per row, a
// runtime per column.
func (rep *Report) grid() ([]string, [][]string) {
	header := append([]string{"workload", "unit"}, rep.Runtimes...)
	var rows [][]string
	for _, w := range rep.workloads() {
		line := []string{w.name, w.unit}
		for _, rt := range rep.Runtimes {
			line = append(line, cell(rep.lookup(w.name, rt)))
		}
		rows = append(rows, line)
	}
	return header, rows
}

// notes lists what the table leaves out: unavailable runtimes and errors.
func (rep *Report) notes() []string {
	var notes []string
	for _, u := range rep.Unavailable {
		notes = append(notes, fmt.Sprintf("%s: unavailable: %s", u.Name, u.Reason))
	}
	for _, m := range rep.Measurements {
		if strings.HasPrefix(m.Note, "error") {
			notes = append(notes, fmt.Sprintf("%s in %s: %s", m.Workload, m.Runtime, m.Note))
		}
	}
	return notes
}

// WriteTable writes the report as an aligned text table, then its notes.
func (rep *Report) WriteTable(w io.Writer) error {
	header, rows := rep.grid()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, line := range append([][]string{header}, rows...) {
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprint(w, "\n"+Legend+".\n"+strings.Join(append(rep.notes(), ""), "\n"))
	return err
}

// WriteMarkdown writes the report as a Markdown table, then its notes.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	header, rows := rep.grid()
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|---|---|")
	b.WriteString(strings.Repeat("---:|", len(header)-2) + "\n")
	for _, line := range rows {
		b.WriteString("| " + strings.Join(line, " | ") + " |\n")
	}
	for _, n := range rep.notes() {
		b.WriteString("\n- " + n)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// formatFloat formats v to six significant digits, without an exponent.
func formatFloat(v float64) string {
	rounded, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return strconv.FormatFloat(rounded, 'f', -1, 64)
}

// WriteCSV writes one record per measurement, after a header record.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"workload", "runtime", "runs", "median", "min", "unit", "ratio_to_native", "note"})
	for _, m := range rep.Measurements {
		median, min, ratio := "", "", ""
		if m.Runs > 0 {
			median, min = formatFloat(m.Median), formatFloat(m.Min)
		}
		if m.Ratio > 0 {
			ratio = formatFloat(m.Ratio)
		}
		cw.Write([]string{m.Workload, m.Runtime, strconv.Itoa(m.Runs), median, min, m.Unit, ratio, m.Note})
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the whole report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// palette colours the runtimes other than native, in order.
var palette = []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// WriteSVG draws a horizontal grouped bar chart of the median over native's
// median, on a log scale from 1×: a group per workload that has ratios, a
// bar per runtime other than native.
func (rep *Report) WriteSVG(w io.Writer) error {
	const (
		width, left, right, top, bottom = 1000, 330, 90, 70, 50
		barH, gap                       = 14, 12
	)
	var runtimes []string
	for _, rt := range rep.Runtimes {
		if rt != Native {
			runtimes = append(runtimes, rt)
		}
	}
	type group struct {
		name   string
		ratios map[string]float64
	}
	var groups []group
	lo, hi := 0.0, 1.0 // log10 bounds
	for _, wl := range rep.workloads() {
		g := group{wl.name, map[string]float64{}}
		for _, rt := range runtimes {
			if m, ok := rep.lookup(wl.name, rt); ok && m.Ratio > 0 {
				g.ratios[rt] = m.Ratio
				lo, hi = min(lo, math.Floor(math.Log10(m.Ratio))), max(hi, math.Ceil(math.Log10(m.Ratio)))
			}
		}
		if len(g.ratios) > 0 {
			groups = append(groups, g)
		}
	}
	plotW := float64(width - left - right)
	x := func(v float64) float64 { return left + (math.Log10(v)-lo)/(hi-lo)*plotW }
	groupH := len(runtimes)*barH + gap
	height := top + len(groups)*groupH + bottom
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, width, height, width, height)
	p(`<rect width="%d" height="%d" fill="white"/>`, width, height)
	p(`<text x="%d" y="22" font-size="16" font-weight="bold">Time or memory relative to native (median; log scale, 1× = native)</text>`, left)
	lx := float64(left)
	for i, rt := range runtimes {
		p(`<rect x="%.1f" y="34" width="12" height="12" fill="%s"/>`, lx, palette[i%len(palette)])
		p(`<text x="%.1f" y="45">%s</text>`, lx+16, esc(rt))
		lx += 16 + 7*float64(len(rt)) + 24
	}
	axisBottom := top + len(groups)*groupH
	for e := lo; e <= hi; e++ {
		v := math.Pow(10, e)
		stroke, sw := "#ccc", 1
		if e == 0 {
			stroke, sw = "#333", 2
		}
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%d"/>`, x(v), top-6, x(v), axisBottom, stroke, sw)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%s×</text>`, x(v), axisBottom+18, tick(v))
	}
	for gi, g := range groups {
		y0 := top + gi*groupH
		p(`<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, left-10, float64(y0)+float64(len(runtimes)*barH)/2, esc(g.name))
		for i, rt := range runtimes {
			y := y0 + i*barH
			v, ok := g.ratios[rt]
			if !ok {
				if m, _ := rep.lookup(g.name, rt); m.Note != "" {
					p(`<text x="%.1f" y="%d" font-size="10" fill="#777">%s: %s</text>`, x(1)+4, y+barH-4, esc(rt), esc(m.Note))
				}
				continue
			}
			x0, x1 := x(1), x(v)
			p(`<rect class="bar" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s, %s: %s×</title></rect>`,
				min(x0, x1), y, max(math.Abs(x1-x0), 1), barH-2, palette[i%len(palette)], esc(g.name), esc(rt), number(v))
			anchor, tx := "start", max(x0, x1)+4
			if v < 1 {
				anchor, tx = "end", min(x0, x1)-4
			}
			p(`<text x="%.1f" y="%d" font-size="10" text-anchor="%s">%s×</text>`, tx, y+barH-4, anchor, number(v))
		}
	}
	p(`<text x="%.1f" y="%d" text-anchor="middle">× native (log scale)</text>`, float64(left)+plotW/2, axisBottom+38)
	p(`</svg>`)
	_, err := io.WriteString(w, b.String())
	return err
}
