package kvmbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// markCounter counts the bytes of each kind a guest writes.
type markCounter struct {
	mu     sync.Mutex
	counts map[byte]int
}

func (m *markCounter) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range b {
		m.counts[c]++
	}
	return len(b), nil
}

func (m *markCounter) snapshot() map[byte]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[byte]int{}
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

// TestPauseStopsEveryProcessUntilResume pauses a sandbox whose parent and
// child spin and write: after Pause each finishes at most the write it was
// in, then nothing moves however long the pause lasts; after Resume both
// write again.
func TestPauseStopsEveryProcessUntilResume(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	guest := kvmtest.Guest(t, kvmtest.GCC, "pause.c")
	marks := &markCounter{counts: map[byte]int{}}
	cmd := sb.Command(context.Background(), guest)
	cmd.Stdout = marks
	_, err := cmd.Start()
	require.NoError(t, err)
	bothRun := func(after map[byte]int) func() bool {
		return func() bool {
			now := marks.snapshot()
			return now['p'] > after['p'] && now['c'] > after['c']
		}
	}
	require.Eventually(t, bothRun(map[byte]int{}), time.Minute, 10*time.Millisecond)

	require.NoError(t, sb.Pause())
	require.True(t, sb.Paused())
	require.Error(t, sb.Pause(), "paused already")
	atPause := marks.snapshot()
	time.Sleep(300 * time.Millisecond)
	during := marks.snapshot()
	time.Sleep(300 * time.Millisecond)
	later := marks.snapshot()
	require.Equal(t, during, later, "nothing runs while paused")
	for _, mark := range []byte("pc") {
		require.LessOrEqual(t, later[mark]-atPause[mark], 1, "at most the write in progress finishes")
	}

	require.NoError(t, sb.Resume())
	require.False(t, sb.Paused())
	require.Error(t, sb.Resume(), "not paused")
	require.Eventually(t, bothRun(later), time.Minute, 10*time.Millisecond)
}

// TestSetMaxTasksAppliesToTheRunningSandbox lowers the task limit of a
// running sandbox: clone fails with EAGAIN past the new one.
func TestSetMaxTasksAppliesToTheRunningSandbox(t *testing.T) {
	sb := newSandbox(t, kvmbox.Config{})
	sb.SetMaxTasks(16)
	bombs := kvmtest.Guest(t, kvmtest.GCC, "bombs.c")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, _ := runSandboxed(t, sb, ctx, bombs, []string{"threads"}, "")
	require.Equal(t, "refused after 15 threads: Resource temporarily unavailable\n", got.Stdout)
	require.Equal(t, 0, sb.Stats().Tasks, "every thread has ended")
}
