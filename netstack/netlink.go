package netstack

import (
	"context"
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var _ Sock = (*NetlinkSocket)(nil)

// sizeofSockaddrNL is struct sockaddr_nl.
const sizeofSockaddrNL = unix.SizeofSockaddrNetlink

// rtnlGroups is RTNLGRP_MAX, the multicast groups of NETLINK_ROUTE.
const rtnlGroups = 39

// Options of SOL_NETLINK that are flags (the netlink_setsockopt bits).
var netlinkFlagOpts = map[int]bool{
	unix.NETLINK_PKTINFO: true, unix.NETLINK_BROADCAST_ERROR: true, unix.NETLINK_NO_ENOBUFS: true,
	unix.NETLINK_LISTEN_ALL_NSID: true, unix.NETLINK_CAP_ACK: true, unix.NETLINK_EXT_ACK: true,
	unix.NETLINK_GET_STRICT_CHK: true,
}

// NetlinkSocket is an AF_NETLINK socket of protocol NETLINK_ROUTE: its
// requests are answered from the sandbox's TCP/IP stack (see
// rtnetlink.go). Nothing changes the network, so no notification is
// ever sent to the multicast groups it may join.
type NetlinkSocket struct {
	st       *Stack
	typ      int
	ino      uint64
	uid, gid uint32
	waiters  vfs.Queue

	mu       sync.Mutex
	portid   uint32 // 0 until bound
	groups   [2]uint32
	dstPID   uint32 // connect's destination
	dstGroup uint32
	flags    map[int]bool // SOL_NETLINK flag options
	sndbuf   int
	rcvbuf   int
	queue    []nlDatagram
	rmem     int
	err      unix.Errno // sk_err: ENOBUFS after a reply was dropped
	changed  chan struct{}
}

// nlDatagram is one received datagram and the port it came from.
type nlDatagram struct {
	data []byte
	from uint32
}

// NewNetlink implements socket(2) for AF_NETLINK: SOCK_RAW or SOCK_DGRAM,
// protocol NETLINK_ROUTE (others EPROTONOSUPPORT, as for a protocol
// Linux has no module for).
func (st *Stack) NewNetlink(typ, protocol int, nonblock bool, cred Cred) (*vfs.File, error) {
	if typ != unix.SOCK_RAW && typ != unix.SOCK_DGRAM {
		return nil, unix.ESOCKTNOSUPPORT
	}
	if protocol != unix.NETLINK_ROUTE {
		return nil, unix.EPROTONOSUPPORT
	}
	s := &NetlinkSocket{st: st, typ: typ, ino: inodes.Add(1), uid: cred.UID, gid: cred.GID,
		flags: map[int]bool{}, sndbuf: DefaultBuf, rcvbuf: DefaultBuf, changed: make(chan struct{})}
	flags := unix.O_RDWR
	if nonblock {
		flags |= unix.O_NONBLOCK
	}
	return vfs.NewFile(s, flags), nil
}

// netlinkPorts is the Stack's table of bound netlink sockets.
type netlinkPorts struct {
	mu    sync.Mutex
	ports map[uint32]*NetlinkSocket
	rover int32 // the next negative port autobind tries
}

// insert binds s to portid (EADDRINUSE when taken).
func (p *netlinkPorts) insert(s *NetlinkSocket, portid uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ports == nil {
		p.ports = make(map[uint32]*NetlinkSocket)
	}
	if _, taken := p.ports[portid]; taken {
		return unix.EADDRINUSE
	}
	p.ports[portid] = s
	return nil
}

// autobind binds s to its process's id, or when that is taken (or
// unknown, 0) to a negative number counting down from -4096, as
// netlink_autobind does.
func (p *netlinkPorts) autobind(s *NetlinkSocket, pid int32) uint32 {
	if pid > 0 && p.insert(s, uint32(pid)) == nil {
		return uint32(pid)
	}
	for {
		p.mu.Lock()
		if p.rover >= -4096 {
			p.rover = -4096
		}
		id := uint32(p.rover)
		p.rover--
		p.mu.Unlock()
		if p.insert(s, id) == nil {
			return id
		}
	}
}

func (p *netlinkPorts) lookup(portid uint32) *NetlinkSocket {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ports[portid]
}

func (p *netlinkPorts) remove(s *NetlinkSocket, portid uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ports[portid] == s {
		delete(p.ports, portid)
	}
}

// Type is SO_TYPE.
func (s *NetlinkSocket) Type() int { return s.typ }

// bound returns s's port, binding it automatically first.
func (s *NetlinkSocket) bound(pid int32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.portid == 0 {
		s.portid = s.st.netlink.autobind(s, pid)
	}
	return s.portid
}

// parseNLAddr checks a sockaddr_nl (EINVAL when short or of another
// family) and returns its port and groups.
func parseNLAddr(sa []byte) (pid, groups uint32, err error) {
	if len(sa) < sizeofSockaddrNL || binary.LittleEndian.Uint16(sa) != unix.AF_NETLINK {
		return 0, 0, unix.EINVAL
	}
	return binary.LittleEndian.Uint32(sa[4:]), binary.LittleEndian.Uint32(sa[8:]), nil
}

func nlAddr(pid, groups uint32) []byte {
	b := make([]byte, sizeofSockaddrNL)
	binary.LittleEndian.PutUint16(b, unix.AF_NETLINK)
	binary.LittleEndian.PutUint32(b[4:], pid)
	binary.LittleEndian.PutUint32(b[8:], groups)
	return b
}

// Bind implements bind(2) (netlink_bind): the groups joined are
// replaced by those given; a port of 0 binds automatically, to pid first;
// a bound socket may be bound again to its own port only.
func (s *NetlinkSocket) Bind(sa []byte, pid int32) error {
	port, groups, err := parseNLAddr(sa)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.portid != 0 && port != s.portid:
		return unix.EINVAL
	case s.portid == 0 && port != 0:
		if err := s.st.netlink.insert(s, port); err != nil {
			return err
		}
		s.portid = port
	case s.portid == 0:
		s.portid = s.st.netlink.autobind(s, pid)
	}
	s.groups[0] = groups
	return nil
}

// Connect implements connect(2) (netlink_connect): AF_UNSPEC forgets the
// destination; a destination other than the kernel takes CAP_NET_ADMIN,
// as NETLINK_ROUTE does not let others send to ports or groups.
func (s *NetlinkSocket) Connect(sa []byte, pid int32, netAdmin bool) error {
	if len(sa) < 2 {
		return unix.EINVAL
	}
	if binary.LittleEndian.Uint16(sa) == unix.AF_UNSPEC {
		s.mu.Lock()
		s.dstPID, s.dstGroup = 0, 0
		s.mu.Unlock()
		return nil
	}
	port, groups, err := parseNLAddr(sa)
	if err != nil {
		return err
	}
	if (port != 0 || groups != 0) && !netAdmin {
		return unix.EPERM
	}
	s.bound(pid)
	s.mu.Lock()
	s.dstPID, s.dstGroup = port, groups
	s.mu.Unlock()
	return nil
}

// Name is getsockname: the port (0 until bound) and the first 32 groups.
func (s *NetlinkSocket) Name() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return nlAddr(s.portid, s.groups[0])
}

// PeerName is getpeername: the connected destination, the kernel (0)
// when there is none, as on Linux.
func (s *NetlinkSocket) PeerName() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return nlAddr(s.dstPID, s.dstGroup), nil
}

// Listen, Accept and Shutdown are not for netlink sockets.
func (s *NetlinkSocket) Listen(int, Cred) error { return unix.EOPNOTSUPP }

// Accept is EOPNOTSUPP.
func (s *NetlinkSocket) Accept(context.Context, bool, bool) (*vfs.File, error) {
	return nil, unix.EOPNOTSUPP
}

// Shutdown is EOPNOTSUPP.
func (s *NetlinkSocket) Shutdown(int) error { return unix.EOPNOTSUPP }

// TakeError returns and clears the pending error (SO_ERROR).
func (s *NetlinkSocket) TakeError() unix.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.err
	s.err = 0
	return e
}

// Send implements sendmsg(2) (netlink_sendmsg): o.Dest, when given, is
// a sockaddr_nl; a message for the kernel (port 0) is answered at once,
// one for another socket's port is queued to it.
func (s *NetlinkSocket) Send(_ context.Context, data []byte, o SendOptions) (int, error) {
	s.mu.Lock()
	dstPID, dstGroup, sndbuf := s.dstPID, s.dstGroup, s.sndbuf
	s.mu.Unlock()
	if o.Dest != nil {
		var err error
		if dstPID, dstGroup, err = parseNLAddr(o.Dest); err != nil {
			return 0, err
		}
		if (dstPID != 0 || dstGroup != 0) && !o.NetAdmin {
			return 0, unix.EPERM
		}
	}
	if len(data) > sndbuf-32 {
		return 0, unix.EMSGSIZE
	}
	if len(data) == 0 {
		return 0, unix.ENODATA
	}
	portid := s.bound(o.Cred.PID)
	if dstPID != 0 {
		peer := s.st.netlink.lookup(dstPID)
		if peer == nil {
			return 0, unix.ECONNREFUSED
		}
		peer.deliver([][]byte{append([]byte(nil), data...)}, portid)
		return len(data), nil
	}
	s.mu.Lock()
	// NETLINK_EXT_ACK changes nothing: no reply carries an extended
	// acknowledgement's attributes.
	strict, capAck := s.flags[unix.NETLINK_GET_STRICT_CHK], s.flags[unix.NETLINK_CAP_ACK]
	s.mu.Unlock()
	r := rtnl{st: s.st, portid: portid, strict: strict, capAck: capAck, netAdmin: o.NetAdmin}
	for _, m := range parseNetlink(data) {
		s.deliver(r.handle(m), 0)
	}
	return len(data), nil
}

// deliver queues datagrams from port from, dropping them with ENOBUFS
// pending when the receive buffer is full, as netlink_unicast does.
func (s *NetlinkSocket) deliver(dgrams [][]byte, from uint32) {
	if len(dgrams) == 0 {
		return
	}
	s.mu.Lock()
	for _, d := range dgrams {
		if s.rmem >= s.rcvbuf {
			s.err = unix.ENOBUFS
			break
		}
		s.queue = append(s.queue, nlDatagram{data: d, from: from})
		s.rmem += len(d)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.waiters.Notify(unix.POLLIN | unix.EPOLLRDNORM)
}

// Recv implements recvmsg(2): one datagram, truncated to dst (MSG_TRUNC
// in msg_flags), with its full length under RecvOptions.Trunc.
func (s *NetlinkSocket) Recv(ctx context.Context, dst []byte, o RecvOptions) (RecvResult, error) {
	s.mu.Lock()
	for {
		// A pending error comes first, as sock_error in
		// __skb_try_recv_datagram.
		if s.err != 0 {
			err := s.err
			s.err = 0
			s.mu.Unlock()
			return RecvResult{}, err
		}
		if len(s.queue) > 0 {
			break
		}
		if o.Nonblock {
			s.mu.Unlock()
			return RecvResult{}, unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			s.mu.Unlock()
			return RecvResult{}, vfs.ErrWouldWait
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return RecvResult{}, unix.EINTR
		}
		s.mu.Lock()
	}
	d := s.queue[0]
	if !o.Peek {
		s.queue[0] = nlDatagram{}
		s.queue = s.queue[1:]
		s.rmem -= len(d.data)
	}
	s.mu.Unlock()
	n := copy(dst, d.data)
	r := RecvResult{N: n, Len: n, Truncated: n < len(d.data), From: nlAddr(d.from, 0)}
	if o.Trunc {
		r.Len = len(d.data)
	}
	return r, nil
}

// Readiness implements vfs.Poller: readable with a datagram queued or an
// error pending, always writable.
func (s *NetlinkSocket) Readiness(mask uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := uint32(unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND)
	if len(s.queue) > 0 {
		ev |= unix.POLLIN | unix.EPOLLRDNORM
	}
	if s.err != 0 {
		ev |= unix.POLLERR
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

// EventRegister implements vfs.Poller.
func (s *NetlinkSocket) EventRegister(w *vfs.Waiter) { s.waiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (s *NetlinkSocket) EventUnregister(w *vfs.Waiter) { s.waiters.EventUnregister(w) }

// Stat answers fstat: a socket inode.
func (s *NetlinkSocket) Stat(context.Context) (unix.Statx_t, error) {
	return socketStat(s.uid, s.gid, s.ino), nil
}

// Read implements read(2): recv without flags.
func (s *NetlinkSocket) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	r, err := s.Recv(ctx, dst, RecvOptions{Nonblock: f.StatusFlags()&unix.O_NONBLOCK != 0})
	return r.N, err
}

// Write implements write(2): a send to the kernel.
func (s *NetlinkSocket) Write(ctx context.Context, f *vfs.File, src []byte, _ int64) (int, error) {
	return s.Send(ctx, src, SendOptions{})
}

// Release unbinds the port.
func (s *NetlinkSocket) Release() {
	s.mu.Lock()
	port := s.portid
	s.queue = nil
	s.mu.Unlock()
	if port != 0 {
		s.st.netlink.remove(s, port)
	}
}

// SetSockopt implements setsockopt(2): SO_SNDBUF and SO_RCVBUF, and
// SOL_NETLINK's flags and group memberships, as netlink_setsockopt
// checks them (a value shorter than an int reads as 0).
func (s *NetlinkSocket) SetSockopt(level, name, optlen int, read OptReader) error {
	if optlen < 0 {
		return unix.EINVAL
	}
	if level == unix.SOL_SOCKET {
		switch name {
		case unix.SO_SNDBUF, unix.SO_RCVBUF:
		default:
			return unix.ENOPROTOOPT
		}
		v, err := readInt(optlen, read)
		if err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if v < 0 || v > maxBuf {
			v = maxBuf
		}
		if name == unix.SO_SNDBUF {
			s.sndbuf = max(int(v)*2, minSndBuf)
		} else {
			s.rcvbuf = max(int(v)*2, minRcvBuf)
		}
		return nil
	}
	if level != unix.SOL_NETLINK {
		return unix.ENOPROTOOPT
	}
	var v uint32
	if optlen >= 4 {
		b, err := read(4)
		if err != nil {
			return err
		}
		v = binary.LittleEndian.Uint32(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case name == unix.NETLINK_ADD_MEMBERSHIP || name == unix.NETLINK_DROP_MEMBERSHIP:
		if v == 0 || v-1 >= rtnlGroups {
			return unix.EINVAL
		}
		bit := uint32(1) << ((v - 1) % 32)
		if name == unix.NETLINK_ADD_MEMBERSHIP {
			s.groups[(v-1)/32] |= bit
		} else {
			s.groups[(v-1)/32] &^= bit
		}
	case name == unix.NETLINK_LISTEN_ALL_NSID:
		return unix.EPERM
	case netlinkFlagOpts[name]:
		s.flags[name] = v != 0
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

// GetSockopt implements getsockopt(2) with optlen the caller's buffer
// length: the value to copy out, cut to optlen where Linux cuts it.
func (s *NetlinkSocket) GetSockopt(level, name, optlen int) ([]byte, error) {
	if optlen < 0 {
		return nil, unix.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if level == unix.SOL_SOCKET {
		var v int
		switch name {
		case unix.SO_TYPE:
			v = s.typ
		case unix.SO_DOMAIN:
			v = unix.AF_NETLINK
		case unix.SO_PROTOCOL:
			v = unix.NETLINK_ROUTE
		case unix.SO_SNDBUF:
			v = s.sndbuf
		case unix.SO_RCVBUF:
			v = s.rcvbuf
		case unix.SO_ERROR:
			v = int(s.err)
			s.err = 0
		case unix.SO_ACCEPTCONN:
		default:
			return nil, unix.ENOPROTOOPT
		}
		return intOpt(v)[:min(optlen, 4)], nil
	}
	if level != unix.SOL_NETLINK {
		return nil, unix.ENOPROTOOPT
	}
	switch {
	case name == unix.NETLINK_LIST_MEMBERSHIPS:
		b := binary.LittleEndian.AppendUint32(nil, s.groups[0])
		b = binary.LittleEndian.AppendUint32(b, s.groups[1])
		return b[:min(optlen, len(b))], nil
	case netlinkFlagOpts[name] && name != unix.NETLINK_LISTEN_ALL_NSID:
		if optlen < 4 {
			return nil, unix.EINVAL
		}
		return intOpt(boolOpt(s.flags[name])), nil
	}
	return nil, unix.ENOPROTOOPT
}
