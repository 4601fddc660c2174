package netstack

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// Sizes Linux gives its netlink replies.
const (
	// nlGoodSize is NLMSG_GOODSIZE on x86-64, the size of the buffer a
	// dump fills before it starts another datagram.
	nlGoodSize = 4096 - 320
	// loopbackTxQueueLen is the tx_queue_len Linux gives lo and
	// Ethernet devices.
	txQueueLen = 1000
	// qdisc is what Linux names the queueing of a device without one.
	qdisc = "noqueue"
	// infinityLifeTime is a permanent address's lifetime.
	infinityLifeTime = 0xffffffff
	// sizeofLinkStats and sizeofLinkStats64 are struct rtnl_link_stats
	// and struct rtnl_link_stats64, each of 24 counters and the latter
	// with rx_otherhost_dropped.
	sizeofLinkStats   = 24 * 4
	sizeofLinkStats64 = 25 * 8
	// sizeofRtaCacheinfo is struct rta_cacheinfo.
	sizeofRtaCacheinfo = 32
	// sizeofIfMap is struct rtnl_link_ifmap, padded.
	sizeofIfMap = 32
	// GSO_MAX_SEGS, GSO_MAX_SIZE and lo's TSO limit.
	gsoMaxSegs = 65535
	gsoMaxSize = 65536
	tsoMaxSize = 524280
	// operstate values (IF_OPER_*).
	operUnknown = 0
	operDown    = 2
	operUp      = 6
)

// rtnl answers one sendmsg's NETLINK_ROUTE requests for the socket
// bound to portid, as rtnetlink_rcv_msg would.
type rtnl struct {
	st             *Stack
	portid         uint32
	strict, capAck bool
	netAdmin       bool
	// filtered is set by a strict dump that a filter narrowed: its
	// NLMSG_DONE then carries NLM_F_DUMP_FILTERED.
	filtered bool
}

// handle processes one message as netlink_rcv_skb does and returns the
// datagrams to queue: a dump's messages and NLMSG_DONE, or a reply and
// its acknowledgement.
func (r *rtnl) handle(m nlMsg) [][]byte {
	if m.Flags&unix.NLM_F_REQUEST == 0 || m.Type < unix.NLMSG_MIN_TYPE {
		if m.Flags&unix.NLM_F_ACK != 0 {
			return [][]byte{r.ack(m, 0)}
		}
		return nil
	}
	msgs, dump, err := r.request(m)
	if dump {
		return r.dump(m, msgs, err)
	}
	var out [][]byte
	if len(msgs) > 0 {
		out = append(out, msgs...)
	}
	if err != 0 || m.Flags&unix.NLM_F_ACK != 0 {
		out = append(out, r.ack(m, err))
	}
	return out
}

// ack is netlink_ack's NLMSG_ERROR: the error (0 for an ack) and the
// request's header, with its payload too for an error unless
// NETLINK_CAP_ACK is on.
func (r *rtnl) ack(m nlMsg, err unix.Errno) []byte {
	var w nlBuilder
	flags := uint16(0)
	quoted := m.Whole[:unix.NLMSG_HDRLEN]
	if err != 0 && !r.capAck {
		quoted = m.Whole
	} else {
		flags |= unix.NLM_F_CAPPED
	}
	w.begin(unix.NLMSG_ERROR, flags, m.Seq, r.portid)
	w.b = binary.LittleEndian.AppendUint32(w.b, uint32(-int32(err)))
	w.raw(quoted)
	return w.end()
}

// dump packs a dump's messages into datagrams of nlGoodSize, ending with
// NLMSG_DONE, which carries the dump's error.
func (r *rtnl) dump(m nlMsg, msgs [][]byte, err unix.Errno) [][]byte {
	var out [][]byte
	var cur []byte
	var w nlBuilder
	flags := uint16(unix.NLM_F_MULTI)
	if r.filtered {
		flags |= unix.NLM_F_DUMP_FILTERED
	}
	r.filtered = false
	w.begin(unix.NLMSG_DONE, flags, m.Seq, r.portid)
	w.b = binary.LittleEndian.AppendUint32(w.b, uint32(-int32(err)))
	msgs = append(msgs, w.end())
	for _, msg := range msgs {
		if len(cur) > 0 && len(cur)+len(msg) > nlGoodSize {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, msg...)
	}
	return append(out, cur)
}

// request runs one request: the messages of its reply, whether it is a
// dump, and its error. Requests that would change the network are
// EPERM without CAP_NET_ADMIN, as on Linux, and EOPNOTSUPP with it: the
// sandbox's network is fixed.
func (r *rtnl) request(m nlMsg) (msgs [][]byte, dump bool, err unix.Errno) {
	if m.Type > unix.RTM_MAX {
		return nil, false, unix.EOPNOTSUPP
	}
	if len(m.Data) < 1 {
		return nil, false, 0
	}
	family := m.Data[0]
	kind := (m.Type - unix.RTM_BASE) & 3
	const getKind = 2
	if kind != getKind {
		if !r.netAdmin {
			return nil, false, unix.EPERM
		}
		return nil, false, unix.EOPNOTSUPP
	}
	if m.Flags&unix.NLM_F_DUMP != 0 {
		switch m.Type {
		case unix.RTM_GETLINK:
			msgs, err = r.dumpLinks(m)
		case unix.RTM_GETADDR:
			msgs, err = r.dumpAddrs(m, family)
		case unix.RTM_GETROUTE:
			msgs, err = r.dumpRoutes(m, family)
		default:
			return nil, false, unix.EOPNOTSUPP
		}
		return msgs, true, err
	}
	if m.Type == unix.RTM_GETLINK {
		msg, err := r.getLink(m)
		if err != 0 {
			return nil, false, err
		}
		return [][]byte{msg}, false, 0
	}
	return nil, false, unix.EOPNOTSUPP
}

// errnoOr is the Errno an error from the stack is.
func errnoOr(err error) unix.Errno {
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	return unix.EIO
}

// strictAttrs checks a strict dump request's attributes: each must be
// one of allowed.
func strictAttrs(b []byte, allowed ...uint16) unix.Errno {
	attrs, ok := parseAttrs(b)
	if !ok {
		return unix.EINVAL
	}
	for _, a := range attrs {
		found := false
		for _, t := range allowed {
			found = found || a.Type == t
		}
		if !found {
			return unix.EINVAL
		}
	}
	return 0
}

func (r *rtnl) dumpLinks(m nlMsg) ([][]byte, unix.Errno) {
	if r.strict {
		// valid_dump_ifinfo_req: a whole ifinfomsg of zeros but the
		// family.
		if len(m.Data) < unix.SizeofIfInfomsg {
			return nil, unix.EINVAL
		}
		for _, c := range m.Data[1:unix.SizeofIfInfomsg] {
			if c != 0 {
				return nil, unix.EINVAL
			}
		}
		if e := strictAttrs(m.Data[unix.SizeofIfInfomsg:], unix.IFLA_TARGET_NETNSID, unix.IFLA_EXT_MASK, unix.IFLA_MASTER, unix.IFLA_LINKINFO); e != 0 {
			return nil, e
		}
	}
	ifaces, err := r.st.Interfaces()
	if err != nil {
		return nil, errnoOr(err)
	}
	var out [][]byte
	for i := range ifaces {
		out = append(out, linkMsg(&ifaces[i], unix.NLM_F_MULTI, m.Seq, r.portid))
	}
	return out, 0
}

// getLink answers RTM_GETLINK for one interface, by index or by
// IFLA_IFNAME (rtnl_getlink).
func (r *rtnl) getLink(m nlMsg) ([]byte, unix.Errno) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return nil, unix.EINVAL
	}
	index := int32(binary.LittleEndian.Uint32(m.Data[4:]))
	var name string
	attrs, _ := parseAttrs(m.Data[unix.SizeofIfInfomsg:])
	for _, a := range attrs {
		if a.Type == unix.IFLA_IFNAME {
			name = cString(a.Data)
		}
	}
	if index <= 0 && name == "" {
		return nil, unix.EINVAL
	}
	ifaces, err := r.st.Interfaces()
	if err != nil {
		return nil, errnoOr(err)
	}
	for i := range ifaces {
		if (index > 0 && ifaces[i].Index == index) || (index <= 0 && ifaces[i].Name == name) {
			return linkMsg(&ifaces[i], 0, m.Seq, r.portid), 0
		}
	}
	return nil, unix.ENODEV
}

// cString is b up to its first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// linkMsg is RTM_NEWLINK for ifc, with the attributes of
// rtnl_fill_ifinfo that describe a device of the sandbox.
func linkMsg(ifc *Interface, flags uint16, seq, pid uint32) []byte {
	var w nlBuilder
	w.begin(unix.RTM_NEWLINK, flags, seq, pid)
	w.b = append(w.b, unix.AF_UNSPEC, 0)
	w.b = binary.LittleEndian.AppendUint16(w.b, ifc.ARPType)
	w.b = binary.LittleEndian.AppendUint32(w.b, uint32(ifc.Index))
	w.b = binary.LittleEndian.AppendUint32(w.b, ifc.Flags)
	w.b = binary.LittleEndian.AppendUint32(w.b, 0)
	w.str(unix.IFLA_IFNAME, ifc.Name)
	w.u32(unix.IFLA_TXQLEN, txQueueLen)
	w.u8(unix.IFLA_OPERSTATE, ifc.operState())
	w.u8(unix.IFLA_LINKMODE, 0)
	w.u32(unix.IFLA_MTU, ifc.MTU)
	w.u32(unix.IFLA_MIN_MTU, 0)
	w.u32(unix.IFLA_MAX_MTU, 0)
	w.u32(unix.IFLA_GROUP, 0)
	w.u32(unix.IFLA_PROMISCUITY, 0)
	w.u32(unix.IFLA_ALLMULTI, 0)
	w.u32(unix.IFLA_NUM_TX_QUEUES, 1)
	// The offload limits Linux gives lo, which kvmbox's interfaces,
	// moving whole buffers, do not mind either.
	w.u32(unix.IFLA_GSO_MAX_SEGS, gsoMaxSegs)
	w.u32(unix.IFLA_GSO_MAX_SIZE, gsoMaxSize)
	w.u32(unix.IFLA_GRO_MAX_SIZE, gsoMaxSize)
	w.u32(unix.IFLA_GSO_IPV4_MAX_SIZE, gsoMaxSize)
	w.u32(unix.IFLA_GRO_IPV4_MAX_SIZE, gsoMaxSize)
	w.u32(unix.IFLA_TSO_MAX_SIZE, tsoMaxSize)
	w.u32(unix.IFLA_TSO_MAX_SEGS, gsoMaxSegs)
	w.u32(unix.IFLA_NUM_RX_QUEUES, 1)
	w.u8(unix.IFLA_CARRIER, uint8(boolOpt(ifc.Flags&unix.IFF_LOWER_UP != 0)))
	w.u32(unix.IFLA_CARRIER_CHANGES, 0)
	w.attr(unix.IFLA_MAP, make([]byte, sizeofIfMap))
	w.attr(unix.IFLA_ADDRESS, ifc.HWAddr[:])
	bcast := [6]byte{}
	if !ifc.Loopback() {
		bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	w.attr(unix.IFLA_BROADCAST, bcast[:])
	st := ifc.Stats
	// rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors,
	// rx_dropped, tx_dropped, then counters kvmbox does not keep.
	counters := []uint64{st.RxPackets, st.TxPackets, st.RxBytes, st.TxBytes, 0, 0, 0, st.TxDropped}
	s64 := make([]byte, sizeofLinkStats64)
	s32 := make([]byte, sizeofLinkStats)
	for i, c := range counters {
		binary.LittleEndian.PutUint64(s64[8*i:], c)
		binary.LittleEndian.PutUint32(s32[4*i:], uint32(c))
	}
	w.attr(unix.IFLA_STATS64, s64)
	w.attr(unix.IFLA_STATS, s32)
	w.str(unix.IFLA_QDISC, qdisc)
	return w.end()
}

// operState is IF_OPER_UNKNOWN for loopback, which does not report its
// link state, as on Linux, and up or down for others.
func (i *Interface) operState() uint8 {
	switch {
	case i.Loopback():
		return operUnknown
	case i.Flags&unix.IFF_RUNNING != 0:
		return operUp
	}
	return operDown
}

func (r *rtnl) dumpAddrs(m nlMsg, family uint8) ([][]byte, unix.Errno) {
	var index int32
	if r.strict {
		// inet_valid_dump_ifaddr_req: an ifaddrmsg with no prefix
		// length, flags or scope; an index filters.
		if len(m.Data) < unix.SizeofIfAddrmsg {
			return nil, unix.EINVAL
		}
		if m.Data[1] != 0 || m.Data[2] != 0 || m.Data[3] != 0 {
			return nil, unix.EINVAL
		}
		index = int32(binary.LittleEndian.Uint32(m.Data[4:]))
		if e := strictAttrs(m.Data[unix.SizeofIfAddrmsg:], unix.IFA_TARGET_NETNSID); e != 0 {
			return nil, e
		}
	}
	ifaces, err := r.st.Interfaces()
	if err != nil {
		return nil, errnoOr(err)
	}
	if index != 0 {
		r.filtered = true
		if !slices.ContainsFunc(ifaces, func(i Interface) bool { return i.Index == index }) {
			return nil, unix.ENODEV
		}
	}
	var out [][]byte
	// An AF_UNSPEC dump (or one of a family without addresses) is
	// rtnl_dump_all's: IPv4's, then IPv6's.
	for _, v4 := range []bool{true, false} {
		if (family == unix.AF_INET && !v4) || (family == unix.AF_INET6 && v4) {
			continue
		}
		for i := range ifaces {
			if index != 0 && ifaces[i].Index != index {
				continue
			}
			for _, a := range ifaces[i].Addrs {
				if a.Is4() == v4 {
					out = append(out, addrMsg(&ifaces[i], a, m.Seq, r.portid))
				}
			}
		}
	}
	return out, 0
}

// addrScope is an address's RT_SCOPE_*.
func addrScope(a netip.Addr) uint8 {
	switch {
	case a.IsLoopback():
		return unix.RT_SCOPE_HOST
	case a.IsLinkLocalUnicast():
		return unix.RT_SCOPE_LINK
	}
	return unix.RT_SCOPE_UNIVERSE
}

// addrMsg is RTM_NEWADDR for one address, as inet_fill_ifaddr and
// inet6_fill_ifaddr make it for a permanent address. The cache
// information's timestamps are 0: the stack does not keep them.
func addrMsg(ifc *Interface, a IfAddr, seq, pid uint32) []byte {
	var w nlBuilder
	w.begin(unix.RTM_NEWADDR, unix.NLM_F_MULTI, seq, pid)
	addr := a.Prefix.Addr()
	family := uint8(unix.AF_INET)
	if !a.Is4() {
		family = unix.AF_INET6
	}
	w.b = append(w.b, family, uint8(a.Prefix.Bits()), unix.IFA_F_PERMANENT, addrScope(addr))
	w.b = binary.LittleEndian.AppendUint32(w.b, uint32(ifc.Index))
	cache := binary.LittleEndian.AppendUint32(nil, infinityLifeTime)
	cache = binary.LittleEndian.AppendUint32(cache, infinityLifeTime)
	cache = append(cache, make([]byte, 8)...)
	if a.Is4() {
		w.attr(unix.IFA_ADDRESS, addr.AsSlice())
		w.attr(unix.IFA_LOCAL, addr.AsSlice())
		if b, ok := ifc.broadcast(a); ok {
			w.attr(unix.IFA_BROADCAST, b.AsSlice())
		}
		w.str(unix.IFA_LABEL, ifc.Name)
		w.u32(unix.IFA_FLAGS, unix.IFA_F_PERMANENT)
		w.attr(unix.IFA_CACHEINFO, cache)
	} else {
		w.attr(unix.IFA_ADDRESS, addr.AsSlice())
		w.attr(unix.IFA_CACHEINFO, cache)
		w.u32(unix.IFA_FLAGS, unix.IFA_F_PERMANENT)
	}
	return w.end()
}

func (r *rtnl) dumpRoutes(m nlMsg, family uint8) ([][]byte, unix.Errno) {
	var table uint32
	var oif int32
	if r.strict {
		// ip_valid_fib_dump_req: an rtmsg without lengths, TOS, scope
		// or type; RTA_TABLE and RTA_OIF filter.
		if len(m.Data) < unix.SizeofRtMsg {
			return nil, unix.EINVAL
		}
		if m.Data[1] != 0 || m.Data[2] != 0 || m.Data[3] != 0 || m.Data[6] != 0 || m.Data[7] != 0 {
			return nil, unix.EINVAL
		}
		if binary.LittleEndian.Uint32(m.Data[8:])&^unix.RTM_F_CLONED != 0 {
			return nil, unix.EINVAL
		}
		table = uint32(m.Data[4])
		attrs, ok := parseAttrs(m.Data[unix.SizeofRtMsg:])
		if !ok {
			return nil, unix.EINVAL
		}
		for _, a := range attrs {
			if len(a.Data) < 4 || (a.Type != unix.RTA_TABLE && a.Type != unix.RTA_OIF) {
				return nil, unix.EINVAL
			}
			v := binary.LittleEndian.Uint32(a.Data)
			if a.Type == unix.RTA_TABLE {
				table = v
			} else {
				oif = int32(v)
			}
		}
	}
	routes, err := r.st.Routes()
	if err != nil {
		return nil, errnoOr(err)
	}
	r.filtered = table != 0 || oif != 0
	var out [][]byte
	for _, rt := range routes {
		v4 := rt.Dst.Addr().Is4()
		if (family == unix.AF_INET && !v4) || (family == unix.AF_INET6 && v4) {
			continue
		}
		if (table != 0 && table != uint32(rt.Table)) || (oif != 0 && oif != rt.NIC) {
			continue
		}
		out = append(out, routeMsg(rt, unix.NLM_F_MULTI, m.Seq, r.portid))
	}
	return out, 0
}

// routeMsg is RTM_NEWROUTE for rt, as fib_dump_info and rt6_fill_node
// make it.
func routeMsg(rt Route, flags uint16, seq, pid uint32) []byte {
	var w nlBuilder
	w.begin(unix.RTM_NEWROUTE, flags, seq, pid)
	v4 := rt.Dst.Addr().Is4()
	family := uint8(unix.AF_INET)
	if !v4 {
		family = unix.AF_INET6
	}
	w.b = append(w.b, family, uint8(rt.Dst.Bits()), 0, 0, rt.Table, rt.Protocol, rt.Scope, rt.Type)
	w.b = binary.LittleEndian.AppendUint32(w.b, 0)
	w.u32(unix.RTA_TABLE, uint32(rt.Table))
	if rt.Dst.Bits() > 0 {
		w.attr(unix.RTA_DST, rt.Dst.Addr().AsSlice())
	}
	if !v4 {
		w.u32(unix.RTA_PRIORITY, rt.Metric)
	}
	if rt.PrefSrc.IsValid() {
		w.attr(unix.RTA_PREFSRC, rt.PrefSrc.AsSlice())
	}
	if rt.Gateway.IsValid() {
		w.attr(unix.RTA_GATEWAY, rt.Gateway.AsSlice())
	}
	w.u32(unix.RTA_OIF, uint32(rt.NIC))
	if !v4 {
		w.attr(unix.RTA_CACHEINFO, make([]byte, sizeofRtaCacheinfo))
		w.u8(unix.RTA_PREF, 0)
	}
	return w.end()
}
