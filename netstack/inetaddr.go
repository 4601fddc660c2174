package netstack

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Socket address lengths: sockaddr_in, sockaddr_in6, and the RFC 2133
// sockaddr_in6 without sin6_scope_id, which Linux still accepts.
const (
	sockaddrInLen  = unix.SizeofSockaddrInet4
	sockaddrIn6Len = unix.SizeofSockaddrInet6
	sin6LenRFC2133 = 24
	// familyLen is the length of sa_family, the least an address has.
	familyLen = 2
)

// loopbackNIC is the index of the loopback interface: 1, as lo's is on
// Linux, so that a scope id names it the same way.
const loopbackNIC = 1

// AddrUse says what a guest's socket address is for: Linux checks it
// differently in bind, connect and sendto.
type AddrUse int

// The uses of a socket address.
const (
	ForBind AddrUse = iota
	ForConnect
	ForSend
	// ForPing is a ping socket's destination, whose port is ignored.
	ForPing
)

// ParseInetAddr validates the socket address b that a guest gave a
// socket of family (AF_INET or AF_INET6) and type typ for use, with the
// errno Linux gives (inet_bind, inet6_bind, tcp_v4_connect,
// tcp_v6_connect, ip4_datagram_connect, ip6_datagram_connect,
// udp_sendmsg, udpv6_sendmsg). An IPv4 address given to an AF_INET6
// datagram socket comes back as the v4-mapped IPv6 address.
// A destination of the unspecified address is the loopback address, as
// on Linux. unspecified reports an AF_UNSPEC address that means "no
// address" (an IPv6 datagram socket's send to its peer); callers handle
// AF_UNSPEC in connect before asking.
func ParseInetAddr(family, typ int, b []byte, use AddrUse) (addr tcpip.FullAddress, unspecified bool, err error) {
	if len(b) < familyLen {
		return addr, false, unix.EINVAL
	}
	saFamily := int(binary.LittleEndian.Uint16(b))
	if family == unix.AF_INET {
		return parseInet4(typ, b, saFamily, use)
	}
	if typ == unix.SOCK_DGRAM && use != ForBind {
		switch saFamily {
		case unix.AF_INET:
			a, _, err := parseInet4(typ, b, saFamily, use)
			if err != nil {
				return a, false, err
			}
			ip := a.Addr.As4()
			return tcpip.FullAddress{Addr: mapped(ip), Port: a.Port}, false, nil
		case unix.AF_UNSPEC:
			if use >= ForSend {
				return addr, true, nil
			}
		}
	}
	if len(b) < sin6LenRFC2133 {
		return addr, false, unix.EINVAL
	}
	if saFamily != unix.AF_INET6 {
		if use >= ForSend {
			return addr, false, unix.EINVAL
		}
		return addr, false, unix.EAFNOSUPPORT
	}
	addr.Port = binary.BigEndian.Uint16(b[2:])
	var ip [16]byte
	copy(ip[:], b[8:24])
	addr.Addr = tcpip.AddrFrom16(ip)
	var scope uint32
	if len(b) >= sockaddrIn6Len {
		scope = binary.LittleEndian.Uint32(b[24:])
	}
	if needsScope(ip) {
		switch {
		case scope == 0:
			return addr, false, unix.EINVAL
		case scope != loopbackNIC:
			return addr, false, unix.ENODEV
		}
		addr.NIC = loopbackNIC
	}
	if use == ForSend && addr.Port == 0 {
		return addr, false, unix.EINVAL
	}
	if use != ForBind {
		switch {
		case ip == [16]byte{}:
			addr.Addr = tcpip.AddrFrom16([16]byte{15: 1})
		case isMapped(addr.Addr) && [4]byte(ip[12:]) == [4]byte{}:
			addr.Addr = mapped(loopback4)
		}
	}
	return addr, false, nil
}

// loopback4 is 127.0.0.1, where a destination of 0.0.0.0 goes.
var loopback4 = [4]byte{127, 0, 0, 1}

// parseInet4 validates a sockaddr_in given to an AF_INET socket (or an
// AF_INET6 datagram socket sending to or connecting to an IPv4 address).
func parseInet4(typ int, b []byte, saFamily int, use AddrUse) (tcpip.FullAddress, bool, error) {
	var addr tcpip.FullAddress
	if len(b) < sockaddrInLen {
		return addr, false, unix.EINVAL
	}
	addr.Port = binary.BigEndian.Uint16(b[2:])
	addr.Addr = tcpip.AddrFrom4([4]byte(b[4:8]))
	switch {
	case saFamily == unix.AF_INET:
	case saFamily != unix.AF_UNSPEC:
		return addr, false, unix.EAFNOSUPPORT
	case use == ForBind:
		// Old programs bind AF_UNSPEC to INADDR_ANY.
		if !addr.Addr.Unspecified() {
			return addr, false, unix.EAFNOSUPPORT
		}
	case use >= ForSend:
		// udp_sendmsg takes AF_UNSPEC for AF_INET.
	default:
		return addr, false, unix.EAFNOSUPPORT
	}
	if use == ForSend && typ == unix.SOCK_DGRAM && addr.Port == 0 {
		return addr, false, unix.EINVAL
	}
	if use != ForBind && addr.Addr.Unspecified() {
		addr.Addr = tcpip.AddrFrom4(loopback4)
	}
	return addr, false, nil
}

// needsScope reports whether ip is a link-local unicast or multicast
// address, which Linux binds and sends to only with an interface.
func needsScope(ip [16]byte) bool {
	return ip[0] == 0xfe && ip[1]&0xc0 == 0x80 || ip[0] == 0xff && ip[1]&0x0f == 0x02
}

// mapped returns the v4-mapped IPv6 address of ip (::ffff:a.b.c.d).
func mapped(ip [4]byte) tcpip.Address {
	var v6 [16]byte
	v6[10], v6[11] = 0xff, 0xff
	copy(v6[12:], ip[:])
	return tcpip.AddrFrom16(v6)
}

// isMapped reports whether a is a v4-mapped IPv6 address.
func isMapped(a tcpip.Address) bool {
	if a.Len() != 16 {
		return false
	}
	ip := a.As16()
	return ip[10] == 0xff && ip[11] == 0xff && [10]byte(ip[:10]) == [10]byte{}
}

// sockaddrOf is the address a getsockname, getpeername, accept or
// recvfrom of a socket of family returns for a: an IPv4 address on an
// AF_INET6 socket is shown v4-mapped, and an empty address is the
// unspecified one.
func sockaddrOf(family int, a tcpip.FullAddress) []byte {
	if family == unix.AF_INET {
		b := make([]byte, sockaddrInLen)
		binary.LittleEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], a.Port)
		if a.Addr.Len() == 4 {
			ip := a.Addr.As4()
			copy(b[4:], ip[:])
		} else if isMapped(a.Addr) {
			ip := a.Addr.As16()
			copy(b[4:], ip[12:])
		}
		return b
	}
	b := make([]byte, sockaddrIn6Len)
	binary.LittleEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], a.Port)
	switch a.Addr.Len() {
	case 4:
		ip := mapped(a.Addr.As4()).As16()
		copy(b[8:], ip[:])
	case 16:
		ip := a.Addr.As16()
		copy(b[8:], ip[:])
		if needsScope(ip) {
			binary.LittleEndian.PutUint32(b[24:], uint32(a.NIC))
		}
	}
	return b
}
