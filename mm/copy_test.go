package mm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestCopyAcrossPages(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 3*PageSize, rw, fixed)
	src := bytes.Repeat([]byte("0123456789"), 600)
	n, err := as.CopyOut(area+PageSize-1000, src)
	require.NoError(t, err)
	require.Equal(t, len(src), n)

	dst := make([]byte, len(src))
	n, err = as.CopyIn(dst, area+PageSize-1000)
	require.NoError(t, err)
	require.Equal(t, len(src), n)
	require.Equal(t, src, dst)

	n, err = as.CopyIn(nil, 0)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestCopyStopsAtTheFirstBadPage(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	mustMmap(t, as, area+2*PageSize, PageSize, unix.PROT_READ, fixed)
	mustMmap(t, as, area+3*PageSize, PageSize, unix.PROT_NONE, fixed)
	mustMmap(t, as, area+5*PageSize, PageSize, unix.PROT_WRITE, fixed)

	n, err := as.CopyOut(area+2*PageSize-96, make([]byte, 200))
	require.ErrorIs(t, err, unix.EFAULT, "the third page is read-only")
	require.Equal(t, 96, n)

	n, err = as.CopyIn(make([]byte, 3*PageSize), area+PageSize)
	require.ErrorIs(t, err, unix.EFAULT, "the fourth page is PROT_NONE")
	require.Equal(t, 2*PageSize, n)

	n, err = as.CopyIn(make([]byte, 10), area+4*PageSize-5)
	require.ErrorIs(t, err, unix.EFAULT)
	require.Equal(t, 0, n)

	n, err = as.CopyIn(make([]byte, 10), area+5*PageSize)
	require.NoError(t, err, "x86 cannot make a page write-only")
	require.Equal(t, 10, n)

	for _, va := range []uint64{0, area + 6*PageSize, MaxUserTop, 1 << 63, 1<<64 - 8} {
		n, err = as.CopyIn(make([]byte, 16), va)
		require.ErrorIs(t, err, unix.EFAULT, "%#x", va)
		require.Zero(t, n)
		n, err = as.CopyOut(va, make([]byte, 16))
		require.ErrorIs(t, err, unix.EFAULT, "%#x", va)
		require.Zero(t, n)
	}
}

func TestZeroOut(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	writeString(t, as, area+PageSize-3, "abcdef")
	require.NoError(t, as.ZeroOut(area+PageSize-2, 4))
	require.Equal(t, "a\x00\x00\x00\x00f", readString(t, as, area+PageSize-3, 6))
	require.NoError(t, as.ZeroOut(area, 0))
	require.ErrorIs(t, as.ZeroOut(area+PageSize, 1<<62), unix.EFAULT)
	require.Equal(t, "a", readString(t, as, area+PageSize-3, 1), "zeroed up to the fault")
}

func TestReadString(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	writeString(t, as, area+PageSize-4, "/bin/sh\x00")

	s, err := as.ReadString(area+PageSize-4, 4096)
	require.NoError(t, err)
	require.Equal(t, "/bin/sh", s)
	s, err = as.ReadString(area+PageSize-4, 8)
	require.NoError(t, err)
	require.Equal(t, "/bin/sh", s, "the NUL fits exactly")
	_, err = as.ReadString(area+PageSize-4, 7)
	require.ErrorIs(t, err, unix.ENAMETOOLONG)
	_, err = as.ReadString(area, 0)
	require.ErrorIs(t, err, unix.ENAMETOOLONG)
	s, err = as.ReadString(area+PageSize+4, 10)
	require.NoError(t, err)
	require.Empty(t, s)

	writeString(t, as, area+PageSize, strings.Repeat("x", PageSize))
	_, err = as.ReadString(area+PageSize, 2*PageSize)
	require.ErrorIs(t, err, unix.EFAULT, "runs off the mapping before a NUL")
	_, err = as.ReadString(area+PageSize, PageSize)
	require.ErrorIs(t, err, unix.ENAMETOOLONG)
	_, err = as.ReadString(MaxUserTop-1, 10)
	require.ErrorIs(t, err, unix.EFAULT)
}
