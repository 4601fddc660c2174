package syscalls

import (
	"encoding/binary"
	"unsafe"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/netstack"
	"golang.org/x/sys/unix"
)

// ifconf is struct ifconf with its buffer kept as a guest address.
type ifconf struct {
	Len int32
	_   int32
	Buf uint64
}

// socketIoctl answers the ioctls every socket takes (sock_ioctl): the
// interface ioctls and SIOCOUTQ; handled is false for others, which go
// on to the generic file ioctls.
func socketIoctl(t *kernel.Task, s netstack.Sock, cmd uint32, arg uint64) (handled bool, err error) {
	family := unix.AF_UNIX
	switch s := s.(type) {
	case *netstack.InetSocket:
		family = s.Family()
	case *netstack.NetlinkSocket:
		family = unix.AF_NETLINK
	}
	net := t.Kernel().Net()
	switch {
	case cmd == unix.SIOCGIFCONF:
		var c ifconf
		if err := copyInStruct(t, arg, &c); err != nil {
			return true, err
		}
		buf, total, err := net.IfConf(int(c.Len), c.Buf == 0)
		if err != nil {
			return true, err
		}
		if len(buf) > 0 {
			if err := copyOut(t, c.Buf, buf); err != nil {
				return true, err
			}
		}
		c.Len = int32(total)
		return true, copyOutStruct(t, arg+uint64(unsafe.Offsetof(c.Len)), &c.Len)
	case netstack.IsIfreqIoctl(family, cmd):
		ifr := make([]byte, netstack.SizeofIfreq)
		if err := copyIn(t, arg, ifr); err != nil {
			return true, err
		}
		if err := net.IfreqIoctl(cmd, ifr); err != nil {
			return true, err
		}
		return true, copyOut(t, arg, ifr)
	case cmd == unix.SIOCOUTQ || cmd == unix.SIOCINQ:
		is, ok := s.(*netstack.InetSocket)
		if !ok {
			return false, nil
		}
		in, out, err := is.QueueSizes()
		if err != nil {
			return true, err
		}
		n := in
		if cmd == unix.SIOCOUTQ {
			n = out
		}
		return true, copyOut(t, arg, binary.LittleEndian.AppendUint32(nil, uint32(n)))
	}
	return false, nil
}
