package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// DNSAddr is the resolver kvmbox serves the sandbox, on port 53 over UDP
// and TCP (QEMU's user networking puts its own there too).
var DNSAddr = tcpip.AddrFrom4([4]byte{10, 0, 2, 3})

// GatewayName resolves to GatewayAddr, which stands for the host's
// loopback.
const GatewayName = "host.kvmbox.internal"

const (
	// dialTimeout bounds the host's connect for a sandbox's TCP flow.
	dialTimeout = 10 * time.Second
	// udpIdleTimeout ends a UDP flow (and its host socket) that carried
	// nothing either way for this long; dnsIdleTimeout a DNS-over-TCP
	// connection.
	udpIdleTimeout = 60 * time.Second
	dnsIdleTimeout = 30 * time.Second
	// maxFlows bounds the flows (host sockets) a sandbox holds at once;
	// past it new flows are refused.
	maxFlows = 512
	// maxPendingTCP bounds the connections whose host dial is under way.
	maxPendingTCP = 128
	// maxDNSQueries bounds the DNS queries resolved at once; past it
	// UDP queries are dropped (the sandbox's resolver asks again).
	maxDNSQueries = 32
	// dnsLookupTimeout bounds one host lookup.
	dnsLookupTimeout = 5 * time.Second
)

// outbound makes the sandbox's flows through the router on the host,
// as the policy allows, and answers its DNS queries.
type outbound struct {
	policy *policy
	log    io.Writer
	router *stack.Stack
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	flows  int
	live   map[*flow]struct{}
	wg     sync.WaitGroup
	// servers are the DNS listeners, closed first by close.
	servers []io.Closer
	queries chan struct{}
}

// flow is the two connections of one forwarded flow.
type flow struct {
	once  sync.Once
	conns []io.Closer
}

func (f *flow) close() {
	f.once.Do(func() {
		for _, c := range f.conns {
			c.Close()
		}
	})
}

// startOutbound serves router's flows under pol, logging refusals to
// log when set.
func startOutbound(router *stack.Stack, pol *policy, log io.Writer) (*outbound, error) {
	ctx, cancel := context.WithCancel(context.Background())
	o := &outbound{policy: pol, log: log, router: router, ctx: ctx, cancel: cancel,
		live: make(map[*flow]struct{}), queries: make(chan struct{}, maxDNSQueries)}
	// The router's end of a flow the host closed first would wait in
	// TIME-WAIT, where a new SYN from the sandbox on the same ports
	// reaches no listener (the forwarder is none) and is lost until it
	// ends. On a link within one process no stray segment of the old
	// connection can turn up later: the router keeps no TIME-WAIT.
	noTimeWait := tcpip.TCPTimeWaitTimeoutOption(0)
	if err := router.SetTransportProtocolOption(tcp.ProtocolNumber, &noTimeWait); err != nil {
		cancel()
		return nil, errnoOf(err)
	}
	tcpFwd := tcp.NewForwarder(router, 0, maxPendingTCP, o.handleTCP)
	router.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(router, o.handleUDP)
	router.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)
	if err := o.serveDNS(router); err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

// close ends every flow and DNS server and waits for their goroutines.
func (o *outbound) close() {
	o.mu.Lock()
	o.closed = true
	live := make([]*flow, 0, len(o.live))
	for f := range o.live {
		live = append(live, f)
	}
	servers := o.servers
	o.mu.Unlock()
	o.cancel()
	for _, s := range servers {
		s.Close()
	}
	for _, f := range live {
		f.close()
	}
	o.wg.Wait()
}

// admit counts a new flow, unless closed or at maxFlows.
func (o *outbound) admit() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closed:
		return net.ErrClosed
	case o.flows >= maxFlows:
		return errors.New("too many flows")
	}
	o.flows++
	o.wg.Add(1)
	return nil
}

// attach makes f one that close ends; false when closing already.
func (o *outbound) attach(f *flow) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.live[f] = struct{}{}
	return true
}

// finish ends an admitted flow, attached or not.
func (o *outbound) finish(f *flow) {
	if f != nil {
		f.close()
	}
	o.mu.Lock()
	delete(o.live, f)
	o.flows--
	o.mu.Unlock()
	o.wg.Done()
}

func (o *outbound) logf(format string, args ...any) {
	if o.log != nil {
		fmt.Fprintf(o.log, "kvmbox: network: "+format+"\n", args...)
	}
}

func addrPort(a tcpip.Address, port uint16) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip, port)
}

// handleTCP makes the connection the sandbox opened to the host, then
// completes its handshake and copies both ways. A refused or failed one
// is reset, which the sandbox sees as ECONNREFUSED, or answered with
// ICMP unreachable when the host has no route to its destination.
func (o *outbound) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	src, dst := addrPort(id.RemoteAddress, id.RemotePort), addrPort(id.LocalAddress, id.LocalPort)
	t, err := o.policy.check(TCP, dst)
	if err == nil {
		err = o.admit()
	}
	if err != nil {
		o.logf("refused tcp %s -> %s: %v", src, dst, err)
		r.Complete(true)
		return
	}
	var f *flow
	defer func() { o.finish(f) }()
	ctx, cancel := context.WithTimeout(o.ctx, dialTimeout)
	host, err := o.policy.dial(ctx, "tcp4", t.String())
	cancel()
	if err != nil {
		o.logf("tcp %s -> %s: %v", src, dst, err)
		if code, ok := unreachableCode(err); ok {
			r.Complete(false)
			o.sendUnreachable(code, header.TCPProtocolNumber, id)
			return
		}
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	hostTCP := host.(*net.TCPConn)
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		// The sandbox reset or gave up on the connection before its
		// handshake ended: so does the host's.
		hostTCP.SetLinger(0)
		hostTCP.Close()
		r.Complete(true)
		return
	}
	r.Complete(false)
	guest := gonet.NewTCPConn(&wq, ep)
	f = &flow{conns: []io.Closer{guest, host}}
	if !o.attach(f) {
		return
	}
	spliceTCP(guest, ep, hostTCP)
}

// unreachableCode is the ICMP code that tells the sandbox why the host
// could not reach a destination, when that is the reason.
func unreachableCode(err error) (header.ICMPv4Code, bool) {
	switch {
	case errors.Is(err, syscall.ENETUNREACH):
		return header.ICMPv4NetUnreachable, true
	case errors.Is(err, syscall.EHOSTUNREACH):
		return header.ICMPv4HostUnreachable, true
	}
	return 0, false
}

// sendUnreachable answers the sandbox's packet of the flow id with an
// ICMP destination unreachable, as a router on the way would: its
// connect fails with ENETUNREACH or EHOSTUNREACH.
func (o *outbound) sendUnreachable(code header.ICMPv4Code, proto tcpip.TransportProtocolNumber, id stack.TransportEndpointID) {
	// The error quotes the sandbox's packet: its IP header and the first
	// 8 bytes of its transport header, whose ports name the socket.
	quoted := make([]byte, header.IPv4MinimumSize+8)
	qh := header.IPv4(quoted)
	qh.Encode(&header.IPv4Fields{TotalLength: uint16(len(quoted)), TTL: 64, Protocol: uint8(proto), SrcAddr: id.RemoteAddress, DstAddr: id.LocalAddress})
	qh.SetChecksum(^qh.CalculateChecksum())
	binary.BigEndian.PutUint16(quoted[header.IPv4MinimumSize:], id.RemotePort)
	binary.BigEndian.PutUint16(quoted[header.IPv4MinimumSize+2:], id.LocalPort)

	pkt := make([]byte, header.IPv4MinimumSize+header.ICMPv4MinimumSize+len(quoted))
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(header.ICMPv4ProtocolNumber), SrcAddr: GatewayAddr, DstAddr: id.RemoteAddress})
	ip.SetChecksum(^ip.CalculateChecksum())
	icmp := header.ICMPv4(pkt[header.IPv4MinimumSize:])
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(code)
	copy(icmp[header.ICMPv4MinimumSize:], quoted)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	o.router.WriteRawPacket(routerNIC, ipv4.ProtocolNumber, buffer.MakeWithData(pkt))
}

// spliceTCP copies between the sandbox's connection and the host's
// until both directions end. An end of stream is passed on as a
// half-close; a reset or error on one side resets the other.
func spliceTCP(guest *gonet.TCPConn, ep tcpip.Endpoint, host *net.TCPConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		readErr, writeErr := copyStream(guest, host)
		switch {
		case readErr == nil && writeErr == nil:
			guest.CloseWrite()
		default:
			ep.Abort()
		}
	}()
	readErr, writeErr := copyStream(host, guest)
	switch {
	case readErr == nil && writeErr == nil:
		host.CloseWrite()
	default:
		// A zero linger makes the host's close a reset.
		host.SetLinger(0)
		host.Close()
	}
	<-done
}

// copyStream copies src to dst until src's end of stream (nil errors)
// or an error of either.
func copyStream(dst io.Writer, src io.Reader) (readErr, writeErr error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// handleUDP starts a flow for the first datagram the sandbox sends from
// one of its ports to a destination: a host UDP socket connected to it.
// A refused or failed flow's datagram is answered with ICMP port
// unreachable (ECONNREFUSED on a connected socket): the sandbox's UDP
// sockets take no other ICMP error.
func (o *outbound) handleUDP(r *udp.ForwarderRequest) bool {
	id := r.ID()
	src, dst := addrPort(id.RemoteAddress, id.RemotePort), addrPort(id.LocalAddress, id.LocalPort)
	t, err := o.policy.check(UDP, dst)
	if err == nil {
		err = o.admit()
	}
	if err != nil {
		o.logf("refused udp %s -> %s: %v", src, dst, err)
		return false
	}
	// A UDP dial only picks a route and a port: it does not wait.
	host, err := o.policy.dial(o.ctx, "udp4", t.String())
	if err != nil {
		o.logf("udp %s -> %s: %v", src, dst, err)
		o.finish(nil)
		return false
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		host.Close()
		o.finish(nil)
		return false
	}
	guest := gonet.NewUDPConn(&wq, ep)
	f := &flow{conns: []io.Closer{guest, host}}
	if !o.attach(f) {
		o.finish(f)
		return true
	}
	go func() {
		defer o.finish(f)
		spliceUDP(f, guest, host)
	}()
	return true
}

// spliceUDP copies datagrams both ways until the flow is idle for
// udpIdleTimeout or closed.
func spliceUDP(f *flow, guest *gonet.UDPConn, host net.Conn) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	pump := func(dst, src net.Conn) {
		buf := make([]byte, 65535)
		for {
			src.SetReadDeadline(time.Now().Add(udpIdleTimeout))
			n, err := src.Read(buf)
			var ne net.Error
			switch {
			case err == nil:
				last.Store(time.Now().UnixNano())
				// A datagram the other side cannot take is lost, as on
				// a network.
				dst.Write(buf[:n])
				continue
			case errors.Is(err, syscall.ECONNREFUSED):
				// The host's ICMP port unreachable: the next datagram may
				// find a listener.
				continue
			case errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < udpIdleTimeout:
				continue
			}
			f.close()
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(guest, host)
	}()
	pump(host, guest)
	<-done
}

// serveDNS answers DNS queries to DNSAddr:53 over UDP and TCP.
func (o *outbound) serveDNS(router *stack.Stack) error {
	addr := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: DNSAddr, PrefixLen: uplinkPrefixLen}}
	if err := router.AddProtocolAddress(routerNIC, addr, stack.AddressProperties{}); err != nil {
		return errnoOf(err)
	}
	at := tcpip.FullAddress{NIC: routerNIC, Addr: DNSAddr, Port: 53}
	pc, err := gonet.DialUDP(router, &at, nil, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	l, err := gonet.ListenTCP(router, at, ipv4.ProtocolNumber)
	if err != nil {
		pc.Close()
		return err
	}
	o.mu.Lock()
	o.servers = append(o.servers, pc, l)
	o.mu.Unlock()
	o.wg.Add(2)
	go o.serveDNSUDP(pc)
	go o.serveDNSTCP(l)
	return nil
}

func (o *outbound) serveDNSUDP(pc *gonet.UDPConn) {
	defer o.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case o.queries <- struct{}{}:
		default:
			continue
		}
		msg := append([]byte(nil), buf[:n]...)
		if !o.startQuery() {
			return
		}
		go func() {
			defer o.endQuery()
			if answer := o.answerDNS(msg, dnsMaxUDP); answer != nil {
				pc.WriteTo(answer, from)
			}
		}()
	}
}

func (o *outbound) startQuery() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		<-o.queries
		return false
	}
	o.wg.Add(1)
	return true
}

func (o *outbound) endQuery() {
	<-o.queries
	o.wg.Done()
}

func (o *outbound) serveDNSTCP(l *gonet.TCPListener) {
	defer o.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if err := o.admit(); err != nil {
			c.Close()
			continue
		}
		f := &flow{conns: []io.Closer{c}}
		if !o.attach(f) {
			o.finish(f)
			return
		}
		go func() {
			defer o.finish(f)
			o.serveDNSConn(c)
		}()
	}
}

// serveDNSConn answers the queries of one DNS-over-TCP connection, each
// framed by its two-byte length.
func (o *outbound) serveDNSConn(c net.Conn) {
	var size [2]byte
	for {
		c.SetReadDeadline(time.Now().Add(dnsIdleTimeout))
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		answer := o.answerDNS(msg, 0)
		if answer == nil {
			continue
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(answer))), answer...)); err != nil {
			return
		}
	}
}

// answerDNS answers one query: the gateway's name, then the names the
// policy allows (A records from the resolver, the host's loopback shown
// as the gateway), REFUSED for other names and NOTIMP for other
// opcodes, classes and types. AAAA queries have no answers: the uplink
// is IPv4 only. It returns nil for a message to drop.
func (o *outbound) answerDNS(msg []byte, limit int) []byte {
	q, err := parseDNSQuery(msg)
	var bad *dnsFormatError
	switch {
	case errors.As(err, &bad):
		return dnsAnswer(dnsQuery{id: bad.id, flags: bad.flags}, dnsFormErr, nil, limit)
	case err != nil:
		return nil
	case q.flags&dnsOpcodeMask != 0 || q.qclass != dnsClassIN:
		return dnsAnswer(q, dnsNotImp, nil, limit)
	}
	var rules []Rule
	if q.name != GatewayName {
		if rules = o.policy.nameRules(q.name); rules == nil {
			o.logf("refused dns query for %q: not allowed", q.name)
			return dnsAnswer(q, dnsRefused, nil, limit)
		}
	}
	switch q.qtype {
	case dnsTypeA:
	case dnsTypeAAAA:
		return dnsAnswer(q, dnsNoError, nil, limit)
	default:
		return dnsAnswer(q, dnsNotImp, nil, limit)
	}
	if q.name == GatewayName {
		return dnsAnswer(q, dnsNoError, []netip.Addr{gatewayIP}, limit)
	}
	ctx, cancel := context.WithTimeout(o.ctx, dnsLookupTimeout)
	addrs, err := o.policy.resolve(ctx, q.name)
	cancel()
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return dnsAnswer(q, dnsNXDomain, nil, limit)
	case err != nil:
		o.logf("dns query for %q: %v", q.name, err)
		return dnsAnswer(q, dnsServFail, nil, limit)
	}
	answer := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		if !a.Is4() {
			continue
		}
		if a.IsLoopback() {
			a = gatewayIP
		}
		answer = append(answer, a)
	}
	o.policy.learn(answer, rules)
	return dnsAnswer(q, dnsNoError, answer, limit)
}
