package netstack

import (
	"encoding/binary"
	"math"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Bounds of the TCP keepalive options (MAX_TCP_KEEPIDLE,
// MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT).
const (
	maxKeepIdle  = 32767
	maxKeepIntvl = 32767
	maxKeepCnt   = 127
)

// maxLingerSec bounds SO_LINGER's time, as MAX_SCHEDULE_TIMEOUT/HZ does.
const maxLingerSec = 1 << 30

// sizeofLinger and sizeofTimeval are struct linger and struct timeval.
const (
	sizeofLinger  = 8
	sizeofTimeval = 16
)

// defaultTTL is net.ipv4.ip_default_ttl and the IPv6 hop limit of lo:
// what IP_TTL and IPV6_UNICAST_HOPS read until set.
const defaultTTL = 64

// ecnMask is INET_ECN_MASK: the bits of IP_TOS that TCP keeps its own.
const ecnMask = 3

// OptReader reads a setsockopt value of n bytes from the guest; it
// returns EFAULT when it cannot.
type OptReader func(n int) ([]byte, error)

// SetSockopt implements setsockopt(2) of an inet socket with optlen
// bytes at the guest's option pointer, which read fetches, with the
// checks and errno of Linux: a value too short is EINVAL, an option the
// level lacks (or an unknown level) ENOPROTOOPT.
func (s *InetSocket) SetSockopt(level, name, optlen int, read OptReader) error {
	if optlen < 0 {
		return unix.EINVAL
	}
	switch level {
	case unix.SOL_SOCKET:
		return s.setSocketOpt(name, optlen, read)
	case unix.IPPROTO_TCP:
		if s.typ != unix.SOCK_STREAM {
			return unix.ENOPROTOOPT
		}
		return s.setTCPOpt(name, optlen, read)
	case unix.IPPROTO_IP:
		return s.setIPOpt(name, optlen, read)
	case unix.IPPROTO_IPV6:
		if s.family != unix.AF_INET6 {
			return unix.ENOPROTOOPT
		}
		return s.setIPv6Opt(name, optlen, read)
	}
	return unix.ENOPROTOOPT
}

// readInt reads an int option: shorter than an int is EINVAL.
func readInt(optlen int, read OptReader) (int32, error) {
	if optlen < 4 {
		return 0, unix.EINVAL
	}
	b, err := read(4)
	if err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(b)), nil
}

func (s *InetSocket) setSocketOpt(name, optlen int, read OptReader) error {
	v, err := readInt(optlen, read)
	if err != nil {
		return err
	}
	ops := s.ep.SocketOptions()
	switch name {
	case unix.SO_REUSEADDR:
		ops.SetReuseAddress(v != 0)
	case unix.SO_REUSEPORT:
		ops.SetReusePort(v != 0)
	case unix.SO_KEEPALIVE:
		ops.SetKeepAlive(v != 0)
	case unix.SO_BROADCAST:
		ops.SetBroadcast(v != 0)
	case unix.SO_SNDBUF, unix.SO_RCVBUF:
		s.setBuffer(name == unix.SO_SNDBUF, int(v))
	case unix.SO_LINGER:
		if optlen < sizeofLinger {
			return unix.EINVAL
		}
		b, err := read(sizeofLinger)
		if err != nil {
			return err
		}
		on := binary.LittleEndian.Uint32(b) != 0
		sec := int64(binary.LittleEndian.Uint32(b[4:]))
		if uint32(sec) >= maxLingerSec {
			sec = maxLingerSec
		}
		ops.SetLinger(tcpip.LingerOption{Enabled: on, Timeout: time.Duration(sec) * time.Second})
	case unix.SO_RCVTIMEO, unix.SO_SNDTIMEO:
		if optlen < sizeofTimeval {
			return unix.EINVAL
		}
		b, err := read(sizeofTimeval)
		if err != nil {
			return err
		}
		d, err := timeoutOf(int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:])))
		if err != nil {
			return err
		}
		s.mu.Lock()
		if name == unix.SO_RCVTIMEO {
			s.rcvTimeout = d
		} else {
			s.sndTimeout = d
		}
		s.mu.Unlock()
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

// timeoutOf is the wait a struct timeval sets for SO_RCVTIMEO or
// SO_SNDTIMEO (sock_set_timeout): microseconds out of range are EDOM, a
// negative time waits not at all, zero for good.
func timeoutOf(sec, usec int64) (time.Duration, error) {
	switch {
	case usec < 0 || usec >= 1e6:
		return 0, unix.EDOM
	case sec < 0:
		return time.Nanosecond, nil
	case sec > math.MaxInt64/int64(time.Second)-1:
		return 0, nil
	}
	return time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond, nil
}

// setBuffer sets SO_SNDBUF or SO_RCVBUF as Linux does: the request
// bounded by the maximum, doubled for bookkeeping, at least the minimum.
func (s *InetSocket) setBuffer(send bool, v int) {
	if v < 0 || v > maxBuf {
		v = maxBuf
	}
	v *= 2
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := s.ep.SocketOptions()
	if send {
		s.sndbuf = max(v, minSndBuf)
		ops.SetSendBufferSize(int64(s.sndbuf), true)
	} else {
		s.rcvbuf = max(v, minRcvBuf)
		ops.SetReceiveBufferSize(int64(s.rcvbuf), true)
	}
}

func (s *InetSocket) setTCPOpt(name, optlen int, read OptReader) error {
	v, err := readInt(optlen, read)
	if err != nil {
		return err
	}
	ops := s.ep.SocketOptions()
	switch name {
	case unix.TCP_NODELAY:
		ops.SetDelayOption(v == 0)
	case unix.TCP_CORK:
		ops.SetCorkOption(v != 0)
	case unix.TCP_KEEPIDLE:
		if v < 1 || v > maxKeepIdle {
			return unix.EINVAL
		}
		opt := tcpip.KeepaliveIdleOption(time.Duration(v) * time.Second)
		return errnoOf(s.ep.SetSockOpt(&opt))
	case unix.TCP_KEEPINTVL:
		if v < 1 || v > maxKeepIntvl {
			return unix.EINVAL
		}
		opt := tcpip.KeepaliveIntervalOption(time.Duration(v) * time.Second)
		return errnoOf(s.ep.SetSockOpt(&opt))
	case unix.TCP_KEEPCNT:
		if v < 1 || v > maxKeepCnt {
			return unix.EINVAL
		}
		return errnoOf(s.ep.SetSockOptInt(tcpip.KeepaliveCountOption, int(v)))
	default:
		return unix.ENOPROTOOPT
	}
	return nil
}

func (s *InetSocket) setIPOpt(name, optlen int, read OptReader) error {
	if name != unix.IP_TOS && name != unix.IP_TTL && name != unix.IP_RECVERR {
		return unix.ENOPROTOOPT
	}
	// IP options take an int or a single byte.
	var v int
	switch {
	case optlen >= 4:
		b, err := read(4)
		if err != nil {
			return err
		}
		v = int(int32(binary.LittleEndian.Uint32(b)))
	case optlen >= 1:
		b, err := read(1)
		if err != nil {
			return err
		}
		v = int(b[0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == unix.IP_RECVERR {
		s.recvErr = v != 0
		return nil
	}
	if name == unix.IP_TTL {
		if optlen < 1 || v != -1 && (v < 1 || v > 255) {
			return unix.EINVAL
		}
		s.ttl = v
		if s.family == unix.AF_INET {
			return errnoOf(s.ep.SetSockOptInt(tcpip.IPv4TTLOption, max(v, tcpip.UseDefaultIPv4TTL)))
		}
		return nil
	}
	v &= 0xff
	if s.typ == unix.SOCK_STREAM {
		v = v&^ecnMask | s.tos&ecnMask
	}
	s.tos = v
	if s.family == unix.AF_INET {
		return errnoOf(s.ep.SetSockOptInt(tcpip.IPv4TOSOption, v))
	}
	return nil
}

func (s *InetSocket) setIPv6Opt(name, optlen int, read OptReader) error {
	if name != unix.IPV6_V6ONLY && name != unix.IPV6_UNICAST_HOPS && name != unix.IPV6_RECVERR {
		return unix.ENOPROTOOPT
	}
	v, err := readInt(optlen, read)
	if err != nil {
		return err
	}
	if name == unix.IPV6_RECVERR {
		s.mu.Lock()
		s.recvErr6 = v != 0
		s.mu.Unlock()
		return nil
	}
	if name == unix.IPV6_UNICAST_HOPS {
		if v < -1 || v > 255 {
			return unix.EINVAL
		}
		return errnoOf(s.ep.SetSockOptInt(tcpip.IPv6HopLimitOption, int(v)))
	}
	if a, err := s.ep.GetLocalAddress(); err == nil && a.Port != 0 {
		return unix.EINVAL
	}
	s.ep.SocketOptions().SetV6Only(v != 0)
	return nil
}

// GetSockopt implements getsockopt(2) of an inet socket: the value
// Linux would copy out for a buffer of optlen bytes, whose length the
// caller stores back.
func (s *InetSocket) GetSockopt(level, name, optlen int) ([]byte, error) {
	switch level {
	case unix.SOL_SOCKET:
		if optlen < 0 {
			return nil, unix.EINVAL
		}
		v, err := s.socketOpt(name)
		if err != nil {
			return nil, err
		}
		return v[:min(optlen, len(v))], nil
	case unix.IPPROTO_TCP:
		if s.typ != unix.SOCK_STREAM {
			return nil, unix.ENOPROTOOPT
		}
		if name == unix.TCP_INFO {
			if optlen < 0 {
				return nil, unix.EINVAL
			}
			info := s.tcpInfo()
			return unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofTCPInfo)[:min(optlen, unix.SizeofTCPInfo)], nil
		}
		v, err := s.tcpOpt(name)
		if err != nil {
			return nil, err
		}
		return intOpt(v)[:uint(min(uint(optlen), 4))], nil
	case unix.IPPROTO_IP:
		if optlen < 0 {
			return nil, unix.EINVAL
		}
		var v int
		s.mu.Lock()
		switch name {
		case unix.IP_TOS:
			v = s.tos
		case unix.IP_TTL:
			v = s.ttl
			if v < 0 {
				v = defaultTTL
			}
		case unix.IP_RECVERR:
			v = boolOpt(s.recvErr)
		default:
			s.mu.Unlock()
			return nil, unix.ENOPROTOOPT
		}
		s.mu.Unlock()
		if optlen < 4 && optlen > 0 {
			return []byte{byte(v)}, nil
		}
		return intOpt(v)[:min(optlen, 4)], nil
	case unix.IPPROTO_IPV6:
		if s.family != unix.AF_INET6 {
			return nil, unix.ENOPROTOOPT
		}
		var v int
		switch name {
		case unix.IPV6_V6ONLY:
			v = boolOpt(s.ep.SocketOptions().GetV6Only())
		case unix.IPV6_UNICAST_HOPS:
			hops, err := s.ep.GetSockOptInt(tcpip.IPv6HopLimitOption)
			if err != nil {
				return nil, errnoOf(err)
			}
			v = hops
			if v < 0 {
				v = defaultTTL
			}
		case unix.IPV6_RECVERR:
			s.mu.Lock()
			v = boolOpt(s.recvErr6)
			s.mu.Unlock()
		default:
			return nil, unix.ENOPROTOOPT
		}
		return intOpt(v)[:uint(min(uint(optlen), 4))], nil
	}
	return nil, unix.ENOPROTOOPT
}

func intOpt(v int) []byte {
	return binary.LittleEndian.AppendUint32(nil, uint32(v))
}

func boolOpt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *InetSocket) socketOpt(name int) ([]byte, error) {
	ops := s.ep.SocketOptions()
	switch name {
	case unix.SO_TYPE:
		return intOpt(s.typ), nil
	case unix.SO_DOMAIN:
		return intOpt(s.family), nil
	case unix.SO_PROTOCOL:
		return intOpt(s.protocol), nil
	case unix.SO_ACCEPTCONN:
		return intOpt(boolOpt(s.typ == unix.SOCK_STREAM && ops.GetAcceptConn())), nil
	case unix.SO_ERROR:
		return intOpt(int(s.TakeError())), nil
	case unix.SO_REUSEADDR:
		return intOpt(boolOpt(ops.GetReuseAddress())), nil
	case unix.SO_REUSEPORT:
		return intOpt(boolOpt(ops.GetReusePort())), nil
	case unix.SO_KEEPALIVE:
		return intOpt(boolOpt(ops.GetKeepAlive())), nil
	case unix.SO_BROADCAST:
		return intOpt(boolOpt(ops.GetBroadcast())), nil
	case unix.SO_SNDBUF, unix.SO_RCVBUF:
		s.mu.Lock()
		defer s.mu.Unlock()
		if name == unix.SO_SNDBUF {
			return intOpt(s.sndbuf), nil
		}
		return intOpt(s.rcvbuf), nil
	case unix.SO_LINGER:
		l := ops.GetLinger()
		b := intOpt(boolOpt(l.Enabled))
		return binary.LittleEndian.AppendUint32(b, uint32(l.Timeout/time.Second)), nil
	case unix.SO_RCVTIMEO, unix.SO_SNDTIMEO:
		rcv, snd := s.timeouts()
		d := snd
		if name == unix.SO_RCVTIMEO {
			d = rcv
		}
		b := binary.LittleEndian.AppendUint64(nil, uint64(d/time.Second))
		return binary.LittleEndian.AppendUint64(b, uint64(d%time.Second/time.Microsecond)), nil
	}
	return nil, unix.ENOPROTOOPT
}

// tcpInfo is TCP_INFO: the state, the congestion state and window, the
// timers and the segment sizes the stack keeps; counters it does not
// keep (retransmissions, segments, bytes, delivery rates) are 0.
func (s *InetSocket) tcpInfo() unix.TCPInfo {
	var info unix.TCPInfo
	state := tcp.EndpointState(s.ep.State())
	switch state {
	case tcp.StateInitial, tcp.StateBound, tcp.StateError:
		state = tcp.StateClose
	case tcp.StateConnecting:
		state = tcp.StateSynSent
	}
	info.State = uint8(state)
	const mssDefault = 536 // TCP_MSS_DEFAULT, the size before a connection
	info.Snd_mss, info.Rcv_mss, info.Advmss = mssDefault, mssDefault, mssDefault
	var ti tcpip.TCPInfoOption
	if err := s.ep.GetSockOpt(&ti); err == nil {
		info.Ca_state = uint8(ti.CcState)
		info.Rto = uint32(ti.RTO.Microseconds())
		info.Rtt = uint32(ti.RTT.Microseconds())
		info.Rttvar = uint32(ti.RTTVar.Microseconds())
		info.Snd_cwnd = ti.SndCwnd
		info.Snd_ssthresh = ti.SndSsthresh
	}
	switch state {
	case tcp.StateClose, tcp.StateListen, tcp.StateSynSent:
	default:
		const optSACK = 2 // TCPI_OPT_SACK: the stack negotiates SACK on every connection
		info.Options = optSACK
		if mss, err := s.ep.GetSockOptInt(tcpip.MaxSegOption); err == nil && mss > 0 {
			info.Snd_mss, info.Rcv_mss, info.Advmss = uint32(mss), uint32(mss), uint32(mss)
		}
	}
	return info
}

func (s *InetSocket) tcpOpt(name int) (int, error) {
	ops := s.ep.SocketOptions()
	switch name {
	case unix.TCP_NODELAY:
		return boolOpt(!ops.GetDelayOption()), nil
	case unix.TCP_CORK:
		return boolOpt(ops.GetCorkOption()), nil
	case unix.TCP_KEEPIDLE:
		var v tcpip.KeepaliveIdleOption
		if err := s.ep.GetSockOpt(&v); err != nil {
			return 0, errnoOf(err)
		}
		return int(time.Duration(v) / time.Second), nil
	case unix.TCP_KEEPINTVL:
		var v tcpip.KeepaliveIntervalOption
		if err := s.ep.GetSockOpt(&v); err != nil {
			return 0, errnoOf(err)
		}
		return int(time.Duration(v) / time.Second), nil
	case unix.TCP_KEEPCNT:
		v, err := s.ep.GetSockOptInt(tcpip.KeepaliveCountOption)
		return v, errnoOf(err)
	}
	return 0, unix.ENOPROTOOPT
}

// TakeError is SO_ERROR: the pending error, which it clears. The stack
// may hold the error twice, as the connection's and as the last one
// reported: both go, so that the next SO_ERROR is 0 as on Linux.
func (s *InetSocket) TakeError() unix.Errno {
	err := s.ep.LastError()
	if err == nil {
		return 0
	}
	s.ep.LastError()
	if e, ok := errnoOf(err).(unix.Errno); ok {
		return e
	}
	return 0
}
