package netstack

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// optBytes is an OptReader of b that fails with EFAULT past its end.
func optBytes(b []byte) OptReader {
	return func(n int) ([]byte, error) {
		if n > len(b) {
			return nil, unix.EFAULT
		}
		return b[:n], nil
	}
}

func le32(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }

func TestInetSockoptChecks(t *testing.T) {
	st := NewStack()
	defer st.Close()
	tcp := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	udp6 := newInet(t, st, unix.AF_INET6, unix.SOCK_DGRAM)
	timeval := func(sec, usec int64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(sec))
		return binary.LittleEndian.AppendUint64(b, uint64(usec))
	}
	for _, tc := range []struct {
		name       string
		s          *InetSocket
		level, opt int
		optlen     int
		val        []byte
		err        error
	}{
		{"negative length", tcp, unix.SOL_SOCKET, unix.SO_REUSEADDR, -1, le32(1), unix.EINVAL},
		{"short int", tcp, unix.SOL_SOCKET, unix.SO_REUSEADDR, 3, le32(1), unix.EINVAL},
		{"bad pointer", tcp, unix.SOL_SOCKET, unix.SO_REUSEADDR, 4, nil, unix.EFAULT},
		{"unknown option", tcp, unix.SOL_SOCKET, 9999, 4, le32(1), unix.ENOPROTOOPT},
		{"unknown level", tcp, 9999, 1, 4, le32(1), unix.ENOPROTOOPT},
		{"short linger", tcp, unix.SOL_SOCKET, unix.SO_LINGER, 7, make([]byte, 8), unix.EINVAL},
		{"short timeval", tcp, unix.SOL_SOCKET, unix.SO_RCVTIMEO, 15, timeval(1, 0), unix.EINVAL},
		{"usec out of range", tcp, unix.SOL_SOCKET, unix.SO_SNDTIMEO, 16, timeval(1, 1e6), unix.EDOM},
		{"keepidle 0", tcp, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 4, le32(0), unix.EINVAL},
		{"keepintvl too long", tcp, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 4, le32(maxKeepIntvl + 1), unix.EINVAL},
		{"keepcnt too many", tcp, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4, le32(maxKeepCnt + 1), unix.EINVAL},
		{"tcp option on udp", udp6, unix.IPPROTO_TCP, unix.TCP_NODELAY, 4, le32(1), unix.ENOPROTOOPT},
		{"ipv6 option on v4", tcp, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 4, le32(1), unix.ENOPROTOOPT},
		{"ttl 0", tcp, unix.IPPROTO_IP, unix.IP_TTL, 4, le32(0), unix.EINVAL},
		{"ttl empty", tcp, unix.IPPROTO_IP, unix.IP_TTL, 0, nil, unix.EINVAL},
		{"hops too many", udp6, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 4, le32(256), unix.EINVAL},
		{"tos byte", tcp, unix.IPPROTO_IP, unix.IP_TOS, 1, []byte{0x10}, nil},
		{"keepcnt", tcp, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4, le32(5), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.err, tc.s.SetSockopt(tc.level, tc.opt, tc.optlen, optBytes(tc.val)))
		})
	}
	v, err := tcp.GetSockopt(unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4)
	require.NoError(t, err)
	require.Equal(t, le32(5), v)
	v, err = tcp.GetSockopt(unix.IPPROTO_IP, unix.IP_TOS, 2)
	require.NoError(t, err)
	require.Equal(t, []byte{0x10}, v, "a short IP option buffer gets one byte")
	v, err = tcp.GetSockopt(unix.SOL_SOCKET, unix.SO_TYPE, 2)
	require.NoError(t, err)
	require.Equal(t, []byte{unix.SOCK_STREAM, 0}, v)
	_, err = tcp.GetSockopt(unix.SOL_SOCKET, unix.SO_TYPE, -1)
	require.Equal(t, unix.EINVAL, err)
	v, err = tcp.GetSockopt(unix.IPPROTO_TCP, unix.TCP_NODELAY, -1)
	require.NoError(t, err)
	require.Equal(t, le32(0), v, "TCP options read a negative length as an int's")
	v, err = udp6.GetSockopt(unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 4)
	require.NoError(t, err)
	require.Equal(t, le32(defaultTTL), v)
}
