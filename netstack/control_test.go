package netstack

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/pipe"
)

func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, cmsgAlign(uint64(cmsgHdrLen+len(data))))
	binary.LittleEndian.PutUint64(b, uint64(cmsgHdrLen+len(data)))
	binary.LittleEndian.PutUint32(b[8:], uint32(level))
	binary.LittleEndian.PutUint32(b[12:], uint32(typ))
	copy(b[cmsgHdrLen:], data)
	return b
}

func fdBytes(fds ...int32) []byte {
	var b []byte
	for _, fd := range fds {
		b = binary.LittleEndian.AppendUint32(b, uint32(fd))
	}
	return b
}

// fakeFDs serves descriptors 0-9 as references to one file.
type fakeFDs struct {
	f     *vfs.File
	taken int
}

func (d *fakeFDs) get(fd int32) (*vfs.File, error) {
	if fd < 0 || fd > 9 {
		return nil, unix.EBADF
	}
	d.f.IncRef()
	d.taken++
	return d.f, nil
}

func allowCred(c Cred) error {
	if c.PID != 1 {
		return unix.EPERM
	}
	return nil
}

func TestParseControl(t *testing.T) {
	r, w, err := pipe.New(0)
	require.NoError(t, err)
	defer r.DecRef()
	defer w.DecRef()
	fds := &fakeFDs{f: w}
	cred := fdBytes(1, 2, 3)

	c, err := ParseControl(append(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdBytes(1, 2)), cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, cred)...), fds.get, allowCred)
	require.NoError(t, err)
	require.Len(t, c.Files, 2)
	require.Equal(t, Cred{PID: 1, UID: 2, GID: 3}, *c.Cred)
	c.Release()
	require.Equal(t, int64(1), w.Refs())

	for name, tc := range map[string]struct {
		b   []byte
		err error
	}{
		"short header":   {append(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdBytes(1))[:8], make([]byte, 8)...), unix.EINVAL},
		"past the end":   {cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdBytes(1))[:cmsgHdrLen+2], unix.EINVAL},
		"bad fd":         {cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdBytes(1, 42)), unix.EBADF},
		"short cred":     {cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, cred[:8]), unix.EINVAL},
		"forbidden cred": {cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, fdBytes(5, 2, 3)), unix.EPERM},
		"unknown type":   {cmsg(unix.SOL_SOCKET, 99, nil), unix.EINVAL},
		"too many fds":   {cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, make([]byte, 4*(MaxRights+1))), unix.EINVAL},
	} {
		_, err := ParseControl(append(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdBytes(3)), tc.b...), fds.get, allowCred)
		require.Equal(t, tc.err, err, name)
		require.Equal(t, int64(1), w.Refs(), "%s: nothing held after an error", name)
	}

	c, err = ParseControl(cmsg(unix.SOL_IP, 1, fdBytes(99)), fds.get, allowCred)
	require.NoError(t, err, "other levels are skipped")
	require.Empty(t, c.Files)
}

func TestControlWriter(t *testing.T) {
	w := ControlWriter{Buf: make([]byte, 64)}
	w.PutCred(Cred{PID: 1, UID: 2, GID: 3})
	require.Equal(t, 32, w.Len)
	require.Equal(t, 4, w.RightsRoom())
	w.PutRights([]int32{5, 6})
	require.Equal(t, 56, w.Len)
	require.False(t, w.Truncated)
	w.PutCred(Cred{})
	require.True(t, w.Truncated, "no room for another header")

	short := ControlWriter{Buf: make([]byte, 20)}
	short.PutCred(Cred{PID: 1})
	require.True(t, short.Truncated)
	require.Equal(t, 20, short.Len)
	require.Equal(t, uint64(20), binary.LittleEndian.Uint64(short.Buf))
}

// FuzzParseControl feeds arbitrary control buffers to the parser: it
// must not panic, and must hold no reference after an error or once the
// result is released.
func FuzzParseControl(f *testing.F) {
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdBytes(0, 1)))
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, fdBytes(1, 0, 0)))
	f.Add([]byte{})
	r, w, err := pipe.New(0)
	if err != nil {
		f.Fatal(err)
	}
	defer r.DecRef()
	defer w.DecRef()
	f.Fuzz(func(t *testing.T, b []byte) {
		fds := &fakeFDs{f: w}
		c, err := ParseControl(b, fds.get, allowCred)
		if err != nil {
			require.Empty(t, c.Files)
		} else {
			require.Len(t, c.Files, fds.taken)
			require.LessOrEqual(t, len(c.Files), MaxRights)
		}
		c.Release()
		require.Equal(t, int64(1), w.Refs())
	})
}
