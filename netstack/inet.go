package netstack

import (
	"bytes"
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/raw"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/kvmbox/kvmbox/vfs"
)

var _ vfs.Poller = (*InetSocket)(nil)

// Linux's defaults for the buffer sizes a new socket reports:
// tcp_wmem[1] and tcp_rmem[1] for TCP, wmem_default and rmem_default for
// UDP. The TCP stack runs with larger buffers than a new TCP socket
// reports, as Linux's autotuning grows them.
const (
	tcpDefaultSndBuf = 16384
	tcpDefaultRcvBuf = 131072
)

// PingGroupLow and PingGroupHigh are net.ipv4.ping_group_range: the
// groups whose processes may make ping sockets. Linux's default admits
// none; kvmbox admits every group, as systemd's and Docker's settings
// do, so that ping works without CAP_NET_RAW.
const (
	PingGroupLow  = 0
	PingGroupHigh = 2147483647
)

// unprivilegedPortStart is net.ipv4.ip_unprivileged_port_start: lower
// ports take CAP_NET_BIND_SERVICE.
const unprivilegedPortStart = 1024

// inetStack returns the sandbox's TCP/IP stack, made on first use: a
// loopback interface with 127.0.0.1/8 and ::1, and eth0 to the router
// when Options.Uplink asks for it.
func (st *Stack) inetStack() (*stack.Stack, error) {
	st.inetMu.Lock()
	defer st.inetMu.Unlock()
	if st.closed {
		return nil, unix.ENETDOWN
	}
	if st.inet != nil {
		return st.inet, nil
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		RawFactory:         raw.EndpointFactory{},
	})
	sack := tcpip.TCPSACKEnabled(true)
	// Nagle's algorithm is on until TCP_NODELAY, as on Linux.
	delay := tcpip.TCPDelayEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	// Linux's tcp_fin_timeout: the default minute in TIME-WAIT would keep
	// ports of short-lived connections from reuse without SO_REUSEADDR
	// no longer than on Linux.
	timeWait := tcpip.TCPTimeWaitTimeoutOption(60 * time.Second)
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &delay, &moderate, &timeWait} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			s.Destroy()
			return nil, errnoOf(err)
		}
	}
	v4 := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{127, 0, 0, 1}), PrefixLen: 8}}
	v6 := tcpip.ProtocolAddress{Protocol: ipv6.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom16([16]byte{15: 1}), PrefixLen: 128}}
	if err := s.CreateNICWithOptions(loopbackNIC, loopback.New(), stack.NICOptions{Name: "lo"}); err != nil {
		s.Destroy()
		return nil, errnoOf(err)
	}
	for _, a := range []tcpip.ProtocolAddress{v4, v6} {
		if err := s.AddProtocolAddress(loopbackNIC, a, stack.AddressProperties{}); err != nil {
			s.Destroy()
			return nil, errnoOf(err)
		}
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: v4.AddressWithPrefix.Subnet(), NIC: loopbackNIC},
		{Destination: v6.AddressWithPrefix.Subnet(), NIC: loopbackNIC},
	})
	if st.opts.Uplink {
		r, err := addUplink(s)
		if err != nil {
			s.Destroy()
			return nil, err
		}
		st.router = r
	}
	if st.policy != nil {
		out, err := startOutbound(st.router, st.policy, st.opts.Outbound.Log)
		if err != nil {
			st.router.Destroy()
			st.router = nil
			s.Destroy()
			// The uplink could not come up: the socket call fails as
			// on a host whose network is down.
			return nil, unix.ENETDOWN
		}
		st.out = out
	}
	st.inet = s
	return s, nil
}

// Close ends the sandbox's TCP/IP stack, its endpoints and goroutines;
// inet sockets made afterwards fail with ENETDOWN.
func (st *Stack) Close() {
	if st.ports != nil {
		st.ports.stop()
	}
	st.inetMu.Lock()
	s, r, out := st.inet, st.router, st.out
	st.inet, st.router, st.out, st.closed = nil, nil, nil, true
	st.inetMu.Unlock()
	if out != nil {
		out.close()
	}
	if s != nil {
		s.Destroy()
	}
	if r != nil {
		r.Destroy()
	}
}

// InetSocket is a TCP or UDP socket over IPv4 or IPv6, an endpoint of the
// sandbox's TCP/IP stack: the FileImpl of its file.
type InetSocket struct {
	st       *Stack
	family   int
	typ      int
	protocol int
	ino      uint64
	uid, gid uint32
	ep       tcpip.Endpoint
	wq       *waiter.Queue
	// bridge passes the endpoint's events on to waiters, the file's
	// readiness queue.
	bridge  waiter.Entry
	waiters vfs.Queue

	mu         sync.Mutex
	rcvTimeout time.Duration // SO_RCVTIMEO; 0 waits for good
	sndTimeout time.Duration // SO_SNDTIMEO
	sndbuf     int           // SO_SNDBUF as the guest sees it
	rcvbuf     int           // SO_RCVBUF
	tos        int           // IP_TOS
	ttl        int           // IP_TTL; -1 for the default
	connecting bool          // a connect is under way or has been
	readShut   bool          // SHUT_RD before a connection: reads see EOF
	// IP_RECVERR and IPV6_RECVERR, which glibc's resolver sets: read
	// back as set, with no error queue behind them (MSG_ERRQUEUE).
	recvErr, recvErr6 bool
}

// NewInet implements socket(2) for AF_INET and AF_INET6: typ is
// SOCK_STREAM (TCP) or SOCK_DGRAM (UDP), protocol 0 or the type's own,
// or a ping socket, or SOCK_RAW for ICMP (the caller checks CAP_NET_RAW).
func (st *Stack) NewInet(family, typ, protocol int, nonblock bool, cred Cred) (*vfs.File, error) {
	switch {
	case typ == unix.SOCK_STREAM && (protocol == 0 || protocol == unix.IPPROTO_TCP):
		protocol = unix.IPPROTO_TCP
	case typ == unix.SOCK_DGRAM && (protocol == 0 || protocol == unix.IPPROTO_UDP):
		protocol = unix.IPPROTO_UDP
	case typ == unix.SOCK_DGRAM && (family == unix.AF_INET && protocol == unix.IPPROTO_ICMP ||
		family == unix.AF_INET6 && protocol == unix.IPPROTO_ICMPV6):
		// Ping sockets, for the groups of net.ipv4.ping_group_range.
		if cred.GID < PingGroupLow || cred.GID > PingGroupHigh {
			return nil, unix.EACCES
		}
	case typ == unix.SOCK_RAW && (family == unix.AF_INET && protocol == unix.IPPROTO_ICMP ||
		family == unix.AF_INET6 && protocol == unix.IPPROTO_ICMPV6):
		// Raw ICMP sockets, whose callers checked CAP_NET_RAW.
	case typ == unix.SOCK_RAW:
		return nil, unix.EPROTONOSUPPORT
	case typ != unix.SOCK_STREAM && typ != unix.SOCK_DGRAM:
		return nil, unix.ESOCKTNOSUPPORT
	default:
		return nil, unix.EPROTONOSUPPORT
	}
	s, err := st.inetStack()
	if err != nil {
		return nil, err
	}
	netProto := ipv4.ProtocolNumber
	if family == unix.AF_INET6 {
		netProto = ipv6.ProtocolNumber
	}
	transProto := tcp.ProtocolNumber
	switch protocol {
	case unix.IPPROTO_UDP:
		transProto = udp.ProtocolNumber
	case unix.IPPROTO_ICMP:
		transProto = icmp.ProtocolNumber4
	case unix.IPPROTO_ICMPV6:
		transProto = icmp.ProtocolNumber6
	}
	wq := new(waiter.Queue)
	var ep tcpip.Endpoint
	var terr tcpip.Error
	if typ == unix.SOCK_RAW {
		ep, terr = s.NewRawEndpoint(transProto, netProto, wq, true)
	} else {
		ep, terr = s.NewEndpoint(transProto, netProto, wq)
	}
	if terr != nil {
		return nil, errnoOf(terr)
	}
	if family == unix.AF_INET6 {
		// Linux's net.ipv6.bindv6only is 0: IPv6 sockets take IPv4 too.
		ep.SocketOptions().SetV6Only(false)
	}
	sock := st.newInetSocket(family, typ, protocol, ep, wq, cred)
	if typ == unix.SOCK_STREAM {
		sock.sndbuf, sock.rcvbuf = tcpDefaultSndBuf, tcpDefaultRcvBuf
	}
	return sock.newFile(nonblock), nil
}

func (st *Stack) newInetSocket(family, typ, protocol int, ep tcpip.Endpoint, wq *waiter.Queue, cred Cred) *InetSocket {
	s := &InetSocket{st: st, family: family, typ: typ, protocol: protocol, ino: inodes.Add(1), uid: cred.UID, gid: cred.GID,
		ep: ep, wq: wq, sndbuf: DefaultBuf, rcvbuf: DefaultBuf, ttl: -1}
	s.bridge = waiter.NewFunctionEntry(waiter.EventIn|waiter.EventPri|waiter.EventOut|waiter.EventErr|waiter.EventHUp|
		waiter.EventRdNorm|waiter.EventWrNorm|waiter.EventRdHUp, func(m waiter.EventMask) {
		s.waiters.Notify(m.ToLinux())
	})
	wq.EventRegister(&s.bridge)
	st.sockets.add(s)
	if typ == unix.SOCK_STREAM {
		// A fixed send buffer of the stack's default size (1 MiB): on
		// loopback its autotuning, which starts smaller, measured a
		// third slower (bench's TCP row).
		ops := ep.SocketOptions()
		ops.SetSendBufferSize(ops.GetSendBufferSize(), true)
	}
	return s
}

func (s *InetSocket) newFile(nonblock bool) *vfs.File {
	flags := unix.O_RDWR
	if nonblock {
		flags |= unix.O_NONBLOCK
	}
	return vfs.NewFile(s, flags)
}

// addrType is the type whose addresses the socket takes: a raw socket's
// are a datagram socket's.
func (s *InetSocket) addrType() int {
	if s.typ == unix.SOCK_RAW {
		return unix.SOCK_DGRAM
	}
	return s.typ
}

// Family is SO_DOMAIN.
func (s *InetSocket) Family() int { return s.family }

// Type is SO_TYPE.
func (s *InetSocket) Type() int { return s.typ }

// Protocol is SO_PROTOCOL.
func (s *InetSocket) Protocol() int { return s.protocol }

// blocker waits, for one blocking call, until the endpoint reports one
// of its events, the call's context ends (EINTR) or its timeout passes
// (EAGAIN).
type blocker struct {
	s       *InetSocket
	ctx     context.Context
	events  waiter.EventMask
	timeout time.Duration
	entry   waiter.Entry
	ch      chan struct{}
	timer   *time.Timer
}

// wait registers for events the first time, for the caller to try once
// more before waiting: an event may have come before the registration.
func (b *blocker) wait() error {
	if vfs.MustNotWait(b.ctx) {
		return vfs.ErrWouldWait
	}
	if b.ch == nil {
		b.entry, b.ch = waiter.NewChannelEntry(b.events | waiter.EventErr | waiter.EventHUp)
		b.s.wq.EventRegister(&b.entry)
		if b.timeout > 0 {
			b.timer = time.NewTimer(b.timeout)
		}
		return nil
	}
	var expired <-chan time.Time
	if b.timer != nil {
		expired = b.timer.C
	}
	select {
	case <-b.ch:
		return nil
	case <-b.ctx.Done():
		return unix.EINTR
	case <-expired:
		return unix.EAGAIN
	}
}

func (b *blocker) done() {
	if b.ch == nil {
		return
	}
	b.s.wq.EventUnregister(&b.entry)
	if b.timer != nil {
		b.timer.Stop()
	}
}

func (s *InetSocket) blocker(ctx context.Context, events waiter.EventMask, timeout time.Duration) *blocker {
	return &blocker{s: s, ctx: ctx, events: events, timeout: timeout}
}

func (s *InetSocket) timeouts() (rcv, snd time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcvTimeout, s.sndTimeout
}

func wouldBlock(err tcpip.Error) bool {
	_, ok := err.(*tcpip.ErrWouldBlock)
	return ok
}

// Bind implements bind(2) to the guest's address sa; mayBindLow is
// CAP_NET_BIND_SERVICE, which ports below 1024 take.
func (s *InetSocket) Bind(sa []byte, mayBindLow bool) error {
	addr, _, err := ParseInetAddr(s.family, s.addrType(), sa, ForBind)
	if err != nil {
		return err
	}
	if s.family == unix.AF_INET6 && isMapped(addr.Addr) && s.ep.SocketOptions().GetV6Only() {
		return unix.EINVAL
	}
	if addr.Port != 0 && addr.Port < unprivilegedPortStart && !mayBindLow {
		return unix.EACCES
	}
	if a, err := s.ep.GetLocalAddress(); err == nil && a.Port != 0 {
		return unix.EINVAL
	}
	if addr.Addr.Unspecified() {
		addr.Addr = tcpip.Address{}
	}
	return errnoOf(s.ep.Bind(addr))
}

// Listen implements listen(2).
func (s *InetSocket) Listen(backlog int, _ Cred) error {
	if s.typ != unix.SOCK_STREAM {
		return unix.EOPNOTSUPP
	}
	if uint(backlog) > maxBacklog {
		backlog = maxBacklog
	}
	return errnoOf(s.ep.Listen(backlog))
}

// Accept implements accept4(2): it returns the next connection's file,
// waiting for one as long as SO_RCVTIMEO allows.
func (s *InetSocket) Accept(ctx context.Context, nonblock, newNonblock bool) (*vfs.File, error) {
	if s.typ != unix.SOCK_STREAM {
		return nil, unix.EOPNOTSUPP
	}
	rcvTimeout, _ := s.timeouts()
	b := s.blocker(ctx, waiter.ReadableEvents, rcvTimeout)
	defer b.done()
	for {
		ep, wq, err := s.ep.Accept(nil)
		if err == nil {
			ns := s.st.newInetSocket(s.family, s.typ, s.protocol, ep, wq, Cred{UID: s.uid, GID: s.gid})
			s.mu.Lock()
			ns.sndbuf, ns.rcvbuf, ns.tos, ns.ttl = s.sndbuf, s.rcvbuf, s.tos, s.ttl
			ns.rcvTimeout, ns.sndTimeout = s.rcvTimeout, s.sndTimeout
			s.mu.Unlock()
			return ns.newFile(newNonblock), nil
		}
		if !wouldBlock(err) {
			return nil, errnoOf(err)
		}
		if nonblock {
			return nil, unix.EAGAIN
		}
		if err := b.wait(); err != nil {
			return nil, err
		}
	}
}

// Connect implements connect(2) to the guest's address sa. A TCP connect
// that cannot finish at once is EINPROGRESS when nonblock (its outcome is
// SO_ERROR's then), and waits as long as SO_SNDTIMEO allows otherwise.
func (s *InetSocket) Connect(ctx context.Context, sa []byte, nonblock bool) error {
	if len(sa) >= familyLen && sa[0] == unix.AF_UNSPEC && sa[1] == 0 {
		return s.disconnect()
	}
	if s.typ == unix.SOCK_STREAM && s.ep.SocketOptions().GetAcceptConn() {
		// Linux checks the socket's state before the address.
		return unix.EISCONN
	}
	addr, _, err := ParseInetAddr(s.family, s.addrType(), sa, ForConnect)
	if err != nil {
		return err
	}
	if s.family == unix.AF_INET6 && isMapped(addr.Addr) && s.ep.SocketOptions().GetV6Only() {
		return unix.ENETUNREACH
	}
	if s.typ != unix.SOCK_STREAM {
		return errnoOf(s.ep.Connect(addr))
	}
	if !nonblock && vfs.MustNotWait(ctx) {
		return vfs.ErrWouldWait
	}
	s.mu.Lock()
	s.connecting = true
	s.mu.Unlock()
	terr := s.ep.Connect(addr)
	switch terr.(type) {
	case nil:
		return nil
	case *tcpip.ErrConnectStarted:
		if nonblock {
			return unix.EINPROGRESS
		}
	case *tcpip.ErrAlreadyConnecting:
		// A connect again while one is under way: EALREADY, or (a
		// blocking call restarted after a signal) the wait goes on.
		if nonblock {
			return unix.EALREADY
		}
	default:
		return errnoOf(terr)
	}
	_, sndTimeout := s.timeouts()
	b := s.blocker(ctx, waiter.WritableEvents, sndTimeout)
	defer b.done()
	for {
		if s.ep.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) != 0 {
			return errnoOf(s.ep.LastError())
		}
		if err := b.wait(); err != nil {
			if err == unix.EAGAIN {
				return unix.EINPROGRESS
			}
			return err
		}
	}
}

// disconnect implements connect(2) to AF_UNSPEC: a UDP socket forgets
// its peer, a TCP socket that never connected is left alone.
func (s *InetSocket) disconnect() error {
	s.mu.Lock()
	connecting := s.connecting
	s.mu.Unlock()
	if s.typ == unix.SOCK_STREAM && !connecting {
		return nil
	}
	return errnoOf(s.ep.Disconnect())
}

// Name returns the bound address (getsockname): the unspecified address
// and port 0 when unbound.
func (s *InetSocket) Name() []byte {
	a, err := s.ep.GetLocalAddress()
	if err != nil {
		a = tcpip.FullAddress{}
	}
	if a.Addr.Len() == 0 && s.family == unix.AF_INET6 {
		a.Addr = tcpip.AddrFrom16([16]byte{})
	}
	return sockaddrOf(s.family, a)
}

// PeerName implements getpeername(2).
func (s *InetSocket) PeerName() ([]byte, error) {
	a, err := s.ep.GetRemoteAddress()
	if err != nil {
		return nil, unix.ENOTCONN
	}
	return sockaddrOf(s.family, a), nil
}

// Shutdown implements shutdown(2) with SHUT_RD, SHUT_WR or SHUT_RDWR.
func (s *InetSocket) Shutdown(how int) error {
	var flags tcpip.ShutdownFlags
	switch how {
	case unix.SHUT_RD:
		flags = tcpip.ShutdownRead
	case unix.SHUT_WR:
		flags = tcpip.ShutdownWrite
	case unix.SHUT_RDWR:
		flags = tcpip.ShutdownRead | tcpip.ShutdownWrite
	default:
		return unix.EINVAL
	}
	err := s.ep.Shutdown(flags)
	if _, ok := err.(*tcpip.ErrNotConnected); ok && flags&tcpip.ShutdownRead != 0 {
		// Linux fails, yet its reads see end of file from now on.
		s.mu.Lock()
		s.readShut = true
		s.mu.Unlock()
	}
	return errnoOf(err)
}

// Send implements sendmsg(2) of data: TCP takes all of it unless
// nonblock, SO_SNDTIMEO or a signal ends the wait for room (then what
// it took), UDP sends it as one datagram to o.Dest or the peer.
func (s *InetSocket) Send(ctx context.Context, data []byte, o SendOptions) (int, error) {
	return s.SendSlices(ctx, [][]byte{data}, o)
}

// SendSlices is Send of the bytes of src in order, which the stack
// copies straight from src: the system calls pass the guest's own
// memory, pinned.
func (s *InetSocket) SendSlices(ctx context.Context, src [][]byte, o SendOptions) (int, error) {
	var opts tcpip.WriteOptions
	if s.typ != unix.SOCK_STREAM && o.Dest != nil {
		use := ForSend
		if s.protocol == unix.IPPROTO_ICMP || s.protocol == unix.IPPROTO_ICMPV6 {
			use = ForPing
		}
		to, unspecified, err := ParseInetAddr(s.family, s.addrType(), o.Dest, use)
		if err != nil {
			return 0, err
		}
		if !unspecified {
			if s.family == unix.AF_INET6 && isMapped(to.Addr) && s.ep.SocketOptions().GetV6Only() {
				return 0, unix.ENETUNREACH
			}
			opts.To = &to
		}
	}
	if s.typ != unix.SOCK_STREAM {
		opts.Atomic = true
	}
	_, sndTimeout := s.timeouts()
	b := s.blocker(ctx, waiter.WritableEvents, sndTimeout)
	defer b.done()
	sent, total := 0, totalLen(src)
	for {
		// A reader per write: the stack may read more than it takes.
		n, err := s.ep.Write(newSlicesReader(src, sent), opts)
		sent += int(n)
		switch {
		case err == nil && (sent == total || s.typ != unix.SOCK_STREAM):
			return sent, nil
		case err != nil && !wouldBlock(err):
			return orSent(sent, s.sendErrno(err))
		case o.Nonblock:
			return orSent(sent, unix.EAGAIN)
		}
		if err == nil {
			continue
		}
		if err := b.wait(); err != nil {
			return orSent(sent, err)
		}
	}
}

// sendErrno is the errno of a failed send: a TCP connection the peer
// reset after closing its end, or that was never made, is EPIPE, as
// Linux reports a write past the end of a connection.
func (s *InetSocket) sendErrno(err tcpip.Error) error {
	switch err.(type) {
	case *tcpip.ErrConnectionReset, *tcpip.ErrNotConnected:
		if s.typ == unix.SOCK_STREAM {
			return unix.EPIPE
		}
	}
	return errnoOf(err)
}

// Recv implements recvmsg(2) into dst: what is queued, waiting for
// something as long as SO_RCVTIMEO allows (for all of dst with WaitAll).
func (s *InetSocket) Recv(ctx context.Context, dst []byte, o RecvOptions) (RecvResult, error) {
	return s.RecvInto(ctx, newSlicesWriter(dst), len(dst), o)
}

// RecvInto is Recv into size bytes of dst, which the stack fills
// straight: the system calls lend a TCP receive the guest's own memory.
func (s *InetSocket) RecvInto(ctx context.Context, dst Filler, size int, o RecvOptions) (RecvResult, error) {
	var r RecvResult
	if s.typ == unix.SOCK_STREAM && size == 0 {
		return r, nil
	}
	rcvTimeout, _ := s.timeouts()
	b := s.blocker(ctx, waiter.ReadableEvents, rcvTimeout)
	defer b.done()
	opts := tcpip.ReadOptions{Peek: o.Peek, NeedRemoteAddr: s.typ != unix.SOCK_STREAM}
	for {
		res, err := s.ep.Read(dst, opts)
		dst.Done()
		if _, bad := err.(*tcpip.ErrBadBuffer); bad && s.typ != unix.SOCK_STREAM {
			// A datagram read into no room at all: gone, and truncated.
			err = nil
		}
		switch err.(type) {
		case nil:
			r.N += res.Count
			if s.typ == unix.SOCK_STREAM && !o.Peek && res.Count > 0 {
				// The stack grows the receive window as reads keep up.
				s.ep.ModerateRecvBuf(res.Count)
			}
			if s.typ != unix.SOCK_STREAM {
				r.Len = r.N
				r.Truncated = res.Total > res.Count
				if o.Trunc {
					r.Len = res.Total
				}
				r.From = sockaddrOf(s.family, res.RemoteAddr)
				return r, nil
			}
			if !o.WaitAll || o.Peek || r.N == size {
				r.Len = r.N
				return r, nil
			}
			continue
		case *tcpip.ErrClosedForReceive:
			r.Len = r.N
			return r, nil
		case *tcpip.ErrWouldBlock:
		case *tcpip.ErrNotConnected:
			s.mu.Lock()
			readShut := s.readShut
			s.mu.Unlock()
			if r.N > 0 || readShut {
				r.Len = r.N
				return r, nil
			}
			if s.typ == unix.SOCK_STREAM && s.ep.Readiness(waiter.EventIn) == 0 {
				return r, unix.ENOTCONN
			}
			return r, errnoOf(err)
		default:
			if r.N > 0 {
				r.Len = r.N
				return r, nil
			}
			return r, errnoOf(err)
		}
		if r.N > 0 && (o.Nonblock || vfs.MustNotWait(ctx)) {
			r.Len = r.N
			return r, nil
		}
		if o.Nonblock {
			return r, unix.EAGAIN
		}
		if err := b.wait(); err != nil {
			if r.N > 0 {
				r.Len = r.N
				return r, nil
			}
			return r, err
		}
	}
}

// Readiness implements vfs.Poller: the endpoint's events, which have
// Linux's values.
func (s *InetSocket) Readiness(mask uint32) uint32 {
	mask |= unix.POLLERR | unix.POLLHUP
	ev := s.ep.Readiness(waiter.EventMaskFromLinux(mask)).ToLinux()
	if s.typ == unix.SOCK_STREAM {
		ev = s.tcpReadiness(ev)
	}
	return ev & mask
}

// Events of a TCP socket without a connection, as Linux's tcp_poll
// reports them: hung up and writable, readable at end of file once
// reading is shut down, in error after a reset.
const (
	noConnEvents  = unix.POLLHUP | unix.POLLOUT | unix.EPOLLWRNORM
	readEOFEvents = unix.POLLIN | unix.EPOLLRDNORM | unix.POLLRDHUP
)

// tcpReadiness corrects the stack's events where they differ from
// Linux's: the stack reports a socket that never connected as hung up
// only, and one whose connection ended as ready for everything.
func (s *InetSocket) tcpReadiness(ev uint32) uint32 {
	switch tcp.EndpointState(s.ep.State()) {
	case tcp.StateInitial, tcp.StateBound:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.readShut {
			return noConnEvents | readEOFEvents
		}
		return noConnEvents
	case tcp.StateClose, tcp.StateTimeWait:
		return noConnEvents | readEOFEvents
	case tcp.StateError:
		return noConnEvents | readEOFEvents | unix.POLLERR
	}
	return ev
}

// EventRegister implements vfs.Poller.
func (s *InetSocket) EventRegister(w *vfs.Waiter) { s.waiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (s *InetSocket) EventUnregister(w *vfs.Waiter) { s.waiters.EventUnregister(w) }

// Stat answers fstat: a socket inode, mode 0777, owned by its creator.
func (s *InetSocket) Stat(context.Context) (unix.Statx_t, error) {
	return socketStat(s.uid, s.gid, s.ino), nil
}

// Queued implements FIONREAD: the bytes queued, or for UDP the size of
// the next datagram.
func (s *InetSocket) Queued() int {
	if s.typ != unix.SOCK_STREAM {
		var w bytes.Buffer
		res, err := s.ep.Read(&w, tcpip.ReadOptions{Peek: true})
		if err != nil {
			return 0
		}
		return res.Total
	}
	n, err := s.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
	if err != nil {
		return 0
	}
	return n
}

// Read implements read(2): recv without flags.
func (s *InetSocket) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	r, err := s.Recv(ctx, dst, RecvOptions{Nonblock: f.StatusFlags()&unix.O_NONBLOCK != 0})
	return r.N, err
}

// Write implements write(2): send without flags.
func (s *InetSocket) Write(ctx context.Context, f *vfs.File, src []byte, _ int64) (int, error) {
	return s.Send(ctx, src, SendOptions{Nonblock: f.StatusFlags()&unix.O_NONBLOCK != 0})
}

// Release closes the endpoint: a TCP connection ends with FIN, or RST
// when data was left unread or SO_LINGER is on with no time.
func (s *InetSocket) Release() {
	s.st.sockets.remove(s)
	s.wq.EventUnregister(&s.bridge)
	s.ep.Close()
}

// QueueSizes answers SIOCINQ and SIOCOUTQ: the bytes to read (for UDP
// the next datagram's) and those sent but not yet acknowledged; a
// listening TCP socket has neither (EINVAL), as in tcp_ioctl.
func (s *InetSocket) QueueSizes() (in, out int, err error) {
	if s.typ == unix.SOCK_STREAM {
		if tcp.EndpointState(s.ep.State()) == tcp.StateListen {
			return 0, 0, unix.EINVAL
		}
		if n, err := s.ep.GetSockOptInt(tcpip.SendQueueSizeOption); err == nil {
			out = n
		}
	}
	return s.Queued(), out, nil
}
