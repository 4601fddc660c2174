package kernel

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSetLimitRules(t *testing.T) {
	tg := newTestThreadGroup()
	require.ErrorIs(t, tg.SetLimit(unix.RLIMIT_CORE, unix.Rlimit{Cur: 2, Max: 1}), unix.EINVAL)
	require.ErrorIs(t, tg.SetLimit(len(tg.limits), unix.Rlimit{}), unix.EINVAL)
	require.ErrorIs(t, tg.SetLimit(unix.RLIMIT_NOFILE, unix.Rlimit{Cur: 1, Max: defaultNrOpen + 1}), unix.EPERM)

	require.NoError(t, tg.SetLimit(unix.RLIMIT_FSIZE, unix.Rlimit{Cur: 100, Max: 200}))
	require.Equal(t, uint64(100), tg.FileSizeLimit())
	require.NoError(t, tg.SetLimit(unix.RLIMIT_FSIZE, unix.Rlimit{Cur: 100, Max: 300}), "root may raise a hard limit")

	tg.fs.creds = &Creds{UID: 1000, EUID: 1000}
	require.NoError(t, tg.SetLimit(unix.RLIMIT_FSIZE, unix.Rlimit{Cur: 150, Max: 250}))
	require.ErrorIs(t, tg.SetLimit(unix.RLIMIT_FSIZE, unix.Rlimit{Cur: 150, Max: 300}), unix.EPERM,
		"raising a hard limit takes CAP_SYS_RESOURCE")
	l, ok := tg.Limit(unix.RLIMIT_FSIZE)
	require.True(t, ok)
	require.Equal(t, unix.Rlimit{Cur: 150, Max: 250}, l)
}

func TestStackSizes(t *testing.T) {
	const mem = 1 << 30
	size, gap := stackSizes(32<<20, mem)
	require.Equal(t, uint64(32<<20), size)
	require.Equal(t, uint64(32<<20), gap)
	size, gap = stackSizes(unix.RLIM_INFINITY, mem)
	require.Equal(t, uint64(maxStack), size, "the mapped stack is bounded")
	require.Equal(t, uint64(unix.RLIM_INFINITY), gap)
	size, _ = stackSizes(4096, mem)
	require.Equal(t, uint64(minStack), size)
	size, _ = stackSizes(32<<20, 16<<20)
	require.Equal(t, uint64(4<<20), size, "at most a quarter of the memory")
}
