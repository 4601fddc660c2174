package syscalls

import (
	"fmt"
	"sort"
	"strings"
)

// MarkdownTable renders the system-call table for the README: one row per
// number that has an entry, with its support level and note.
func MarkdownTable() string {
	entries := Table()
	nrs := make([]int, 0, len(entries))
	for nr := range entries {
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	var b strings.Builder
	b.WriteString("| nr | system call | support | note |\n|---:|---|---|---|\n")
	for _, nr := range nrs {
		e := entries[nr]
		fmt.Fprintf(&b, "| %d | `%s` | %s | %s |\n", nr, e.Name, e.Support, e.Note)
	}
	b.WriteString("\nEvery other number returns `ENOSYS` (reported once per number with `--debug`).\n")
	return b.String()
}
