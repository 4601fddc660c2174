package bench

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

var (
	//go:embed guests/fsbench.c
	fsbenchSource []byte
	//go:embed guests/procbench.c
	procbenchSource []byte
	//go:embed guests/netbench.c
	netbenchSource []byte
)

// buildC compiles source into a static executable dir/name.
func buildC(dir, name string, source []byte) (string, error) {
	src := filepath.Join(dir, name+".c")
	exe := filepath.Join(dir, name)
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command("gcc", "-static", "-O2", "-pthread", "-o", exe, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: building %s (gcc is needed): %v\n%s", name, err, out)
	}
	return exe, nil
}
