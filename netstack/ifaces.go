package netstack

import (
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Interface is one network interface of the sandbox as the interface
// ioctls, netlink and /proc/net show it, read from the TCP/IP stack.
type Interface struct {
	Index   int32
	Name    string
	Flags   uint32 // IFF_*
	MTU     uint32
	ARPType uint16 // ARPHRD_*
	HWAddr  [6]byte
	Addrs   []IfAddr
	Stats   IfStats
}

// IfAddr is an address of an interface.
type IfAddr struct {
	Prefix netip.Prefix
}

// Is4 says whether the address is IPv4.
func (a IfAddr) Is4() bool { return a.Prefix.Addr().Is4() }

// Broadcast is an IPv4 address's broadcast address (none for /31 and
// /32, as Linux leaves them without one).
func (a IfAddr) Broadcast() (netip.Addr, bool) {
	if !a.Is4() || a.Prefix.Bits() >= 31 {
		return netip.Addr{}, false
	}
	b := a.Prefix.Addr().As4()
	for i := a.Prefix.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b), true
}

// broadcast is the broadcast address an interface's IPv4 address has:
// none on loopback, whose address Linux configures without one.
func (i *Interface) broadcast(a IfAddr) (netip.Addr, bool) {
	if i.Loopback() {
		return netip.Addr{}, false
	}
	return a.Broadcast()
}

// Netmask is the address's prefix as a mask.
func (a IfAddr) Netmask() []byte {
	n := 4
	if !a.Is4() {
		n = 16
	}
	m := make([]byte, n)
	for i := range a.Prefix.Bits() {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// IfStats are an interface's packet counters.
type IfStats struct {
	RxPackets, RxBytes, TxPackets, TxBytes, TxDropped uint64
}

// Loopback says whether the interface is a loopback one.
func (i *Interface) Loopback() bool { return i.Flags&unix.IFF_LOOPBACK != 0 }

// Interfaces lists the sandbox's network interfaces by index, making its
// TCP/IP stack if there is none yet.
func (st *Stack) Interfaces() ([]Interface, error) {
	s, err := st.inetStack()
	if err != nil {
		return nil, err
	}
	return interfacesOf(s), nil
}

func interfacesOf(s *stack.Stack) []Interface {
	var out []Interface
	for id, info := range s.NICInfo() {
		ifc := Interface{Index: int32(id), Name: info.Name, MTU: info.MTU, ARPType: uint16(info.ARPHardwareType)}
		if info.Flags.Up {
			ifc.Flags |= unix.IFF_UP
		}
		if info.Flags.Running {
			ifc.Flags |= unix.IFF_RUNNING | unix.IFF_LOWER_UP
		}
		if info.Flags.Promiscuous {
			ifc.Flags |= unix.IFF_PROMISC
		}
		if info.Flags.Loopback {
			ifc.Flags |= unix.IFF_LOOPBACK
			ifc.ARPType = unix.ARPHRD_LOOPBACK
		} else {
			ifc.Flags |= unix.IFF_BROADCAST | unix.IFF_MULTICAST
			if info.ARPHardwareType == header.ARPHardwareNone {
				ifc.ARPType = unix.ARPHRD_ETHER
			}
		}
		copy(ifc.HWAddr[:], info.LinkAddress)
		for _, pa := range info.ProtocolAddresses {
			a, ok := netip.AddrFromSlice(pa.AddressWithPrefix.Address.AsSlice())
			if !ok {
				continue
			}
			ifc.Addrs = append(ifc.Addrs, IfAddr{Prefix: netip.PrefixFrom(a, pa.AddressWithPrefix.PrefixLen)})
		}
		// IPv4 first, then IPv6, each in the order added, as Linux
		// lists them.
		slices.SortStableFunc(ifc.Addrs, func(a, b IfAddr) int {
			return boolCmp(!a.Is4(), !b.Is4())
		})
		ifc.Stats = IfStats{
			RxPackets: info.Stats.Rx.Packets.Value(), RxBytes: info.Stats.Rx.Bytes.Value(),
			TxPackets: info.Stats.Tx.Packets.Value(), TxBytes: info.Stats.Tx.Bytes.Value(),
			TxDropped: info.Stats.TxPacketsDroppedNoBufferSpace.Value(),
		}
		out = append(out, ifc)
	}
	slices.SortFunc(out, func(a, b Interface) int { return int(a.Index - b.Index) })
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Route is an entry of one of the sandbox's routing tables as Linux
// would hold it: unix.RT_TABLE_MAIN has the stack's routes but those
// through a loopback interface; unix.RT_TABLE_LOCAL the routes Linux
// derives from each address (the address itself, an IPv4 subnet's
// broadcast address, and a loopback interface's whole subnet).
type Route struct {
	Table    uint8 // RT_TABLE_*
	Type     uint8 // RTN_*
	Scope    uint8 // RT_SCOPE_*
	Protocol uint8 // RTPROT_*
	Dst      netip.Prefix
	Gateway  netip.Addr // invalid when none
	PrefSrc  netip.Addr // invalid when none
	NIC      int32
	Metric   uint32 // the IPv6 metric (RTA_PRIORITY); IPv4 routes have none
}

// Linux's metrics of IPv6 routes: the kernel's own, and those added
// with a gateway (IP6_RT_PRIO_USER).
const (
	ip6RouteMetric = 256
	ip6UserMetric  = 1024
)

// Routes lists the sandbox's routes in the order Linux dumps them: the
// main table, then the local table, each by destination.
func (st *Stack) Routes() ([]Route, error) {
	s, err := st.inetStack()
	if err != nil {
		return nil, err
	}
	return routesOf(interfacesOf(s), s.GetRouteTable()), nil
}

func routesOf(ifaces []Interface, table []tcpip.Route) []Route {
	byIndex := make(map[int32]*Interface)
	for i := range ifaces {
		byIndex[ifaces[i].Index] = &ifaces[i]
	}
	var out []Route
	for _, r := range table {
		ifc := byIndex[int32(r.NIC)]
		if ifc == nil || ifc.Loopback() {
			continue
		}
		id := r.Destination.ID()
		dstAddr, ok := netip.AddrFromSlice(id.AsSlice())
		if !ok {
			continue
		}
		rt := Route{Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Protocol: unix.RTPROT_KERNEL, Scope: unix.RT_SCOPE_LINK,
			Dst: netip.PrefixFrom(dstAddr, r.Destination.Prefix()), NIC: ifc.Index}
		if gw, ok := netip.AddrFromSlice(r.Gateway.AsSlice()); ok && !gw.IsUnspecified() {
			rt.Gateway, rt.Protocol, rt.Scope = gw, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE
		}
		if dstAddr.Is4() {
			if rt.Scope == unix.RT_SCOPE_LINK {
				for _, a := range ifc.Addrs {
					if a.Is4() && rt.Dst.Contains(a.Prefix.Addr()) {
						rt.PrefSrc = a.Prefix.Addr()
						break
					}
				}
			}
		} else {
			rt.Scope, rt.Metric = unix.RT_SCOPE_UNIVERSE, ip6RouteMetric
			if rt.Gateway.IsValid() {
				rt.Metric = ip6UserMetric
			}
		}
		out = append(out, rt)
	}
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			addr := a.Prefix.Addr()
			if !a.Is4() {
				out = append(out, Route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Protocol: unix.RTPROT_KERNEL,
					Dst: netip.PrefixFrom(addr, 128), NIC: ifc.Index})
				continue
			}
			local := Route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Protocol: unix.RTPROT_KERNEL, Scope: unix.RT_SCOPE_HOST,
				Dst: netip.PrefixFrom(addr, 32), PrefSrc: addr, NIC: ifc.Index}
			out = append(out, local)
			if ifc.Loopback() && a.Prefix.Bits() < 32 {
				local.Dst = a.Prefix.Masked()
				out = append(out, local)
			}
			if b, ok := a.Broadcast(); ok {
				out = append(out, Route{Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_BROADCAST, Protocol: unix.RTPROT_KERNEL,
					Scope: unix.RT_SCOPE_LINK, Dst: netip.PrefixFrom(b, 32), PrefSrc: addr, NIC: ifc.Index})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Route) int {
		if c := boolCmp(!a.Dst.Addr().Is4(), !b.Dst.Addr().Is4()); c != 0 {
			return c
		}
		if a.Table != b.Table {
			return int(a.Table) - int(b.Table)
		}
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c
		}
		return b.Dst.Bits() - a.Dst.Bits()
	})
	return out
}
