package netstack

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// TestUplinkReachesTheRouter connects from the sandbox's stack to a
// listener of the router's at the gateway address, and checks the
// addresses each side sees.
func TestUplinkReachesTheRouter(t *testing.T) {
	st, err := New(Options{Uplink: true})
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)

	l, err := gonet.ListenTCP(st.router, tcpip.FullAddress{Addr: GatewayAddr, Port: 80}, ipv4.ProtocolNumber)
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, c.Connect(ctx, sin(GatewayAddr.As4(), 80), false))
	require.Equal(t, GuestAddr.As4(), [4]byte(c.Name()[4:8]))

	conn, err := l.Accept()
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, "10.0.2.15", conn.RemoteAddr().(*net.TCPAddr).IP.String())
	_, err = c.Send(ctx, []byte("hello"), SendOptions{})
	require.NoError(t, err)
	require.NoError(t, c.Shutdown(unix.SHUT_WR))
	got, err := io.ReadAll(conn)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
}

// TestNoUplinkByDefault checks that without Options.Uplink the gateway
// is unreachable.
func TestNoUplinkByDefault(t *testing.T) {
	st := NewStack()
	defer st.Close()
	c := newInet(t, st, unix.AF_INET, unix.SOCK_STREAM)
	require.Equal(t, unix.ENETUNREACH, c.Connect(context.Background(), sin(GatewayAddr.As4(), 80), false))
}
