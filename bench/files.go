package bench

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

//go:embed guests/fsbench.c
var fsbenchSource []byte

func buildFSBench(dir string) (string, error) {
	src := filepath.Join(dir, "fsbench.c")
	exe := filepath.Join(dir, "fsbench")
	if err := os.WriteFile(src, fsbenchSource, 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command("gcc", "-static", "-O2", "-pthread", "-o", exe, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: building fsbench (gcc is needed): %v\n%s", err, out)
	}
	return exe, nil
}
