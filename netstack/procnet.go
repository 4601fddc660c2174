package netstack

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// registry holds the sandbox's open Unix and inet sockets.
type registry struct {
	mu    sync.Mutex
	socks map[any]struct{}
}

func (r *registry) add(s any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.socks == nil {
		r.socks = make(map[any]struct{})
	}
	r.socks[s] = struct{}{}
}

func (r *registry) remove(s any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.socks, s)
}

// list returns the sockets of type T by inode number, the order they
// were made in.
func list[T interface{ inode() uint64 }](r *registry) []T {
	r.mu.Lock()
	var out []T
	for s := range r.socks {
		if t, ok := s.(T); ok {
			out = append(out, t)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b T) int { return int(a.inode()) - int(b.inode()) })
	return out
}

func (s *Socket) inode() uint64     { return s.ino }
func (s *InetSocket) inode() uint64 { return s.ino }

// ProcNet renders /proc/net/name in Linux's format. The socket tables
// list the sockets open in the sandbox (not those in TIME-WAIT), with
// the fields the stack does not keep (timers, retransmissions, drops,
// kernel addresses) as 0; a UDP row's first column is its position, not
// Linux's hash bucket.
func (st *Stack) ProcNet(name string) []byte {
	var b bytes.Buffer
	switch name {
	case "dev":
		st.procNetDev(&b)
	case "if_inet6":
		st.procNetIfInet6(&b)
	case "route":
		st.procNetRoute(&b)
	case "tcp", "tcp6", "udp", "udp6":
		st.procNetInet(&b, name)
	case "unix":
		st.procNetUnix(&b)
	}
	return b.Bytes()
}

func (st *Stack) procNetDev(b *bytes.Buffer) {
	b.WriteString("Inter-|   Receive                                                |  Transmit\n")
	b.WriteString(" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	ifaces, _ := st.Interfaces()
	for _, i := range ifaces {
		s := i.Stats
		fmt.Fprintf(b, "%6s:%8d %7d %4d %4d %4d %5d %10d %9d %8d %7d %4d %4d %4d %5d %7d %10d\n",
			i.Name, s.RxBytes, s.RxPackets, 0, 0, 0, 0, 0, 0,
			s.TxBytes, s.TxPackets, 0, s.TxDropped, 0, 0, 0, 0)
	}
}

// IPv6 address scopes as if_inet6 shows them (IPV6_ADDR_*).
const (
	ipv6ScopeGlobal   = 0x00
	ipv6ScopeLoopback = 0x10
	ipv6ScopeLink     = 0x20
)

func (st *Stack) procNetIfInet6(b *bytes.Buffer) {
	ifaces, _ := st.Interfaces()
	for _, i := range ifaces {
		for _, a := range i.Addrs {
			if a.Is4() {
				continue
			}
			scope := ipv6ScopeGlobal
			switch addr := a.Prefix.Addr(); {
			case addr.IsLoopback():
				scope = ipv6ScopeLoopback
			case addr.IsLinkLocalUnicast():
				scope = ipv6ScopeLink
			}
			a16 := a.Prefix.Addr().As16()
			fmt.Fprintf(b, "%x %02x %02x %02x %02x %8s\n", a16[:], i.Index, a.Prefix.Bits(), scope, unix.IFA_F_PERMANENT, i.Name)
		}
	}
}

// padded writes line padded with spaces to width, and a newline, as
// seq_pad does.
func padded(b *bytes.Buffer, width int, line string) {
	fmt.Fprintf(b, "%-*s\n", width, line)
}

// hexAddr4 is an IPv4 address as /proc/net prints it: the four bytes in
// network order read as a little-endian number.
func hexAddr4(a []byte) string {
	return fmt.Sprintf("%08X", binary.LittleEndian.Uint32(a))
}

func (st *Stack) procNetRoute(b *bytes.Buffer) {
	padded(b, 127, "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT")
	ifaces, _ := st.Interfaces()
	routes, _ := st.Routes()
	names := map[int32]string{}
	for _, i := range ifaces {
		names[i.Index] = i.Name
	}
	for _, r := range routes {
		if r.Table != unix.RT_TABLE_MAIN || !r.Dst.Addr().Is4() {
			continue
		}
		flags := unix.RTF_UP
		gw := make([]byte, 4)
		if r.Gateway.IsValid() {
			flags |= unix.RTF_GATEWAY
			gw = r.Gateway.AsSlice()
		}
		if r.Dst.Bits() == 32 {
			flags |= unix.RTF_HOST
		}
		mask := IfAddr{Prefix: r.Dst}.Netmask()
		padded(b, 127, fmt.Sprintf("%s\t%s\t%s\t%04X\t%d\t%d\t%d\t%s\t%d\t%d\t%d",
			names[r.NIC], hexAddr4(r.Dst.Addr().AsSlice()), hexAddr4(gw), flags, 0, 0, 0, hexAddr4(mask), 0, 0, 0))
	}
}

// inetEnd is a socket address as /proc/net/tcp and udp print it: the
// address in hex (each 32-bit word as hexAddr4 prints it) and the port.
func inetEnd(family int, sa []byte) string {
	var addr []byte
	var port uint16
	if family == unix.AF_INET {
		addr = make([]byte, 4)
		if len(sa) >= unix.SizeofSockaddrInet4 {
			port, addr = binary.BigEndian.Uint16(sa[2:]), sa[4:8]
		}
	} else {
		addr = make([]byte, 16)
		if len(sa) >= unix.SizeofSockaddrInet6 {
			port, addr = binary.BigEndian.Uint16(sa[2:]), sa[8:24]
		}
	}
	var s strings.Builder
	for i := 0; i < len(addr); i += 4 {
		s.WriteString(hexAddr4(addr[i : i+4]))
	}
	fmt.Fprintf(&s, ":%04X", port)
	return s.String()
}

// Linux's TCP states as /proc/net/tcp numbers them; UDP sockets are
// ESTABLISHED when connected and CLOSE otherwise.
const (
	tcpEstablished = 1
	tcpClose       = 7
)

// userHZ is USER_HZ, the unit of /proc/net/tcp's rto and ato.
const userHZ = 100

func (st *Stack) procNetInet(b *bytes.Buffer, name string) {
	family, typ := unix.AF_INET, unix.SOCK_STREAM
	if strings.HasSuffix(name, "6") {
		family = unix.AF_INET6
	}
	if strings.HasPrefix(name, "udp") {
		typ = unix.SOCK_DGRAM
	}
	header := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	if typ == unix.SOCK_DGRAM {
		header = " " + header
	}
	if family == unix.AF_INET6 {
		header = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	}
	if typ == unix.SOCK_DGRAM {
		header += " ref pointer drops"
	}
	switch {
	case family == unix.AF_INET6:
		b.WriteString(header + "\n")
	case typ == unix.SOCK_STREAM:
		padded(b, 149, header)
	default:
		padded(b, 127, header)
	}
	n := 0
	for _, s := range list[*InetSocket](&st.sockets) {
		if s.family != family || s.typ != typ || (typ == unix.SOCK_DGRAM && s.protocol != unix.IPPROTO_UDP) || !s.hashed() {
			continue
		}
		local := inetEnd(family, s.Name())
		peer, err := s.PeerName()
		if err != nil {
			peer = nil
		}
		remote := inetEnd(family, peer)
		// A listener's rx_queue would count the connections waiting
		// for accept, which the stack does not give: it shows 0.
		in, out, err := s.QueueSizes()
		if err != nil {
			in, out = 0, 0
		}
		var row string
		if typ == unix.SOCK_STREAM {
			info := s.tcpInfo()
			ssthresh := int64(info.Snd_ssthresh)
			if ssthresh >= 0x7fffffff || info.State == uint8(tcp.StateListen) {
				ssthresh = -1
			}
			cwnd := info.Snd_cwnd
			if cwnd == 0 {
				cwnd = 10 // TCP_INIT_CWND, before a connection has one
			}
			row = fmt.Sprintf("%4d: %s %s %02X %08X:%08X %02X:%08X %08X %5d %8d %d %d %016x %d %d %d %d %d",
				n, local, remote, info.State, out, in, 0, 0, 0, s.uid, 0, s.ino, 1, 0,
				info.Rto*userHZ/1000000, 0, 0, cwnd, ssthresh)
		} else {
			state := tcpClose
			if peer != nil {
				state = tcpEstablished
			}
			row = fmt.Sprintf("%5d: %s %s %02X %08X:%08X %02X:%08X %08X %5d %8d %d %d %016x %d",
				n, local, remote, state, out, in, 0, 0, 0, s.uid, 0, s.ino, 2, 0, 0)
		}
		if family == unix.AF_INET6 {
			b.WriteString(row + "\n")
		} else if typ == unix.SOCK_STREAM {
			padded(b, 149, row)
		} else {
			padded(b, 127, row)
		}
		n++
	}
}

// hashed says whether Linux would list the socket: TCP listening or in
// a connection, UDP bound.
func (s *InetSocket) hashed() bool {
	if s.typ == unix.SOCK_DGRAM {
		a, err := s.ep.GetLocalAddress()
		return err == nil && a.Port != 0
	}
	switch tcp.EndpointState(s.ep.State()) {
	case tcp.StateInitial, tcp.StateBound, tcp.StateClose, tcp.StateError, tcp.StateConnecting:
		return false
	}
	return true
}

// Socket states of struct socket (SS_*), as /proc/net/unix shows them.
const (
	ssUnconnected = 1
	ssConnecting  = 2
	ssConnected   = 3
)

// soAcceptCon is __SO_ACCEPTCON, the flag of a listening socket.
const soAcceptCon = 1 << 16

func (st *Stack) procNetUnix(b *bytes.Buffer) {
	b.WriteString("Num       RefCount Protocol Flags    Type St Inode Path\n")
	socks := list[*Socket](&st.sockets)
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range socks {
		if s.released {
			continue
		}
		// A datagram socket counts as connected once it or a peer
		// connected, as Linux marks both ends established.
		flags, state, refs := 0, ssUnconnected, 2
		switch {
		case s.state == listening:
			flags = soAcceptCon
		case s.file == nil:
			state = ssConnecting
		case s.state == connected || s.peer != nil || len(s.dgramFrom) > 0:
			state, refs = ssConnected, 3
		}
		fmt.Fprintf(b, "%016x: %08X %08X %08X %04X %02X %5d", 0, refs, 0, flags, s.typ, state, s.ino)
		if len(s.addr) > sunPathOffset {
			name := s.addr[sunPathOffset:]
			if name[0] == 0 {
				b.WriteByte(' ')
				b.Write(bytes.ReplaceAll(name, []byte{0}, []byte{'@'}))
			} else {
				b.WriteByte(' ')
				b.Write(bytes.TrimRight(name, "\x00"))
			}
		}
		b.WriteByte('\n')
	}
}

// sunPathOffset is where sockaddr_un's path starts.
const sunPathOffset = 2
