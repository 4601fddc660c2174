package kvmbox

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/stretchr/testify/require"
)

// TestHostUserlandFollowsTheHostLayout builds the preset over a fake host
// with merged /usr: links become links, directories read-only mounts, and
// what the host lacks or what lies outside the preset is left out.
func TestHostUserlandFollowsTheHostLayout(t *testing.T) {
	host := t.TempDir()
	for _, dir := range []string{"usr/bin", "usr/lib", "etc", "root", "home/user", "var/lib", "lib32"} {
		require.NoError(t, os.MkdirAll(filepath.Join(host, dir), 0o755))
	}
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(host, "bin")))
	require.NoError(t, os.Symlink("usr/lib", filepath.Join(host, "lib")))
	require.NoError(t, os.Symlink("/usr/bin", filepath.Join(host, "sbin")))

	mounts, links, err := hostUserland(host)
	require.NoError(t, err)
	require.Equal(t, []Mount{
		{Source: filepath.Join(host, "usr"), Target: "/usr", ReadOnly: true},
		{Source: filepath.Join(host, "lib32"), Target: "/lib32", ReadOnly: true},
		{Source: filepath.Join(host, "etc"), Target: "/etc", ReadOnly: true},
	}, mounts)
	require.Equal(t, []kernel.Symlink{
		{Path: "/bin", Target: "usr/bin"},
		{Path: "/sbin", Target: "/usr/bin"},
		{Path: "/lib", Target: "usr/lib"},
	}, links)
}
