// Package vfstest holds test helpers shared by the tests of vfs and its
// file systems: reading files and directories through a vfs.File, and
// decoding what getdents64 writes.
package vfstest

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kvmbox/kvmbox/vfs"
)

// Dirent is one linux_dirent64 record.
type Dirent struct {
	Name string
	Ino  uint64
}

// ParseDirents decodes the linux_dirent64 records in b, as getdents64
// writes them.
func ParseDirents(b []byte) []Dirent {
	var out []Dirent
	for len(b) > 0 {
		reclen := int(binary.LittleEndian.Uint16(b[16:]))
		name := b[19:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		out = append(out, Dirent{Name: string(name), Ino: binary.LittleEndian.Uint64(b)})
		b = b[reclen:]
	}
	return out
}

// Names returns the names of ds, in order.
func Names(ds []Dirent) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

// ReadDir lists the directory f from its offset to the end with
// getdents64 and a buffer of size bytes.
func ReadDir(t testing.TB, ctx context.Context, f *vfs.File, size int) []Dirent {
	t.Helper()
	var out []Dirent
	buf := make([]byte, size)
	for {
		n, err := f.Getdents64(ctx, buf)
		require.NoError(t, err)
		if n == 0 {
			return out
		}
		out = append(out, ParseDirents(buf[:n])...)
	}
}

// ReadAll reads f from its offset to the end through a buffer of size
// bytes.
func ReadAll(t testing.TB, ctx context.Context, f *vfs.File, size int) string {
	t.Helper()
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := f.Read(ctx, buf)
		require.NoError(t, err)
		if n == 0 {
			return string(out)
		}
		out = append(out, buf[:n]...)
	}
}
