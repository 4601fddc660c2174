package syscalls

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/netstack"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

const (
	families    = "AF_UNIX; AF_INET and AF_INET6 (TCP, UDP, ping sockets, raw ICMP sockets with CAP_NET_RAW) on the sandbox's own network (loopback, and eth0 with published ports or outbound access); AF_NETLINK NETLINK_ROUTE (SOCK_RAW, SOCK_DGRAM; other protocols EPROTONOSUPPORT); other families EAFNOSUPPORT"
	unixOnly    = "AF_UNIX only (AF_INET, AF_INET6 EOPNOTSUPP; other families EAFNOSUPPORT)"
	sockoptNote = "AF_UNIX: SOL_SOCKET SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ACCEPTCONN, SO_ERROR, SO_SNDBUF, SO_RCVBUF, SO_PASSCRED, SO_PEERCRED, SO_REUSEADDR, SO_KEEPALIVE, SO_BROADCAST (flags only), SO_REUSEPORT (off only) (other options ENOPROTOOPT, other levels EOPNOTSUPP); TCP/UDP: those but the credentials, SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_BROADCAST, SO_LINGER, SO_RCVTIMEO, SO_SNDTIMEO, TCP_NODELAY, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_INFO (get), IP_TOS, IP_TTL, IPV6_V6ONLY, IPV6_UNICAST_HOPS, IP_RECVERR and IPV6_RECVERR (kept and read back; there is no error queue) (others ENOPROTOOPT); netlink: SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_SNDBUF, SO_RCVBUF, SO_ERROR, SO_ACCEPTCONN, and SOL_NETLINK NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP, NETLINK_LIST_MEMBERSHIPS, NETLINK_PKTINFO, NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK"
	msgNote     = "AF_UNIX: MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC, MSG_NOSIGNAL, MSG_CMSG_CLOEXEC, SCM_RIGHTS, SCM_CREDENTIALS; TCP/UDP: MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC, MSG_NOSIGNAL, no control messages (EINVAL); netlink: MSG_PEEK, MSG_DONTWAIT, MSG_TRUNC, requests RTM_GETLINK, RTM_GETADDR and RTM_GETROUTE dumps and RTM_GETLINK, changes EPERM (EOPNOTSUPP with CAP_NET_ADMIN); MSG_OOB is EOPNOTSUPP"
)

var socketEntries = []entryAt{
	{unix.SYS_SOCKET, Entry{"socket", sysSocket, Partial, families + "; AF_UNIX SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET", []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_SOCKETPAIR, Entry{"socketpair", sysSocketpair, Partial, unixOnly, []Arg{ArgInt, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_BIND, Entry{"bind", sysBind, Partial, families + "; AF_UNIX abstract names and socket files of the sandbox's file systems", []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_LISTEN, Entry{"listen", sysListen, Partial, families, []Arg{ArgInt, ArgInt}}},
	{unix.SYS_ACCEPT, Entry{"accept", sysAccept, Partial, families, []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_ACCEPT4, Entry{"accept4", sysAccept4, Partial, families, []Arg{ArgInt, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_CONNECT, Entry{"connect", sysConnect, Partial, families, []Arg{ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_GETSOCKNAME, Entry{"getsockname", sysGetsockname, Partial, families, []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_GETPEERNAME, Entry{"getpeername", sysGetpeername, Partial, families, []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_SENDTO, Entry{"sendto", sysSendto, Partial, msgNote, []Arg{ArgInt, ArgInBuf, ArgInt, ArgHex, ArgHex, ArgInt}}},
	{unix.SYS_RECVFROM, Entry{"recvfrom", sysRecvfrom, Partial, msgNote, []Arg{ArgInt, ArgOutBuf, ArgInt, ArgHex, ArgHex, ArgHex}}},
	{unix.SYS_SENDMSG, Entry{"sendmsg", sysSendmsg, Partial, msgNote, []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_RECVMSG, Entry{"recvmsg", sysRecvmsg, Partial, msgNote, []Arg{ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_SENDMMSG, Entry{"sendmmsg", sysSendmmsg, Partial, msgNote, []Arg{ArgInt, ArgHex, ArgInt, ArgHex}}},
	{unix.SYS_RECVMMSG, Entry{"recvmmsg", sysRecvmmsg, Partial, msgNote + "; the timeout is checked between messages, as on Linux", []Arg{ArgInt, ArgHex, ArgInt, ArgHex, ArgHex}}},
	{unix.SYS_SHUTDOWN, Entry{"shutdown", sysShutdown, Partial, families, []Arg{ArgInt, ArgInt}}},
	{unix.SYS_SETSOCKOPT, Entry{"setsockopt", sysSetsockopt, Partial, sockoptNote, []Arg{ArgInt, ArgInt, ArgInt, ArgHex, ArgInt}}},
	{unix.SYS_GETSOCKOPT, Entry{"getsockopt", sysGetsockopt, Partial, sockoptNote, []Arg{ArgInt, ArgInt, ArgInt, ArgHex, ArgHex}}},
}

// Socket argument limits: the types and families the socket layer knows
// (SOCK_MAX, NPROTO), sockaddr_storage, struct sockaddr_un and the offset
// of its path.
const (
	sockTypeMask  = 0xf
	sockMax       = 11
	nProto        = 46
	sockaddrMax   = 128 // sizeof(struct sockaddr_storage)
	sockaddrUnMax = unix.SizeofSockaddrUnix
	sunPathOff    = 2
	// streamChunk bounds the host buffer one stream send or receive uses.
	streamChunk = 256 << 10
)

// msghdr is struct msghdr with its pointers kept as guest addresses.
type msghdr struct {
	Name       uint64
	Namelen    uint32
	_          uint32
	Iov        uint64
	Iovlen     uint64
	Control    uint64
	Controllen uint64
	Flags      int32
	_          int32
}

// credOf is the identity the calling process gives its sockets and
// messages.
func credOf(t *kernel.Task) netstack.Cred {
	c := t.ThreadGroup().Creds()
	return netstack.Cred{PID: t.ThreadGroup().PID(), UID: c.EUID, GID: c.EGID}
}

// socketArgs is socket(2)'s arguments, checked.
type socketArgs struct {
	domain, typ, protocol int
	nonblock, cloexec     bool
}

// socketType splits socket(2)'s type argument and checks its arguments as
// __sys_socket, unix_create and inet_create do: unknown flags and types
// out of range are EINVAL, a family other than AF_UNIX, AF_INET and
// AF_INET6 EAFNOSUPPORT. For AF_UNIX a protocol other than 0 or PF_UNIX is
// EPROTONOSUPPORT and SOCK_RAW means SOCK_DGRAM; inet types and
// protocols are netstack's to check, once SOCK_RAW has CAP_NET_RAW.
func socketType(t *kernel.Task, domain, typ, protocol int32) (socketArgs, error) {
	flags := typ &^ sockTypeMask
	typ &= sockTypeMask
	sa := socketArgs{domain: int(domain), typ: int(typ), protocol: int(protocol),
		nonblock: flags&unix.SOCK_NONBLOCK != 0, cloexec: flags&unix.SOCK_CLOEXEC != 0}
	switch {
	case flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0:
		return sa, unix.EINVAL
	case domain < 0 || domain >= nProto:
		return sa, unix.EAFNOSUPPORT
	case typ >= sockMax:
		return sa, unix.EINVAL
	case domain == unix.AF_INET || domain == unix.AF_INET6:
		if typ == unix.SOCK_RAW {
			if !t.ThreadGroup().Creds().Capable(unix.CAP_NET_RAW) {
				return sa, unix.EPERM
			}
		}
		return sa, nil
	case domain == unix.AF_NETLINK:
		return sa, nil
	case domain != unix.AF_UNIX:
		return sa, unix.EAFNOSUPPORT
	case protocol != 0 && protocol != unix.AF_UNIX:
		return sa, unix.EPROTONOSUPPORT
	}
	if typ == unix.SOCK_RAW {
		sa.typ = unix.SOCK_DGRAM
	}
	if !netstack.ValidType(sa.typ) {
		return sa, unix.ESOCKTNOSUPPORT
	}
	return sa, nil
}

func sysSocket(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	sa, err := socketType(t, int32(a[0]), int32(a[1]), int32(a[2]))
	if err != nil {
		return 0, err
	}
	var f *vfs.File
	switch sa.domain {
	case unix.AF_UNIX:
		f, err = t.Kernel().Net().New(sa.typ, sa.nonblock, credOf(t))
	case unix.AF_NETLINK:
		f, err = t.Kernel().Net().NewNetlink(sa.typ, sa.protocol, sa.nonblock, credOf(t))
	default:
		f, err = t.Kernel().Net().NewInet(sa.domain, sa.typ, sa.protocol, sa.nonblock, credOf(t))
	}
	if err != nil {
		return 0, err
	}
	fd, err := installFD(t, f, 0, sa.cloexec)
	return uint64(fd), err
}

func sysSocketpair(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	sa, err := socketType(t, int32(a[0]), int32(a[1]), int32(a[2]))
	if err != nil {
		return 0, err
	}
	if sa.domain != unix.AF_UNIX {
		return 0, unix.EOPNOTSUPP
	}
	cloexec := sa.cloexec
	fa, fb, err := t.Kernel().Net().Pair(sa.typ, sa.nonblock, credOf(t))
	if err != nil {
		return 0, err
	}
	afd, err := installFD(t, fa, 0, cloexec)
	if err != nil {
		fb.DecRef()
		return 0, err
	}
	bfd, err := installFD(t, fb, 0, cloexec)
	if err != nil {
		closeFD(t, afd)
		return 0, err
	}
	fds := [2]int32{afd, bfd}
	if err := copyOutStruct(t, a[3], &fds); err != nil {
		closeFD(t, afd)
		closeFD(t, bfd)
		return 0, err
	}
	return 0, nil
}

// getSocket returns the socket at fd (with a reference to its file):
// EBADF for a bad or O_PATH descriptor, ENOTSOCK for another file.
func getSocket(t *kernel.Task, fd uint64) (netstack.Sock, *vfs.File, error) {
	f, err := getNonPathFile(t, fd)
	if err != nil {
		return nil, nil, err
	}
	s, ok := netstack.SockOf(f)
	if !ok {
		f.DecRef()
		return nil, nil, unix.ENOTSOCK
	}
	return s, f, nil
}

// readSockaddr copies in a socket address of n bytes (move_addr_to_kernel).
func readSockaddr(t *kernel.Task, addr uint64, n int32) ([]byte, error) {
	if n < 0 || n > sockaddrMax {
		return nil, unix.EINVAL
	}
	b := make([]byte, n)
	if n > 0 {
		if err := copyIn(t, addr, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// unixName validates a sockaddr_un as unix_validate_addr does and returns
// the address as getsockname shows it, with the abstract name or the
// path it holds.
func unixName(b []byte) (addr []byte, abstract, path string, err error) {
	if len(b) <= sunPathOff || len(b) > sockaddrUnMax || binary.LittleEndian.Uint16(b) != unix.AF_UNIX {
		return nil, "", "", unix.EINVAL
	}
	sun := b[sunPathOff:]
	if sun[0] == 0 {
		return b, string(sun), "", nil
	}
	for i, c := range sun {
		if c == 0 {
			sun = sun[:i]
			break
		}
	}
	addr = append(append([]byte{unix.AF_UNIX, 0}, sun...), 0)
	return addr, "", string(sun), nil
}

// socketKey resolves the name in a sockaddr_un to what a socket is bound
// under: a path must lead to a socket file the caller may write
// (unix_find_bsd: ENOENT and the walk's errors, EACCES, ECONNREFUSED).
func socketKey(t *kernel.Task, b []byte) (netstack.Key, error) {
	_, abstract, path, err := unixName(b)
	if err != nil || abstract != "" {
		return netstack.Key{Abstract: abstract}, err
	}
	ctx := t.FSContext()
	v := t.Kernel().VFS()
	st, err := v.StatxAt(ctx, nil, path, 0, unix.STATX_BASIC_STATS)
	if err != nil {
		return netstack.Key{}, err
	}
	if err := v.AccessAt(ctx, nil, path, unix.W_OK, unix.AT_EACCESS); err != nil {
		return netstack.Key{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return netstack.Key{}, unix.ECONNREFUSED
	}
	return netstack.Key{File: netstack.FileID{Dev: unix.Mkdev(st.Dev_major, st.Dev_minor), Ino: st.Ino}}, nil
}

func sysBind(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	b, err := readSockaddr(t, a[1], int32(a[2]))
	if err != nil {
		return 0, err
	}
	switch s := s.(type) {
	case *netstack.InetSocket:
		return 0, s.Bind(b, t.ThreadGroup().Creds().Capable(unix.CAP_NET_BIND_SERVICE))
	case *netstack.NetlinkSocket:
		return 0, s.Bind(b, t.ThreadGroup().PID())
	}
	return 0, bindUnix(t, s.(*netstack.Socket), b)
}

// bindUnix binds a Unix-domain socket to the sockaddr_un b.
func bindUnix(t *kernel.Task, s *netstack.Socket, b []byte) error {
	if len(b) == sunPathOff && binary.LittleEndian.Uint16(b) == unix.AF_UNIX {
		return s.Autobind()
	}
	addr, abstract, path, err := unixName(b)
	if err != nil {
		return err
	}
	if abstract != "" {
		return s.Bind(netstack.Key{Abstract: abstract}, addr)
	}
	return bindPath(t, s, addr, path)
}

// bindPath makes the socket file at path (mode 0777 less the umask) and
// binds s to its inode; the file stays when s closes, as on Linux, and
// is removed again when s turns out to be bound already.
func bindPath(t *kernel.Task, s *netstack.Socket, addr []byte, path string) error {
	ctx := t.FSContext()
	v := t.Kernel().VFS()
	if err := v.MknodAt(ctx, nil, path, unix.S_IFSOCK|0o777, 0); err != nil {
		if err == unix.EEXIST {
			return unix.EADDRINUSE
		}
		return err
	}
	st, err := v.StatxAt(ctx, nil, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS)
	if err == nil {
		err = s.Bind(netstack.Key{File: netstack.FileID{Dev: unix.Mkdev(st.Dev_major, st.Dev_minor), Ino: st.Ino}}, addr)
	}
	if err != nil {
		v.UnlinkAt(ctx, nil, path, 0)
	}
	return err
}

func sysListen(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return 0, s.Listen(int(int32(a[1])), credOf(t))
}

func sysConnect(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	b, err := readSockaddr(t, a[1], int32(a[2]))
	if err != nil {
		return 0, err
	}
	nonblock := f.StatusFlags()&unix.O_NONBLOCK != 0
	switch s := s.(type) {
	case *netstack.InetSocket:
		return 0, s.Connect(t.Context(), b, nonblock)
	case *netstack.NetlinkSocket:
		return 0, s.Connect(b, t.ThreadGroup().PID(), t.ThreadGroup().Creds().Capable(unix.CAP_NET_ADMIN))
	}
	return 0, connectUnix(t, s.(*netstack.Socket), b, nonblock)
}

// connectUnix connects a Unix-domain socket to the sockaddr_un b.
func connectUnix(t *kernel.Task, s *netstack.Socket, b []byte, nonblock bool) error {
	if s.Type() == unix.SOCK_DGRAM && len(b) >= sunPathOff && binary.LittleEndian.Uint16(b) == unix.AF_UNSPEC {
		return s.Disconnect()
	}
	k, err := socketKey(t, b)
	if err != nil {
		return err
	}
	return s.Connect(t.Context(), k, nonblock, credOf(t))
}

func sysAccept(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return accept4(t, a[0], a[1], a[2], 0)
}

func sysAccept4(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return accept4(t, a[0], a[1], a[2], int32(a[3]))
}

func accept4(t *kernel.Task, fd, addr, lenAddr uint64, flags int32) (uint64, error) {
	if flags&^(unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK) != 0 {
		return 0, unix.EINVAL
	}
	s, f, err := getSocket(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	cloexec := flags&unix.SOCK_CLOEXEC != 0
	nfd, err := reserveFD(t, cloexec)
	if err != nil {
		return 0, err
	}
	nf, err := s.Accept(t.Context(), f.StatusFlags()&unix.O_NONBLOCK != 0, flags&unix.SOCK_NONBLOCK != 0)
	if err != nil {
		closeReserved(t, nfd)
		return 0, err
	}
	fillFD(t, nfd, nf, cloexec)
	if addr != 0 {
		ns, _ := netstack.SockOf(nf)
		peer, err := ns.PeerName()
		if err == nil {
			err = writeSockaddr(t, addr, lenAddr, peer)
		}
		if err != nil {
			closeFD(t, nfd)
			return 0, err
		}
	}
	return uint64(nfd), nil
}

// writeSockaddr copies an address out as move_addr_to_user does: the
// buffer's length is read first (EINVAL when negative), as much of the
// address as fits is written, and the length is set to the full size.
func writeSockaddr(t *kernel.Task, addr, lenAddr uint64, sa []byte) error {
	var n int32
	if err := copyInStruct(t, lenAddr, &n); err != nil {
		return err
	}
	if n < 0 {
		return unix.EINVAL
	}
	if k := min(int(n), len(sa)); k > 0 {
		if err := copyOut(t, addr, sa[:k]); err != nil {
			return err
		}
	}
	full := int32(len(sa))
	return copyOutStruct(t, lenAddr, &full)
}

func sysGetsockname(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return 0, writeSockaddr(t, a[1], a[2], s.Name())
}

func sysGetpeername(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	peer, err := s.PeerName()
	if err != nil {
		return 0, err
	}
	return 0, writeSockaddr(t, a[1], a[2], peer)
}

func sysShutdown(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return 0, s.Shutdown(int(int32(a[1])))
}

// sendArgs is one send: where to, with what flags and control messages.
type sendArgs struct {
	name    []byte // the destination address, nil for the peer
	flags   int
	control []byte
}

// send moves the guest data of iovs to s; an EPIPE raises SIGPIPE
// (through the dispatcher) only from a stream socket without
// MSG_NOSIGNAL.
func send(t *kernel.Task, s netstack.Sock, f *vfs.File, iovs []iovec, sa sendArgs) (uint64, error) {
	n, err := sendData(t, s, f, iovs, sa)
	if err == unix.EPIPE && (s.Type() != unix.SOCK_STREAM || sa.flags&unix.MSG_NOSIGNAL != 0) {
		err = quietError{unix.EPIPE}
	}
	return n, err
}

// sendData moves the guest data of iovs to s. A Unix stream takes it in
// pieces of streamChunk, TCP straight from pinned guest memory; a datagram
// or seqpacket message longer than any send buffer allows is EMSGSIZE
// before it is copied.
func sendData(t *kernel.Task, s netstack.Sock, f *vfs.File, iovs []iovec, sa sendArgs) (uint64, error) {
	if sa.flags&unix.MSG_OOB != 0 {
		return 0, unix.EOPNOTSUPP
	}
	o := netstack.SendOptions{
		Nonblock: f.StatusFlags()&unix.O_NONBLOCK != 0 || sa.flags&unix.MSG_DONTWAIT != 0,
		Cred:     credOf(t),
	}
	total := totalLen(iovs)
	if s.Type() == unix.SOCK_STREAM && total > streamChunk && vfs.MustNotWait(t.Context()) && !o.Nonblock {
		return 0, vfs.ErrWouldWait
	}
	if _, inet := s.(*netstack.InetSocket); inet {
		return sendInet(t, s, iovs, sa, o)
	}
	if _, nl := s.(*netstack.NetlinkSocket); nl {
		return sendNetlink(t, s, iovs, sa, o)
	}
	if len(sa.control) > 0 {
		c, err := netstack.ParseControl(sa.control, func(fd int32) (*vfs.File, error) {
			return getFile(t, uint64(uint32(fd)))
		}, func(c netstack.Cred) error { return checkCred(t, c) })
		if err != nil {
			return 0, err
		}
		o.Control = c
	}
	if sa.name != nil {
		switch s.Type() {
		case unix.SOCK_DGRAM:
			k, err := socketKey(t, sa.name)
			if err != nil {
				o.Control.Release()
				return 0, err
			}
			o.To = &k
		case unix.SOCK_STREAM:
			o.To = &netstack.Key{}
		}
	}
	return sendBuffered(t, s, iovs, o)
}

// sendBuffered copies the guest data of iovs in and sends it: a message
// at once, a stream in pieces of streamChunk.
func sendBuffered(t *kernel.Task, s netstack.Sock, iovs []iovec, o netstack.SendOptions) (uint64, error) {
	total := totalLen(iovs)
	if s.Type() != unix.SOCK_STREAM {
		if total > netstack.MaxMessage {
			o.Control.Release()
			return 0, unix.EMSGSIZE
		}
		buf := t.Scratch(int(total))
		if err := gather(t, iovs, buf); err != nil {
			o.Control.Release()
			return 0, err
		}
		n, err := s.Send(t.Context(), buf, o)
		return uint64(n), err
	}
	var done uint64
	for {
		buf := t.Scratch(int(min(total-done, streamChunk)))
		if err := gather(t, skip(iovs, done), buf); err != nil {
			o.Control.Release()
			return done, orPartial(done, err)
		}
		n, err := s.Send(t.Context(), buf, o)
		o.Control = netstack.Control{}
		done += uint64(n)
		if err != nil || n < len(buf) || done == total {
			return done, orPartial(done, err)
		}
	}
}

// sendInet sends on a TCP or UDP socket: control messages (none of
// which kvmbox supports on them: IP_TOS, IP_TTL, IP_PKTINFO...) are
// EINVAL, and TCP ignores a destination address, as Linux does.
func sendInet(t *kernel.Task, s netstack.Sock, iovs []iovec, sa sendArgs, o netstack.SendOptions) (uint64, error) {
	if len(sa.control) >= unix.SizeofCmsghdr {
		return 0, unix.EINVAL
	}
	if s.Type() != unix.SOCK_STREAM {
		o.Dest = sa.name
	}
	if is, ok := s.(*netstack.InetSocket); ok && s.Type() == unix.SOCK_STREAM && totalLen(iovs) > 0 {
		return sendTCPDirect(t, is, iovs, o)
	}
	return sendBuffered(t, s, iovs, o)
}

// sendNetlink sends to a netlink socket's kernel or peer. Control
// messages are checked as for a Unix socket and then dropped: nothing
// reads them, as in the kernel's rtnetlink.
func sendNetlink(t *kernel.Task, s netstack.Sock, iovs []iovec, sa sendArgs, o netstack.SendOptions) (uint64, error) {
	if len(sa.control) > 0 {
		c, err := netstack.ParseControl(sa.control, func(fd int32) (*vfs.File, error) {
			return getFile(t, uint64(uint32(fd)))
		}, func(c netstack.Cred) error { return checkCred(t, c) })
		if err != nil {
			return 0, err
		}
		c.Release()
	}
	o.Dest = sa.name
	o.NetAdmin = t.ThreadGroup().Creds().Capable(unix.CAP_NET_ADMIN)
	return sendBuffered(t, s, iovs, o)
}

// checkCred allows the SCM_CREDENTIALS a process may send (scm_check_creds):
// its own pid unless CAP_SYS_ADMIN, one of its uids unless CAP_SETUID, one
// of its gids unless CAP_SETGID.
func checkCred(t *kernel.Task, c netstack.Cred) error {
	cr := t.ThreadGroup().Creds()
	pidOK := c.PID == t.ThreadGroup().PID() || cr.Capable(unix.CAP_SYS_ADMIN)
	uidOK := c.UID == cr.UID || c.UID == cr.EUID || c.UID == cr.SUID || cr.Capable(unix.CAP_SETUID)
	gidOK := c.GID == cr.GID || c.GID == cr.EGID || c.GID == cr.SGID || cr.Capable(unix.CAP_SETGID)
	if pidOK && uidOK && gidOK {
		return nil
	}
	return unix.EPERM
}

// skip drops the first n bytes of iovs.
func skip(iovs []iovec, n uint64) []iovec {
	for len(iovs) > 0 && n >= iovs[0].Len {
		n -= iovs[0].Len
		iovs = iovs[1:]
	}
	if len(iovs) == 0 || n == 0 {
		return iovs
	}
	return append([]iovec{{Base: iovs[0].Base + n, Len: iovs[0].Len - n}}, iovs[1:]...)
}

// gather fills buf from the guest buffers of iovs.
func gather(t *kernel.Task, iovs []iovec, buf []byte) error {
	return eachIovec(t, iovs, buf, copyIn)
}

// scatter writes buf to the guest buffers of iovs.
func scatter(t *kernel.Task, iovs []iovec, buf []byte) error {
	return eachIovec(t, iovs, buf, copyOut)
}

// eachIovec copies between buf and the guest buffers of iovs, in order,
// until buf is used up.
func eachIovec(t *kernel.Task, iovs []iovec, buf []byte, copy func(*kernel.Task, uint64, []byte) error) error {
	for _, v := range iovs {
		if len(buf) == 0 {
			break
		}
		n := min(v.Len, uint64(len(buf)))
		if err := copy(t, v.Base, buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

func sysSendto(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	n, err := checkCount(a[2])
	if err != nil {
		return 0, err
	}
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	sa := sendArgs{flags: int(int32(a[3]))}
	if a[4] != 0 {
		if sa.name, err = readSockaddr(t, a[4], int32(a[5])); err != nil {
			return 0, err
		}
		if len(sa.name) == 0 {
			sa.name = nil
		}
	}
	return send(t, s, f, []iovec{{Base: a[1], Len: n}}, sa)
}

// readMsghdr reads a msghdr and its iovecs (copy_msghdr_from_user): a
// missing name has length 0, a longer one than sockaddr_storage is cut
// to it, a negative one is EINVAL.
func readMsghdr(t *kernel.Task, addr uint64) (msghdr, []iovec, error) {
	var m msghdr
	if err := copyInStruct(t, addr, &m); err != nil {
		return m, nil, err
	}
	if m.Name == 0 {
		m.Namelen = 0
	}
	if int32(m.Namelen) < 0 {
		return m, nil, unix.EINVAL
	}
	m.Namelen = min(m.Namelen, sockaddrMax)
	if m.Iovlen > uioMaxIov {
		return m, nil, unix.EMSGSIZE
	}
	iovs, err := readIovecs(t, m.Iov, m.Iovlen)
	return m, iovs, err
}

func sysSendmsg(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return sendmsg(t, s, f, a[1], int(int32(a[2])))
}

// sendmsg sends the message of the msghdr at addr.
func sendmsg(t *kernel.Task, s netstack.Sock, f *vfs.File, addr uint64, flags int) (uint64, error) {
	m, iovs, err := readMsghdr(t, addr)
	if err != nil {
		return 0, err
	}
	sa := sendArgs{flags: flags}
	if m.Namelen > 0 {
		if sa.name, err = readSockaddr(t, m.Name, int32(m.Namelen)); err != nil {
			return 0, err
		}
	}
	if m.Controllen > 0 {
		if m.Controllen > netstack.MaxControl {
			return 0, unix.ENOBUFS
		}
		sa.control = make([]byte, m.Controllen)
		if err := copyIn(t, m.Control, sa.control); err != nil {
			return 0, err
		}
	}
	return send(t, s, f, iovs, sa)
}

// recvArgs is one receive: its flags and where the control messages go.
type recvArgs struct {
	flags      int
	controlLen uint64
}

// recvOut is what a receive returns besides the count.
type recvOut struct {
	from     []byte
	control  netstack.ControlWriter
	msgFlags int32
}

// recv receives into the guest buffers of iovs and installs the
// descriptors received, as far as the control buffer holds them.
func recv(t *kernel.Task, s netstack.Sock, f *vfs.File, iovs []iovec, ra recvArgs) (uint64, recvOut, error) {
	var out recvOut
	if ra.flags&unix.MSG_OOB != 0 {
		return 0, out, unix.EOPNOTSUPP
	}
	o := netstack.RecvOptions{
		Nonblock: f.StatusFlags()&unix.O_NONBLOCK != 0 || ra.flags&unix.MSG_DONTWAIT != 0,
		Peek:     ra.flags&unix.MSG_PEEK != 0,
		WaitAll:  ra.flags&unix.MSG_WAITALL != 0,
		Trunc:    ra.flags&unix.MSG_TRUNC != 0,
	}
	limit := uint64(netstack.MaxMessage)
	stream := s.Type() == unix.SOCK_STREAM
	if stream {
		limit = streamChunk
	}
	total := totalLen(iovs)
	// MSG_TRUNC on TCP receives the data into nothing, as Linux does.
	is, inet := s.(*netstack.InetSocket)
	discard := inet && stream && o.Trunc
	if inet && stream && !discard {
		r, ok, err := recvTCPDirect(t, is, iovs, o)
		if ok {
			return uint64(r.N), out, err
		}
	}
	buf := t.Scratch(int(min(total, limit)))
	r, err := s.Recv(t.Context(), buf, o)
	if err != nil {
		return 0, out, err
	}
	put := func(iovs []iovec, b []byte) error {
		if discard {
			return nil
		}
		return scatter(t, iovs, b)
	}
	if err := put(iovs, buf[:r.N]); err != nil {
		r.Control.Release()
		return 0, out, err
	}
	// MSG_WAITALL past one buffer's worth goes on buffer by buffer.
	for stream && o.WaitAll && !o.Peek && r.N == len(buf) && uint64(r.N) < total && len(r.Control.Files) == 0 {
		more := buf[:min(total-uint64(r.N), limit)]
		m, err := s.Recv(t.Context(), more, o)
		if err != nil {
			break
		}
		if err := put(skip(iovs, uint64(r.N)), more[:m.N]); err != nil {
			m.Control.Release()
			break
		}
		r.N += m.N
		r.Len += m.N
		r.Control.Files = m.Control.Files
		if m.N < len(more) {
			break
		}
	}
	out.from = r.From
	if r.Truncated {
		out.msgFlags |= unix.MSG_TRUNC
	}
	out.control.Buf = make([]byte, min(ra.controlLen, 4096))
	if r.Control.Cred != nil {
		out.control.PutCred(*r.Control.Cred)
	}
	if files := r.Control.Files; len(files) > 0 {
		room := out.control.RightsRoom()
		var fds []int32
		for i, rf := range files {
			if i >= room {
				rf.DecRef()
				continue
			}
			fd, err := installFD(t, rf, 0, ra.flags&unix.MSG_CMSG_CLOEXEC != 0)
			if err != nil {
				room = i
				continue
			}
			fds = append(fds, fd)
		}
		if len(fds) > 0 {
			out.control.PutRights(fds)
		}
		if len(fds) < len(files) {
			out.control.Truncated = true
		}
	}
	if out.control.Truncated {
		out.msgFlags |= unix.MSG_CTRUNC
	}
	return uint64(r.Len), out, nil
}

func sysRecvfrom(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	n, err := checkCount(a[2])
	if err != nil {
		return 0, err
	}
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	got, out, err := recv(t, s, f, []iovec{{Base: a[1], Len: n}}, recvArgs{flags: int(int32(a[3]))})
	if err != nil {
		return 0, err
	}
	if a[4] != 0 {
		if err := writeSockaddr(t, a[4], a[5], out.from); err != nil {
			return 0, err
		}
	}
	return got, nil
}

func sysRecvmsg(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	return recvmsg(t, s, f, a[1], int(int32(a[2])))
}

// recvmsg receives into the msghdr at addr and writes back its name
// length, control length and flags.
func recvmsg(t *kernel.Task, s netstack.Sock, f *vfs.File, addr uint64, flags int) (uint64, error) {
	m, iovs, err := readMsghdr(t, addr)
	if err != nil {
		return 0, err
	}
	got, out, err := recv(t, s, f, iovs, recvArgs{flags: flags, controlLen: m.Controllen})
	if err != nil {
		return 0, err
	}
	if m.Name != 0 {
		k := min(int(m.Namelen), len(out.from))
		if k > 0 {
			if err := copyOut(t, m.Name, out.from[:k]); err != nil {
				return 0, err
			}
		}
		m.Namelen = uint32(len(out.from))
	}
	if out.control.Len > 0 {
		if err := copyOut(t, m.Control, out.control.Buf[:out.control.Len]); err != nil {
			return 0, err
		}
	}
	// Only msg_namelen (when there is a name), msg_controllen and
	// msg_flags are written back, as on Linux.
	if m.Name != 0 {
		if err := copyOutStruct(t, addr+uint64(unsafe.Offsetof(m.Namelen)), &m.Namelen); err != nil {
			return 0, err
		}
	}
	m.Controllen = uint64(out.control.Len)
	m.Flags = out.msgFlags | int32(flags&unix.MSG_CMSG_CLOEXEC)
	if err := copyOutStruct(t, addr+uint64(unsafe.Offsetof(m.Controllen)), &m.Controllen); err != nil {
		return 0, err
	}
	if err := copyOutStruct(t, addr+uint64(unsafe.Offsetof(m.Flags)), &m.Flags); err != nil {
		return 0, err
	}
	return got, nil
}

// sizeofMmsghdr is struct mmsghdr: a msghdr and the length of its
// message.
const sizeofMmsghdr = uint64(unsafe.Sizeof(msghdr{})) + 8

// sysSendmmsg sends the messages of an array of mmsghdr, at most
// UIO_MAXIOV, until one fails.
func sysSendmmsg(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	vlen := min(uint32(a[2]), uioMaxIov)
	flags := int(int32(a[3]))
	var sent uint32
	for ; sent < vlen; sent++ {
		hdr := a[1] + uint64(sent)*sizeofMmsghdr
		n, err := sendmsg(t, s, f, hdr, flags)
		if err == nil {
			err = copyOutStruct(t, hdr+sizeofMmsghdr-8, ptrTo(uint32(n)))
		}
		if err != nil {
			// Messages sent are reported, the error lost, as on Linux.
			return uint64(sent), orPartial(uint64(sent), err)
		}
	}
	return uint64(sent), nil
}

// sysRecvmmsg receives into an array of mmsghdr until a receive fails
// (after the first: MSG_WAITFORONE makes the rest non-blocking) or the
// timeout has passed when a message arrives.
func sysRecvmmsg(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	var deadline time.Time
	if a[4] != 0 {
		d, err := readTimespec(t, a[4])
		if err != nil {
			return 0, err
		}
		deadline = time.Now().Add(d)
	}
	vlen := min(uint32(a[2]), uioMaxIov)
	flags := int(int32(a[3]))
	var got uint32
	for ; got < vlen; got++ {
		hdr := a[1] + uint64(got)*sizeofMmsghdr
		n, err := recvmsg(t, s, f, hdr, flags&^unix.MSG_WAITFORONE)
		if err == nil {
			err = copyOutStruct(t, hdr+sizeofMmsghdr-8, ptrTo(uint32(n)))
		}
		if err != nil {
			return uint64(got), orPartial(uint64(got), err)
		}
		if flags&unix.MSG_WAITFORONE != 0 {
			flags |= unix.MSG_DONTWAIT
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			got++
			break
		}
	}
	return uint64(got), nil
}

func ptrTo[T any](v T) *T { return &v }

// socketRead implements read and readv on a socket: recvmsg without
// flags, which drops any descriptors the data carried.
func socketRead(t *kernel.Task, s netstack.Sock, f *vfs.File, iovs []iovec) (uint64, error) {
	if totalLen(iovs) == 0 {
		return 0, nil
	}
	n, _, err := recv(t, s, f, iovs, recvArgs{})
	return n, err
}

// socketWrite implements write and writev on a socket: sendmsg without
// flags, raising SIGPIPE on EPIPE as a write does.
func socketWrite(t *kernel.Task, s netstack.Sock, f *vfs.File, iovs []iovec) (uint64, error) {
	return send(t, s, f, iovs, sendArgs{})
}

// sockoptInt reads setsockopt's int value (sk_setsockopt: optlen below
// sizeof(int) is EINVAL).
func sockoptInt(t *kernel.Task, addr uint64, n int32) (int32, error) {
	if n < 4 {
		return 0, unix.EINVAL
	}
	var v int32
	err := copyInStruct(t, addr, &v)
	return v, err
}

func sysSetsockopt(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	level, name, optlen := int32(a[1]), int32(a[2]), int32(a[4])
	read := func(n int) ([]byte, error) {
		b := make([]byte, n)
		return b, copyIn(t, a[3], b)
	}
	switch s := s.(type) {
	case *netstack.InetSocket:
		return 0, s.SetSockopt(int(level), int(name), int(optlen), read)
	case *netstack.NetlinkSocket:
		return 0, s.SetSockopt(int(level), int(name), int(optlen), read)
	}
	return 0, setUnixSockopt(t, s.(*netstack.Socket), level, name, optlen, a[3])
}

// setUnixSockopt implements setsockopt(2) of a Unix-domain socket.
func setUnixSockopt(t *kernel.Task, s *netstack.Socket, level, name, optlen int32, addr uint64) error {
	if optlen < 0 {
		return unix.EINVAL
	}
	if level != unix.SOL_SOCKET {
		return unix.EOPNOTSUPP
	}
	switch name {
	case unix.SO_SNDBUF, unix.SO_RCVBUF, unix.SO_PASSCRED, unix.SO_REUSEADDR, unix.SO_REUSEPORT, unix.SO_KEEPALIVE, unix.SO_BROADCAST:
	default:
		return unix.ENOPROTOOPT
	}
	v, err := sockoptInt(t, addr, optlen)
	if err != nil {
		return err
	}
	switch name {
	case unix.SO_SNDBUF, unix.SO_RCVBUF:
		s.SetBuffer(name == unix.SO_SNDBUF, int(v))
	case unix.SO_PASSCRED:
		s.SetPassCred(v != 0)
	case unix.SO_REUSEPORT:
		// Linux keeps port reuse to inet sockets.
		if v != 0 {
			return unix.EOPNOTSUPP
		}
	case unix.SO_REUSEADDR, unix.SO_KEEPALIVE, unix.SO_BROADCAST:
		s.SetFlag(int(name), v != 0)
	}
	return nil
}

func sysGetsockopt(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	s, f, err := getSocket(t, a[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	var n int32
	if is, ok := s.(interface {
		GetSockopt(level, name, optlen int) ([]byte, error)
	}); ok {
		if err := copyInStruct(t, a[4], &n); err != nil {
			return 0, err
		}
		val, err := is.GetSockopt(int(int32(a[1])), int(int32(a[2])), int(n))
		if err != nil {
			return 0, err
		}
		return 0, putSockopt(t, a[3], a[4], val)
	}
	us := s.(*netstack.Socket)
	if int32(a[1]) != unix.SOL_SOCKET {
		return 0, unix.EOPNOTSUPP
	}
	if err := copyInStruct(t, a[4], &n); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, unix.EINVAL
	}
	var val []byte
	putInt := func(v int) {
		val = binary.LittleEndian.AppendUint32(nil, uint32(v))
	}
	switch int32(a[2]) {
	case unix.SO_TYPE:
		putInt(s.Type())
	case unix.SO_DOMAIN:
		putInt(unix.AF_UNIX)
	case unix.SO_PROTOCOL:
		putInt(0)
	case unix.SO_ACCEPTCONN:
		putInt(int(boolInt(us.Listening())))
	case unix.SO_ERROR:
		putInt(int(s.TakeError()))
	case unix.SO_SNDBUF:
		snd, _ := us.Buffers()
		putInt(snd)
	case unix.SO_RCVBUF:
		_, rcv := us.Buffers()
		putInt(rcv)
	case unix.SO_PASSCRED:
		putInt(int(boolInt(us.PassCred())))
	case unix.SO_REUSEADDR, unix.SO_KEEPALIVE, unix.SO_BROADCAST:
		putInt(int(boolInt(us.Flag(int(int32(a[2]))))))
	case unix.SO_REUSEPORT:
		putInt(0)
	case unix.SO_PEERCRED:
		c := us.PeerCred()
		val = binary.LittleEndian.AppendUint32(nil, uint32(c.PID))
		val = binary.LittleEndian.AppendUint32(val, c.UID)
		val = binary.LittleEndian.AppendUint32(val, c.GID)
	default:
		return 0, unix.ENOPROTOOPT
	}
	return 0, putSockopt(t, a[3], a[4], val[:min(int(n), len(val))])
}

// putSockopt copies an option's value out and stores its length.
func putSockopt(t *kernel.Task, addr, lenAddr uint64, val []byte) error {
	if len(val) > 0 {
		if err := copyOut(t, addr, val); err != nil {
			return err
		}
	}
	got := int32(len(val))
	return copyOutStruct(t, lenAddr, &got)
}
