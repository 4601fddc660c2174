package netstack

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// SizeofIfreq is struct ifreq: a name of IFNAMSIZ bytes and a 24-byte
// union.
const SizeofIfreq = unix.IFNAMSIZ + 24

// ifreqSetters are the ioctls that change an interface: without
// CAP_NET_ADMIN Linux refuses them with EPERM, and kvmbox refuses them
// to everyone, as the sandbox's interfaces are fixed. The address ones
// are the inet families' own.
var ifreqSetters = map[uint32]bool{
	unix.SIOCSIFFLAGS: true, unix.SIOCSIFMETRIC: true, unix.SIOCSIFMTU: true, unix.SIOCSIFHWADDR: true,
	unix.SIOCSIFSLAVE: true, unix.SIOCADDMULTI: true, unix.SIOCDELMULTI: true, unix.SIOCSIFHWBROADCAST: true,
	unix.SIOCSIFMAP: true, unix.SIOCSIFTXQLEN: true, unix.SIOCSIFNAME: true, unix.SIOCSIFPFLAGS: true,
}

var inetSetters = map[uint32]bool{
	unix.SIOCSIFADDR: true, unix.SIOCSIFBRDADDR: true, unix.SIOCSIFNETMASK: true, unix.SIOCSIFDSTADDR: true,
}

// inetGetters are devinet_ioctl's: an AF_INET socket's alone.
var inetGetters = map[uint32]bool{
	unix.SIOCGIFADDR: true, unix.SIOCGIFBRDADDR: true, unix.SIOCGIFNETMASK: true, unix.SIOCGIFDSTADDR: true,
}

// IsIfreqIoctl says whether cmd is an interface ioctl taking a struct
// ifreq that a socket of family answers; others are ENOTTY.
func IsIfreqIoctl(family int, cmd uint32) bool {
	switch cmd {
	case unix.SIOCGIFFLAGS, unix.SIOCGIFINDEX, unix.SIOCGIFNAME, unix.SIOCGIFMTU, unix.SIOCGIFHWADDR,
		unix.SIOCGIFTXQLEN, unix.SIOCGIFMETRIC, unix.SIOCGIFMAP:
		return true
	}
	if ifreqSetters[cmd] {
		return true
	}
	if inetGetters[cmd] {
		return family == unix.AF_INET
	}
	return inetSetters[cmd] && (family == unix.AF_INET || family == unix.AF_INET6)
}

// IfreqIoctl answers an interface ioctl on ifr, a struct ifreq read
// from the guest, which is written back on success, as dev_ioctl and
// devinet_ioctl do: the name is cut to IFNAMSIZ-1 bytes, an unknown one
// is ENODEV, an interface without an IPv4 address EADDRNOTAVAIL for the
// address ioctls.
func (st *Stack) IfreqIoctl(cmd uint32, ifr []byte) error {
	if ifreqSetters[cmd] || inetSetters[cmd] {
		return unix.EPERM
	}
	ifaces, err := st.Interfaces()
	if err != nil {
		return err
	}
	if cmd == unix.SIOCGIFNAME {
		index := int32(binary.LittleEndian.Uint32(ifr[unix.IFNAMSIZ:]))
		for _, ifc := range ifaces {
			if ifc.Index == index {
				clear(ifr[:unix.IFNAMSIZ])
				copy(ifr[:unix.IFNAMSIZ-1], ifc.Name)
				return nil
			}
		}
		return unix.ENODEV
	}
	ifr[unix.IFNAMSIZ-1] = 0
	name := cString(ifr[:unix.IFNAMSIZ])
	var ifc *Interface
	for i := range ifaces {
		if ifaces[i].Name == name {
			ifc = &ifaces[i]
		}
	}
	if ifc == nil {
		return unix.ENODEV
	}
	u := ifr[unix.IFNAMSIZ:]
	switch cmd {
	case unix.SIOCGIFFLAGS:
		binary.LittleEndian.PutUint16(u, uint16(ifc.Flags))
	case unix.SIOCGIFINDEX:
		binary.LittleEndian.PutUint32(u, uint32(ifc.Index))
	case unix.SIOCGIFMTU:
		binary.LittleEndian.PutUint32(u, ifc.MTU)
	case unix.SIOCGIFTXQLEN:
		binary.LittleEndian.PutUint32(u, txQueueLen)
	case unix.SIOCGIFMETRIC:
		binary.LittleEndian.PutUint32(u, 0)
	case unix.SIOCGIFMAP:
		clear(u)
	case unix.SIOCGIFHWADDR:
		clear(u[:16])
		binary.LittleEndian.PutUint16(u, ifc.ARPType)
		copy(u[2:], ifc.HWAddr[:])
	default:
		var a *IfAddr
		for i := range ifc.Addrs {
			if ifc.Addrs[i].Is4() {
				a = &ifc.Addrs[i]
				break
			}
		}
		if a == nil {
			return unix.EADDRNOTAVAIL
		}
		var ip []byte
		switch cmd {
		case unix.SIOCGIFADDR, unix.SIOCGIFDSTADDR:
			ip = a.Prefix.Addr().AsSlice()
		case unix.SIOCGIFNETMASK:
			ip = a.Netmask()
		case unix.SIOCGIFBRDADDR:
			ip = make([]byte, 4)
			if b, ok := ifc.broadcast(*a); ok {
				ip = b.AsSlice()
			}
		}
		putSockaddrIn(u, ip)
	}
	return nil
}

// putSockaddrIn writes a struct sockaddr_in of ip, port 0.
func putSockaddrIn(b, ip []byte) {
	clear(b[:unix.SizeofSockaddrInet4])
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	copy(b[4:8], ip)
}

// IfConf is SIOCGIFCONF (inet_gifconf for each interface): a struct
// ifreq with the name and sockaddr_in of each IPv4 address, as many as
// room bytes hold; with count set, only their total size.
func (st *Stack) IfConf(room int, count bool) ([]byte, int, error) {
	ifaces, err := st.Interfaces()
	if err != nil {
		return nil, 0, err
	}
	var out []byte
	total := 0
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			if !a.Is4() {
				continue
			}
			if count {
				total += SizeofIfreq
				continue
			}
			if room-total < SizeofIfreq {
				return out, total, nil
			}
			r := make([]byte, SizeofIfreq)
			copy(r[:unix.IFNAMSIZ-1], ifc.Name)
			putSockaddrIn(r[unix.IFNAMSIZ:], a.Prefix.Addr().AsSlice())
			out = append(out, r...)
			total += SizeofIfreq
		}
	}
	return out, total, nil
}
