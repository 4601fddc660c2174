package netstack

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestParseInetAddr(t *testing.T) {
	v6loop := [16]byte{15: 1}
	linkLocal := [16]byte{0: 0xfe, 1: 0x80, 15: 1}
	scoped := func(scope uint32) []byte {
		b := sin6(linkLocal, 80)
		binary.LittleEndian.PutUint32(b[24:], scope)
		return b
	}
	unspec := sin(localhost, 9)
	unspec[0] = unix.AF_UNSPEC
	anyUnspec := sin([4]byte{}, 0)
	anyUnspec[0] = unix.AF_UNSPEC
	for _, tc := range []struct {
		name   string
		family int
		typ    int
		b      []byte
		use    AddrUse
		err    error
		unspec bool
		port   uint16
	}{
		{"v4", unix.AF_INET, unix.SOCK_STREAM, sin(localhost, 80), ForBind, nil, false, 80},
		{"v4 short", unix.AF_INET, unix.SOCK_STREAM, sin(localhost, 80)[:15], ForBind, unix.EINVAL, false, 0},
		{"v4 no family", unix.AF_INET, unix.SOCK_STREAM, []byte{2}, ForConnect, unix.EINVAL, false, 0},
		{"v4 family v6", unix.AF_INET, unix.SOCK_STREAM, sin6(v6loop, 1)[:16], ForConnect, unix.EAFNOSUPPORT, false, 0},
		{"v4 bind unspec any", unix.AF_INET, unix.SOCK_STREAM, anyUnspec, ForBind, nil, false, 0},
		{"v4 bind unspec addr", unix.AF_INET, unix.SOCK_STREAM, unspec, ForBind, unix.EAFNOSUPPORT, false, 0},
		{"v4 send unspec", unix.AF_INET, unix.SOCK_DGRAM, unspec, ForSend, nil, false, 9},
		{"v4 send port 0", unix.AF_INET, unix.SOCK_DGRAM, sin(localhost, 0), ForSend, unix.EINVAL, false, 0},
		{"v6", unix.AF_INET6, unix.SOCK_STREAM, sin6(v6loop, 443), ForConnect, nil, false, 443},
		{"v6 rfc2133", unix.AF_INET6, unix.SOCK_STREAM, sin6(v6loop, 443)[:24], ForBind, nil, false, 443},
		{"v6 short", unix.AF_INET6, unix.SOCK_STREAM, sin6(v6loop, 443)[:23], ForBind, unix.EINVAL, false, 0},
		{"v6 family v4", unix.AF_INET6, unix.SOCK_STREAM, sin(localhost, 1), ForConnect, unix.EINVAL, false, 0},
		{"v6 link-local no scope", unix.AF_INET6, unix.SOCK_STREAM, scoped(0), ForBind, unix.EINVAL, false, 0},
		{"v6 link-local other scope", unix.AF_INET6, unix.SOCK_STREAM, scoped(7), ForBind, unix.ENODEV, false, 0},
		{"v6 link-local lo", unix.AF_INET6, unix.SOCK_STREAM, scoped(1), ForBind, nil, false, 80},
		{"v6 udp to v4", unix.AF_INET6, unix.SOCK_DGRAM, sin(localhost, 53), ForSend, nil, false, 53},
		{"v6 udp send unspec", unix.AF_INET6, unix.SOCK_DGRAM, unspec, ForSend, nil, true, 0},
		{"v6 udp send other family", unix.AF_INET6, unix.SOCK_DGRAM, append([]byte{9, 0}, make([]byte, 26)...), ForSend, unix.EINVAL, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, unspecified, err := ParseInetAddr(tc.family, tc.typ, tc.b, tc.use)
			require.Equal(t, tc.err, err)
			if err == nil {
				require.Equal(t, tc.unspec, unspecified)
				require.Equal(t, tc.port, a.Port)
			}
		})
	}
	// A destination of the unspecified address is loopback.
	a, _, err := ParseInetAddr(unix.AF_INET, unix.SOCK_STREAM, sin([4]byte{}, 1), ForConnect)
	require.NoError(t, err)
	require.Equal(t, sin(localhost, 1), sockaddrOf(unix.AF_INET, a))
	a, _, err = ParseInetAddr(unix.AF_INET6, unix.SOCK_DGRAM, sin([4]byte{}, 1), ForSend)
	require.NoError(t, err)
	require.True(t, isMapped(a.Addr))
	require.Equal(t, sin(localhost, 1), sockaddrOf(unix.AF_INET, a))
}

// FuzzParseInetAddr feeds socket addresses of any bytes to the parser
// for every family, type and use: it must not panic, and what it accepts
// must come back, as getsockname would show it, with the same port.
func FuzzParseInetAddr(f *testing.F) {
	f.Add(uint8(0), sin(localhost, 80))
	f.Add(uint8(1), sin6([16]byte{15: 1}, 443))
	f.Add(uint8(3), sin(localhost, 53))
	f.Add(uint8(5), []byte{0, 0})
	f.Add(uint8(7), []byte{})
	f.Fuzz(func(t *testing.T, sel uint8, b []byte) {
		family := unix.AF_INET
		if sel&1 != 0 {
			family = unix.AF_INET6
		}
		typ := unix.SOCK_STREAM
		if sel&2 != 0 {
			typ = unix.SOCK_DGRAM
		}
		use := AddrUse(sel >> 2 % 3)
		a, unspecified, err := ParseInetAddr(family, typ, b, use)
		if err != nil {
			require.IsType(t, unix.Errno(0), err)
			return
		}
		if unspecified {
			return
		}
		require.GreaterOrEqual(t, len(b), sockaddrInLen)
		sa := sockaddrOf(family, a)
		require.Equal(t, a.Port, binary.BigEndian.Uint16(b[2:]))
		require.Equal(t, a.Port, port(sa))
	})
}
