package netstack

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

func newNetlink(t *testing.T, st *Stack) *NetlinkSocket {
	t.Helper()
	f, err := st.NewNetlink(unix.SOCK_RAW, unix.NETLINK_ROUTE, false, testCred)
	require.NoError(t, err)
	t.Cleanup(f.DecRef)
	return f.Impl().(*NetlinkSocket)
}

// nlRequest is one netlink message of type typ with payload.
func nlRequest(typ, flags uint16, seq uint32, payload []byte) []byte {
	var w nlBuilder
	w.begin(typ, flags, seq, 0)
	w.raw(payload)
	return w.end()
}

// receiveAll reads the datagrams queued and splits them into messages.
func receiveAll(t *testing.T, s *NetlinkSocket) []nlMsg {
	t.Helper()
	var out []nlMsg
	for {
		buf := make([]byte, 65536)
		r, err := s.Recv(context.Background(), buf, RecvOptions{Nonblock: true})
		if err == unix.EAGAIN {
			return out
		}
		require.NoError(t, err)
		require.False(t, r.Truncated)
		out = append(out, parseNetlink(buf[:r.N])...)
	}
}

func errorOf(m nlMsg) unix.Errno {
	return unix.Errno(-int32(binary.LittleEndian.Uint32(m.Data)))
}

func TestNetlinkDumpsDescribeTheStack(t *testing.T) {
	st := NewStack()
	defer st.Close()
	s := newNetlink(t, st)
	send := func(b []byte, netAdmin bool) {
		n, err := s.Send(context.Background(), b, SendOptions{Cred: testCred, NetAdmin: netAdmin})
		require.NoError(t, err)
		require.Equal(t, len(b), n)
	}
	send(nlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 1, []byte{unix.AF_UNSPEC}), false)
	msgs := receiveAll(t, s)
	require.Len(t, msgs, 2)
	require.Equal(t, uint16(unix.RTM_NEWLINK), msgs[0].Type)
	require.Equal(t, uint32(testCred.PID), msgs[0].PID, "autobound to the process id")
	require.Equal(t, uint16(unix.NLMSG_DONE), msgs[1].Type)
	attrs, ok := parseAttrs(msgs[0].Data[unix.SizeofIfInfomsg:])
	require.True(t, ok)
	require.Equal(t, nlAttr{Type: unix.IFLA_IFNAME, Data: []byte("lo\x00")}, attrs[0])

	send(nlRequest(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 2, []byte{unix.AF_INET6}), false)
	msgs = receiveAll(t, s)
	require.Len(t, msgs, 2)
	require.Equal(t, []byte{unix.AF_INET6, 128, unix.IFA_F_PERMANENT, unix.RT_SCOPE_HOST, 1, 0, 0, 0}, msgs[0].Data[:unix.SizeofIfAddrmsg])

	// Changes are EPERM without CAP_NET_ADMIN and EOPNOTSUPP with it.
	for netAdmin, want := range map[bool]unix.Errno{false: unix.EPERM, true: unix.EOPNOTSUPP} {
		send(nlRequest(unix.RTM_NEWADDR, unix.NLM_F_REQUEST, 3, make([]byte, unix.SizeofIfAddrmsg)), netAdmin)
		msgs = receiveAll(t, s)
		require.Len(t, msgs, 1)
		require.Equal(t, uint16(unix.NLMSG_ERROR), msgs[0].Type)
		require.Equal(t, want, errorOf(msgs[0]))
	}
	// Unsupported dumps are EOPNOTSUPP.
	send(nlRequest(unix.RTM_GETNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 4, []byte{unix.AF_UNSPEC}), false)
	msgs = receiveAll(t, s)
	require.Len(t, msgs, 1)
	require.Equal(t, unix.EOPNOTSUPP, errorOf(msgs[0]))
}

func TestNetlinkReceiveBufferOverflowIsENOBUFS(t *testing.T) {
	st := NewStack()
	defer st.Close()
	s := newNetlink(t, st)
	require.NoError(t, s.SetSockopt(unix.SOL_SOCKET, unix.SO_RCVBUF, 4, func(int) ([]byte, error) {
		return binary.LittleEndian.AppendUint32(nil, 0), nil
	}))
	dump := nlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 1, []byte{unix.AF_UNSPEC})
	for range 100 {
		_, err := s.Send(context.Background(), dump, SendOptions{Cred: testCred})
		require.NoError(t, err)
	}
	s.mu.Lock()
	queued := s.rmem
	s.mu.Unlock()
	require.Less(t, queued, minRcvBuf+nlGoodSize)
	_, err := s.Recv(context.Background(), make([]byte, 100), RecvOptions{Nonblock: true})
	require.Equal(t, unix.ENOBUFS, err, "the drop is reported first")
	require.NotEmpty(t, receiveAll(t, s), "what fitted is still there")
}

func TestNetlinkRecvWaitsAndEndsWithEINTR(t *testing.T) {
	st := NewStack()
	defer st.Close()
	s := newNetlink(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.Recv(ctx, make([]byte, 100), RecvOptions{})
		done <- err
	}()
	cancel()
	require.Equal(t, unix.EINTR, <-done)
	// A message from another port wakes a waiting receiver.
	peer := newNetlink(t, st)
	require.NoError(t, s.Bind(nlAddr(4242, 0), 0))
	go func() {
		r, err := s.Recv(context.Background(), make([]byte, 100), RecvOptions{})
		if err == nil && r.N != 3 {
			err = unix.EIO
		}
		done <- err
	}()
	_, err := peer.Send(context.Background(), []byte("abc"), SendOptions{Dest: nlAddr(4242, 0), Cred: testCred})
	require.Equal(t, unix.EPERM, err, "sending to a port takes CAP_NET_ADMIN")
	_, err = peer.Send(context.Background(), []byte("abc"), SendOptions{Dest: nlAddr(4242, 0), Cred: testCred, NetAdmin: true})
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver was not woken")
	}
	_, err = peer.Send(context.Background(), []byte("abc"), SendOptions{Dest: nlAddr(999, 0), Cred: testCred, NetAdmin: true})
	require.Equal(t, unix.ECONNREFUSED, err)
}

// TestRoutesOfAnUplink checks the tables Linux would show for a sandbox
// with an Ethernet interface beside lo: its subnet and default routes in
// the main table, its address and broadcast in the local one.
func TestRoutesOfAnUplink(t *testing.T) {
	lo := Interface{Index: 1, Name: "lo", Flags: unix.IFF_UP | unix.IFF_LOOPBACK,
		Addrs: []IfAddr{{netip.MustParsePrefix("127.0.0.1/8")}, {netip.MustParsePrefix("::1/128")}}}
	eth := Interface{Index: 2, Name: "eth0", Flags: unix.IFF_UP | unix.IFF_BROADCAST,
		Addrs: []IfAddr{{netip.MustParsePrefix("10.0.2.15/24")}}}
	subnet, err := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{10, 0, 2, 0}), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
	require.NoError(t, err)
	anyV4, err := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFromBytes(make([]byte, 4)))
	require.NoError(t, err)
	table := []tcpip.Route{
		{Destination: subnet, NIC: 2},
		{Destination: anyV4, Gateway: tcpip.AddrFrom4([4]byte{10, 0, 2, 2}), NIC: 2},
	}
	routes := routesOf([]Interface{lo, eth}, table)
	var got []string
	for _, r := range routes {
		got = append(got, routeString(r))
	}
	require.Equal(t, []string{
		"main unicast 0.0.0.0/0 via 10.0.2.2 dev 2 boot scope 0",
		"main unicast 10.0.2.0/24 src 10.0.2.15 dev 2 kernel scope 253",
		"local local 10.0.2.15/32 src 10.0.2.15 dev 2 kernel scope 254",
		"local broadcast 10.0.2.255/32 src 10.0.2.15 dev 2 kernel scope 253",
		"local local 127.0.0.0/8 src 127.0.0.1 dev 1 kernel scope 254",
		"local local 127.0.0.1/32 src 127.0.0.1 dev 1 kernel scope 254",
		"local broadcast 127.255.255.255/32 src 127.0.0.1 dev 1 kernel scope 253",
		"local local ::1/128 dev 1 kernel scope 0",
	}, got)
	b, ok := eth.broadcast(eth.Addrs[0])
	require.True(t, ok)
	require.Equal(t, "10.0.2.255", b.String())
	_, ok = lo.broadcast(lo.Addrs[0])
	require.False(t, ok)
}

func routeString(r Route) string {
	tables := map[uint8]string{unix.RT_TABLE_MAIN: "main", unix.RT_TABLE_LOCAL: "local"}
	types := map[uint8]string{unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local", unix.RTN_BROADCAST: "broadcast"}
	protos := map[uint8]string{unix.RTPROT_KERNEL: "kernel", unix.RTPROT_BOOT: "boot"}
	s := tables[r.Table] + " " + types[r.Type] + " " + r.Dst.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.PrefSrc.IsValid() {
		s += " src " + r.PrefSrc.String()
	}
	return fmt.Sprintf("%s dev %d %s scope %d", s, r.NIC, protos[r.Protocol], r.Scope)
}

// FuzzNetlinkRequests sends what the fuzzer makes to a NETLINK_ROUTE
// socket, strict and not: nothing may panic, every reply must parse as
// whole messages, and replies carry the request's sequence number.
func FuzzNetlinkRequests(f *testing.F) {
	f.Add(nlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 1, []byte{0}), false)
	f.Add(nlRequest(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 2, make([]byte, unix.SizeofIfAddrmsg)), true)
	f.Add(nlRequest(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 3, append(make([]byte, unix.SizeofRtMsg), 8, 0, unix.RTA_TABLE, 0, 254, 0, 0, 0)), true)
	f.Add(nlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 4, append(make([]byte, unix.SizeofIfInfomsg), 7, 0, unix.IFLA_IFNAME, 0, 'l', 'o', 0, 0)), false)
	f.Add(append(nlRequest(unix.NLMSG_NOOP, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 5, []byte{1}), nlRequest(unix.RTM_NEWADDR, unix.NLM_F_REQUEST, 6, nil)...), false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 18, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	st := NewStack()
	defer st.Close()
	f.Fuzz(func(t *testing.T, b []byte, strict bool) {
		fd, err := st.NewNetlink(unix.SOCK_DGRAM, unix.NETLINK_ROUTE, true, testCred)
		require.NoError(t, err)
		defer fd.DecRef()
		s := fd.Impl().(*NetlinkSocket)
		s.flags[unix.NETLINK_GET_STRICT_CHK] = strict
		n, err := s.Send(context.Background(), b, SendOptions{Cred: testCred})
		if len(b) == 0 {
			require.Equal(t, unix.ENODATA, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, len(b), n)
		seqs := map[uint32]bool{}
		for _, m := range parseNetlink(b) {
			seqs[m.Seq] = true
		}
		for {
			buf := make([]byte, 1<<16)
			r, err := s.Recv(context.Background(), buf, RecvOptions{Nonblock: true})
			if err != nil {
				require.Contains(t, []error{unix.EAGAIN, unix.ENOBUFS}, err)
				break
			}
			got := buf[:r.N]
			total := 0
			for _, m := range parseNetlink(got) {
				total += nlAlign(int(m.Len))
				require.True(t, seqs[m.Seq], "a reply to no request")
			}
			require.Equal(t, len(got), total, "a reply holds whole messages")
		}
	})
}

func TestNetlinkAutobind(t *testing.T) {
	st := NewStack()
	defer st.Close()
	a, b, c := newNetlink(t, st), newNetlink(t, st), newNetlink(t, st)
	require.Equal(t, uint32(77), a.bound(77))
	require.Equal(t, uint32(77), a.bound(78), "bound once")
	require.Equal(t, int32(-4096), int32(b.bound(77)), "the process id is taken")
	require.Equal(t, int32(-4097), int32(c.bound(0)), "no process id")
	require.Equal(t, unix.EINVAL, a.Bind(nlAddr(5, 0), 77), "bound to another port")
	require.NoError(t, a.Bind(nlAddr(77, 3), 77))
	require.Equal(t, nlAddr(77, 3), a.Name())
	d := newNetlink(t, st)
	require.Equal(t, unix.EADDRINUSE, d.Bind(nlAddr(77, 0), 1))
}
