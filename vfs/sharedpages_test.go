package vfs_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// fakePages is a file's pages as shared mappings would hold them: one
// buffer from offset 0.
type fakePages struct {
	mem []byte
}

func (p *fakePages) Overlay(dst []byte, off int64) {
	if off < int64(len(p.mem)) {
		copy(dst, p.mem[off:])
	}
}

func (p *fakePages) Write(src []byte, write func() (int, int64, error)) (int, error) {
	n, off, err := write()
	if off < int64(len(p.mem)) {
		copy(p.mem[off:], src[:n])
	}
	return n, err
}

func (p *fakePages) Truncate(size int64, truncate func() error) error {
	if err := truncate(); err != nil {
		return err
	}
	if size < int64(len(p.mem)) {
		clear(p.mem[size:])
	}
	return nil
}

func TestWritesCountChangesOfContents(t *testing.T) {
	v, ctx := newVFS(t)
	writeFile(t, v, ctx, "/f", "hello")
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	defer f.DecRef()
	count := func() uint64 {
		n, ok := f.Writes()
		require.True(t, ok)
		return n
	}
	before := count()
	_, err = f.PRead(ctx, make([]byte, 5), 0)
	require.NoError(t, err)
	require.Equal(t, before, count(), "a read changes nothing")
	_, err = f.PWrite(ctx, []byte("J"), 0)
	require.NoError(t, err)
	require.Equal(t, before+1, count())
	_, err = f.Write(ctx, []byte("x"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(ctx, 2))
	require.NoError(t, v.TruncateAt(ctx, nil, "/f", 1))
	require.Equal(t, before+4, count())
	require.NoError(t, openErr(v, ctx, "/f", unix.O_WRONLY|unix.O_TRUNC))
	require.Equal(t, before+5, count(), "O_TRUNC")
	other, err := v.OpenAt(ctx, nil, "/f", unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer other.DecRef()
	n, _ := other.Writes()
	require.Equal(t, before+5, n, "the count is the name's, whichever file it was opened as")
}

func TestSharedPagesSeeReadsAndWrites(t *testing.T) {
	v, ctx := newVFS(t)
	writeFile(t, v, ctx, "/f", "0123456789")
	f, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR, 0)
	require.NoError(t, err)
	defer f.DecRef()
	pages := &fakePages{mem: []byte("abcd")}
	require.True(t, f.SetSharedPages(pages))
	require.Equal(t, vfs.SharedPages(pages), f.SharedPages())

	other, err := v.OpenAt(ctx, nil, "/f", unix.O_RDWR|unix.O_APPEND, 0)
	require.NoError(t, err)
	defer other.DecRef()
	require.Equal(t, "abcd456789", readFile(t, v, ctx, "/f"), "reads see the pages, through any file of the name")
	_, err = f.PWrite(ctx, []byte("XY"), 3)
	require.NoError(t, err)
	require.Equal(t, "abcX", string(pages.mem), "writes reach the pages")
	_, err = other.Write(ctx, []byte("!"))
	require.NoError(t, err)
	require.Equal(t, "abcXY56789!", readFile(t, v, ctx, "/f"))
	require.NoError(t, f.Truncate(ctx, 2))
	require.Equal(t, "ab\x00\x00", string(pages.mem), "truncation zeroes the pages past the end")

	require.True(t, f.SetSharedPages(nil))
	require.Nil(t, f.SharedPages())
	require.Equal(t, "01", readFile(t, v, ctx, "/f"), "the file itself")
}
