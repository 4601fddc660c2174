package netstack

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func ifreq(name string) []byte {
	r := make([]byte, SizeofIfreq)
	copy(r, name)
	return r
}

func TestIfreqIoctls(t *testing.T) {
	st := NewStack()
	defer st.Close()
	r := ifreq("lo")
	require.NoError(t, st.IfreqIoctl(unix.SIOCGIFFLAGS, r))
	require.Equal(t, uint16(unix.IFF_UP|unix.IFF_LOOPBACK|unix.IFF_RUNNING), binary.LittleEndian.Uint16(r[unix.IFNAMSIZ:]))
	require.NoError(t, st.IfreqIoctl(unix.SIOCGIFINDEX, r))
	require.Equal(t, uint32(1), binary.LittleEndian.Uint32(r[unix.IFNAMSIZ:]))
	require.NoError(t, st.IfreqIoctl(unix.SIOCGIFNETMASK, r))
	require.Equal(t, []byte{unix.AF_INET, 0, 0, 0, 255, 0, 0, 0}, r[unix.IFNAMSIZ:unix.IFNAMSIZ+8])
	require.NoError(t, st.IfreqIoctl(unix.SIOCGIFHWADDR, r))
	require.Equal(t, uint16(unix.ARPHRD_LOOPBACK), binary.LittleEndian.Uint16(r[unix.IFNAMSIZ:]))

	byIndex := make([]byte, SizeofIfreq)
	binary.LittleEndian.PutUint32(byIndex[unix.IFNAMSIZ:], 1)
	require.NoError(t, st.IfreqIoctl(unix.SIOCGIFNAME, byIndex))
	require.Equal(t, "lo", cString(byIndex[:unix.IFNAMSIZ]))
	binary.LittleEndian.PutUint32(byIndex[unix.IFNAMSIZ:], 2)
	require.Equal(t, unix.ENODEV, st.IfreqIoctl(unix.SIOCGIFNAME, byIndex))

	// A name filling ifr_name is cut to IFNAMSIZ-1 bytes, as Linux cuts it.
	require.Equal(t, unix.ENODEV, st.IfreqIoctl(unix.SIOCGIFFLAGS, ifreq(strings.Repeat("x", unix.IFNAMSIZ))))
	require.Equal(t, unix.EPERM, st.IfreqIoctl(unix.SIOCSIFFLAGS, ifreq("lo")))
	require.Equal(t, unix.EPERM, st.IfreqIoctl(unix.SIOCSIFADDR, ifreq("nope")))

	require.True(t, IsIfreqIoctl(unix.AF_UNIX, unix.SIOCGIFFLAGS))
	require.False(t, IsIfreqIoctl(unix.AF_INET6, unix.SIOCGIFADDR))
	require.True(t, IsIfreqIoctl(unix.AF_INET, unix.SIOCGIFADDR))
	require.False(t, IsIfreqIoctl(unix.AF_UNIX, unix.SIOCSIFADDR))
}

func TestIfConf(t *testing.T) {
	st := NewStack()
	defer st.Close()
	_, total, err := st.IfConf(0, true)
	require.NoError(t, err)
	require.Equal(t, SizeofIfreq, total, "lo's one IPv4 address")
	buf, total, err := st.IfConf(SizeofIfreq-1, false)
	require.NoError(t, err)
	require.Empty(t, buf)
	require.Zero(t, total)
	buf, total, err = st.IfConf(-5, false)
	require.NoError(t, err)
	require.Empty(t, buf)
	require.Zero(t, total)
	buf, total, err = st.IfConf(1<<30, false)
	require.NoError(t, err)
	require.Equal(t, SizeofIfreq, total)
	require.Equal(t, "lo", cString(buf[:unix.IFNAMSIZ]))
	require.Equal(t, []byte{127, 0, 0, 1}, buf[unix.IFNAMSIZ+4:unix.IFNAMSIZ+8])
}

func TestProcNetListsTheSandboxSockets(t *testing.T) {
	st := NewStack()
	defer st.Close()
	l := listener(t, st, unix.AF_INET, sin(localhost, 0))
	unbound := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	u := newInet(t, st, unix.AF_INET6, unix.SOCK_DGRAM)
	require.NoError(t, u.Bind(sin6([16]byte{15: 1}, 0), false))
	tcp := string(st.ProcNet("tcp"))
	lines := strings.Split(strings.TrimSuffix(tcp, "\n"), "\n")
	require.Len(t, lines, 2, "the listener; not the unbound socket (%d)", unbound.ino)
	for _, line := range lines {
		require.Len(t, line, 149, "padded as Linux pads it")
	}
	fields := strings.Fields(lines[1])
	require.Equal(t, "0100007F", strings.Split(fields[1], ":")[0])
	require.Equal(t, "0A", fields[3])
	require.Equal(t, itoa(l.ino), fields[9])
	udp6 := strings.Split(strings.TrimSuffix(string(st.ProcNet("udp6")), "\n"), "\n")
	require.Len(t, udp6, 2)
	require.True(t, strings.HasPrefix(strings.Fields(udp6[1])[1], "00000000000000000000000001000000:"))
	require.Equal(t, 1, strings.Count(string(st.ProcNet("udp")), "\n"), "only the header")

	f, err := st.New(unix.SOCK_STREAM, false, testCred)
	require.NoError(t, err)
	s := f.Impl().(*Socket)
	require.NoError(t, s.Bind(Key{Abstract: "\x00proc"}, append([]byte{unix.AF_UNIX, 0}, "\x00proc"...)))
	require.NoError(t, s.Listen(1, testCred))
	unixTable := string(st.ProcNet("unix"))
	require.Contains(t, unixTable, fmt.Sprintf(" 00010000 0001 01 %5d @proc\n", s.ino))
	f.DecRef()
	require.NotContains(t, string(st.ProcNet("unix")), "@proc")
	require.Contains(t, string(st.ProcNet("dev")), "    lo:")
	require.Equal(t, "00000000000000000000000000000001 01 80 10 80       lo\n", string(st.ProcNet("if_inet6")))
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestPingSocketsAreAnswered(t *testing.T) {
	st := NewStack()
	defer st.Close()
	_, err := st.NewInet(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, false, Cred{GID: 1 << 31})
	require.Equal(t, unix.EACCES, err, "outside ping_group_range")
	_, err = st.NewInet(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, false, testCred)
	require.Equal(t, unix.EPROTONOSUPPORT, err)
	f, err := st.NewInet(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, false, testCred)
	require.NoError(t, err)
	defer f.DecRef()
	s := inetSock(t, f)
	echo := []byte{8, 0, 0, 0, 0, 0, 0, 7, 'p', 'i', 'n', 'g'}
	n, err := s.Send(context.Background(), echo, SendOptions{Dest: sin(localhost, 0)})
	require.NoError(t, err)
	require.Equal(t, len(echo), n)
	reply := make([]byte, 64)
	r, err := s.Recv(context.Background(), reply, RecvOptions{})
	require.NoError(t, err)
	require.Equal(t, len(echo), r.N)
	require.Equal(t, byte(0), reply[0], "an echo reply")
	require.Equal(t, byte(7), reply[7], "the sequence number")
	require.Equal(t, "ping", string(reply[8:r.N]))
	require.Equal(t, 1, strings.Count(string(st.ProcNet("udp")), "\n"), "ping sockets are not UDP's")
}
