package bench

import (
	"path/filepath"
	"testing"

	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestPublishedHTTPWorkload runs wrk against the page server natively
// and through a published port of each kvmbox runtime.
func TestPublishedHTTPWorkload(t *testing.T) {
	kvmtest.RequireKVM(t)
	kvmtest.RequireTool(t, "gcc")
	kvmtest.RequireTool(t, "wrk")
	s := &suite{files: filepath.Join(t.TempDir(), "files")}
	for _, r := range []runner{nativeRunner{}, kvmboxRunner{exitPath: true}, kvmboxRunner{}} {
		require.Equal(t, runs, publishedHTTPWorkload.in(r))
		v, err := s.publishedHTTP(r)
		require.NoError(t, err, r.name())
		require.Len(t, v, 1)
		require.Greater(t, v[0], 0.0, r.name())
		t.Logf("%s: %.0f requests/s", r.name(), 1e6/v[0])
	}
	require.Equal(t, notApplicable, publishedHTTPWorkload.in(gvisorRunner{}))
}
