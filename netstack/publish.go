package netstack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// PublishedPort maps a port of the host to a port of the sandbox, as
// docker run -p does: connections and datagrams that reach the host at
// HostAddr:HostPort arrive at GuestAddr:Port in the sandbox.
type PublishedPort struct {
	// HostAddr is the host address to listen on; the zero Addr listens
	// on every address, IPv4 and IPv6.
	HostAddr netip.Addr
	// HostPort is the host port; 0 takes a free one (PublishedAddrs
	// reports it).
	HostPort uint16
	// Port is the sandbox's port.
	Port uint16
	// UDP publishes a UDP port; otherwise the port is TCP.
	UDP bool
}

// String writes p as docker run -p takes it: [HOSTADDR:]HOSTPORT:PORT/PROTO.
func (p PublishedPort) String() string {
	proto := "tcp"
	if p.UDP {
		proto = "udp"
	}
	ports := fmt.Sprintf("%d:%d/%s", p.HostPort, p.Port, proto)
	if !p.HostAddr.IsValid() {
		return ports
	}
	if p.HostAddr.Is6() {
		return "[" + p.HostAddr.String() + "]:" + ports
	}
	return p.HostAddr.String() + ":" + ports
}

// udpFlowIdle is how long a UDP flow of a published port lives without
// a datagram either way, as Docker's userland proxy keeps its flows.
var udpFlowIdle = 90 * time.Second

// maxUDPFlows bounds the flows of one published UDP port: datagrams from
// further clients are dropped until a flow ends, as a full connection
// tracking table drops them. Each flow holds a buffer of maxDatagram
// bytes while it waits for the sandbox's answers.
const maxUDPFlows = 1024

// maxDatagram bounds a UDP datagram's payload (65,507 bytes over IPv4).
const maxDatagram = 64 << 10

// publisher serves the published ports of one Stack: host listeners, and
// the connections and flows relayed between them and the router.
type publisher struct {
	router    *stack.Stack
	listeners []io.Closer
	addrs     []netip.AddrPort
	udp       []*udpPort
	wg        sync.WaitGroup

	// done is closed by stop, to end connects in progress.
	done chan struct{}

	mu     sync.Mutex
	closed bool
	// conns are the open host connections and router endpoints, closed
	// by stop to end their relays.
	conns map[io.Closer]struct{}
}

// publish listens on the host for every port of ports. On failure nothing
// stays open.
func publish(router *stack.Stack, ports []PublishedPort) (*publisher, error) {
	p := &publisher{router: router, done: make(chan struct{}), conns: make(map[io.Closer]struct{})}
	for _, m := range ports {
		if err := p.listen(m); err != nil {
			p.stop()
			return nil, fmt.Errorf("publish %s: %w", m, err)
		}
	}
	for i, l := range p.listeners {
		m := ports[i]
		p.wg.Add(1)
		if m.UDP {
			u := &udpPort{p: p, host: l.(*net.UDPConn), port: m.Port, flows: make(map[netip.AddrPort]*udpFlow)}
			p.udp = append(p.udp, u)
			go u.serve()
		} else {
			go p.serveTCP(l.(net.Listener), m.Port)
		}
	}
	return p, nil
}

func (p *publisher) listen(m PublishedPort) error {
	if m.Port == 0 {
		return errors.New("sandbox port 0")
	}
	host := ""
	if m.HostAddr.IsValid() {
		if m.HostAddr.Zone() != "" {
			return errors.New("zoned host address")
		}
		host = m.HostAddr.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(m.HostPort)))
	var l io.Closer
	var local net.Addr
	if m.UDP {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		l, local = pc, pc.LocalAddr()
	} else {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		l, local = ln, ln.Addr()
	}
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		l.Close()
		return err
	}
	p.listeners = append(p.listeners, l)
	p.addrs = append(p.addrs, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	return nil
}

// stop closes the listeners and every relayed connection, and waits for
// the relays to end.
func (p *publisher) stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	for _, l := range p.listeners {
		l.Close()
	}
	p.wg.Wait()
}

// backoff waits after a failed accept or read of a host socket (the
// process out of descriptors, say) before the next try, longer after each
// failure up to a second. It reports false once the socket is closed or
// the publisher stops.
func (p *publisher) backoff(err error, wait *time.Duration) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	*wait = min(max(2**wait, 5*time.Millisecond), time.Second)
	t := time.NewTimer(*wait)
	defer t.Stop()
	select {
	case <-p.done:
		return false
	case <-t.C:
		return true
	}
}

// track records c as open until untrack; false once stop began (the
// caller closes c itself).
func (p *publisher) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *publisher) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// peerInSandbox is the address a host client appears from in the
// sandbox. An IPv4 client outside the uplink's subnet keeps its own
// address. Others become the gateway: a loopback client (127.0.0.1 in
// the sandbox would be the sandbox itself), one in the uplink subnet
// (which could be the sandbox's own address), and IPv6 clients (the
// sandbox's eth0 has no IPv6 address to answer them from).
func peerInSandbox(client netip.AddrPort) tcpip.Address {
	a := client.Addr().Unmap()
	if a.Is4() && !a.IsLoopback() && !a.IsUnspecified() && !a.IsMulticast() && a.As4() != [4]byte{255, 255, 255, 255} {
		b := a.As4()
		if [3]byte{b[0], b[1], b[2]} != [3]byte{10, 0, 2} {
			return tcpip.AddrFrom4(b)
		}
	}
	return GatewayAddr
}

// routerEndpoint makes a router endpoint of proto from the sandbox's view
// of client: bound to its address and port, or to a free port of that
// address when another flow holds the port (two loopback clients with the
// same port both appear as the gateway).
func (p *publisher) routerEndpoint(proto tcpip.TransportProtocolNumber, client netip.AddrPort) (tcpip.Endpoint, *waiter.Queue, error) {
	var wq waiter.Queue
	ep, terr := p.router.NewEndpoint(proto, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, nil, errors.New(terr.String())
	}
	local := tcpip.FullAddress{NIC: routerNIC, Addr: peerInSandbox(client), Port: client.Port()}
	if terr := ep.Bind(local); terr != nil {
		local.Port = 0
		if terr := ep.Bind(local); terr != nil {
			ep.Close()
			return nil, nil, errors.New(terr.String())
		}
	}
	return ep, &wq, nil
}

func (p *publisher) serveTCP(l net.Listener, port uint16) {
	defer p.wg.Done()
	var wait time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if !p.backoff(err, &wait) {
				return
			}
			continue
		}
		wait = 0
		hc := c.(*net.TCPConn)
		if !p.track(hc) {
			hc.Close()
			return
		}
		p.wg.Add(1)
		go p.relayTCP(hc, port)
	}
}

// relayTCP connects to the sandbox's port from the client's address and
// copies both ways. A refused connection resets the client's.
func (p *publisher) relayTCP(hc *net.TCPConn, port uint16) {
	defer p.wg.Done()
	defer p.untrack(hc)
	client := hc.RemoteAddr().(*net.TCPAddr).AddrPort()
	ep, gc, err := p.dialSandbox(client, port)
	if err != nil {
		hc.SetLinger(0)
		hc.Close()
		return
	}
	defer p.untrack(gc)
	// Each direction passes the end of its stream on as a half-close,
	// and an error (a reset, or the other side gone) as a reset of both.
	var once sync.Once
	reset := func() {
		once.Do(func() {
			hc.SetLinger(0)
			hc.Close()
			ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
			gc.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.Copy(gc, hc); err != nil {
			reset()
			return
		}
		gc.CloseWrite()
	}()
	if _, err := io.Copy(hc, gc); err != nil {
		reset()
	} else {
		hc.CloseWrite()
	}
	<-done
	hc.Close()
	gc.Close()
}

// dialSandbox opens a router TCP connection from client's address in the
// sandbox to GuestAddr:port, tracked until the caller untracks it.
func (p *publisher) dialSandbox(client netip.AddrPort, port uint16) (tcpip.Endpoint, *gonet.TCPConn, error) {
	ep, wq, err := p.routerEndpoint(tcp.ProtocolNumber, client)
	if err != nil {
		return nil, nil, err
	}
	gc := gonet.NewTCPConn(wq, ep)
	if !p.track(gc) {
		gc.Close()
		return nil, nil, net.ErrClosed
	}
	entry, connected := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr := ep.Connect(tcpip.FullAddress{NIC: routerNIC, Addr: GuestAddr, Port: port})
	if _, started := terr.(*tcpip.ErrConnectStarted); started {
		select {
		case <-connected:
			terr = ep.LastError()
		case <-p.done:
			terr = &tcpip.ErrAborted{}
		}
	}
	if terr != nil {
		p.untrack(gc)
		gc.Close()
		return nil, nil, errors.New(terr.String())
	}
	return ep, gc, nil
}

// udpFlow is one host client's datagrams to a published UDP port: a
// router endpoint bound to the client's address in the sandbox and
// connected to the sandbox's port.
type udpFlow struct {
	conn *gonet.UDPConn
	// lastSent is when the client last sent a datagram (UnixNano),
	// written under udpPort.mu.
	lastSent atomic.Int64
}

// udpPort is one published UDP port: its host socket and its flows.
type udpPort struct {
	p    *publisher
	host *net.UDPConn
	port uint16

	mu    sync.Mutex
	flows map[netip.AddrPort]*udpFlow
}

func (u *udpPort) serve() {
	defer u.p.wg.Done()
	buf := make([]byte, maxDatagram)
	var wait time.Duration
	for {
		n, client, err := u.host.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !u.p.backoff(err, &wait) {
				return
			}
			continue
		}
		wait = 0
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		if f := u.flow(client); f != nil {
			f.conn.Write(buf[:n])
		}
	}
}

// flow returns client's flow, made if it has none, with its lastSent
// now; nil when no flow can be made.
func (u *udpPort) flow(client netip.AddrPort) *udpFlow {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.flows[client]
	if f == nil {
		if len(u.flows) >= maxUDPFlows {
			return nil
		}
		if f = u.p.newUDPFlow(client, u.port); f == nil {
			return nil
		}
		u.flows[client] = f
		u.p.wg.Add(1)
		go u.answer(f, client)
	}
	f.lastSent.Store(time.Now().UnixNano())
	return f
}

func (p *publisher) newUDPFlow(client netip.AddrPort, port uint16) *udpFlow {
	ep, wq, err := p.routerEndpoint(udp.ProtocolNumber, client)
	if err != nil {
		return nil
	}
	if terr := ep.Connect(tcpip.FullAddress{NIC: routerNIC, Addr: GuestAddr, Port: port}); terr != nil {
		ep.Close()
		return nil
	}
	f := &udpFlow{conn: gonet.NewUDPConn(wq, ep)}
	if !p.track(f.conn) {
		f.conn.Close()
		return nil
	}
	return f
}

// answer passes the sandbox's datagrams of f back to client until f has
// been idle either way for udpFlowIdle, or fails (the sandbox's port is
// closed), or the publisher stops.
func (u *udpPort) answer(f *udpFlow, client netip.AddrPort) {
	defer u.p.wg.Done()
	defer u.p.untrack(f.conn)
	defer f.conn.Close()
	buf := make([]byte, maxDatagram)
	lastAnswer := time.Now().UnixNano()
	for {
		f.conn.SetReadDeadline(time.Unix(0, max(lastAnswer, f.lastSent.Load())).Add(udpFlowIdle))
		n, err := f.conn.Read(buf)
		if err == nil {
			lastAnswer = time.Now().UnixNano()
			u.host.WriteToUDPAddrPort(buf[:n], client)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !u.expire(f, client, lastAnswer) {
			continue
		}
		u.mu.Lock()
		if u.flows[client] == f {
			delete(u.flows, client)
		}
		u.mu.Unlock()
		return
	}
}

// expire reports whether f has been idle for udpFlowIdle, and if so
// removes it, so that the client's next datagram makes a new flow.
func (u *udpPort) expire(f *udpFlow, client netip.AddrPort, lastAnswer int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if time.Since(time.Unix(0, max(lastAnswer, f.lastSent.Load()))) < udpFlowIdle {
		return false
	}
	delete(u.flows, client)
	return true
}

// PublishedAddrs reports the host address each published port listens
// on, in the order of Options.Publish: with HostPort 0, the port taken.
func (st *Stack) PublishedAddrs() []netip.AddrPort {
	if st.ports == nil {
		return nil
	}
	return append([]netip.AddrPort(nil), st.ports.addrs...)
}

// startPublishing makes the TCP/IP stack and the router now, and
// publishes opts.Publish on them.
func (st *Stack) startPublishing() error {
	if _, err := st.inetStack(); err != nil {
		return err
	}
	p, err := publish(st.router, st.opts.Publish)
	if err != nil {
		return err
	}
	st.ports = p
	return nil
}
