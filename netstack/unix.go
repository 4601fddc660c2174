package netstack

import (
	"context"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

var _ vfs.Poller = (*Socket)(nil)

// Buffer sizes: Linux's defaults (wmem_default, rmem_default), the bound
// on what SO_SNDBUF and SO_RCVBUF ask for (wmem_max, rmem_max) and the
// floors of what they set (SOCK_MIN_SNDBUF, SOCK_MIN_RCVBUF).
const (
	DefaultBuf = 212992
	maxBuf     = 212992
	minSndBuf  = 4608
	minRcvBuf  = 2304
)

// MaxMessage bounds a datagram or seqpacket message: the largest send
// buffer less Linux's 32 bytes of overhead.
const MaxMessage = 2*maxBuf - 32

// dgramQlen is net.unix.max_dgram_qlen: a datagram socket that is not
// the sender's peer takes this many messages (and one more) before
// senders wait.
const dgramQlen = 10

// msgOverhead is what each queued message costs its sender's send buffer
// besides its data, as an skb's truesize does on Linux: empty messages
// must not fill memory for free.
const msgOverhead = 512

// maxBacklog is net.core.somaxconn.
const maxBacklog = 4096

// Shutdown bits (RCV_SHUTDOWN, SEND_SHUTDOWN).
const (
	shutRcv  = 1
	shutSend = 2
	shutBoth = shutRcv | shutSend
)

type state int

const (
	unconnected state = iota
	listening
	connected
)

// inodes numbers sockets for fstat and /proc/PID/fd.
var inodes atomic.Uint64

// message is one queued write: a datagram, or a piece of a stream.
type message struct {
	data  []byte
	off   int // the part of a stream message already read
	files []*vfs.File
	cred  Cred
	// from is the sender's address when it was sent (nil when unnamed);
	// sender is charged for the bytes until they are read.
	from   []byte
	sender *Socket
}

// Socket is a Unix-domain socket: the FileImpl of its file.
type Socket struct {
	st   *Stack
	typ  int
	ino  uint64
	uid  uint32
	gid  uint32
	file *vfs.File // nil for a connection not yet accepted

	// Guarded by st.mu.
	state    state
	released bool
	key      Key
	addr     []byte // the bound sockaddr_un, nil when unnamed
	peer     *Socket
	// dgramFrom are the datagram sockets connected to this one, told when
	// it has room again.
	dgramFrom map[*Socket]struct{}
	rq        []*message
	rqBytes   int
	wmem      int // bytes sent and not yet read
	sndbuf    int
	rcvbuf    int
	shut      int
	err       unix.Errno
	passcred  bool
	// flags are the SOL_SOCKET flags that only getsockopt reads back on
	// a Unix socket (SO_REUSEADDR, SO_KEEPALIVE, SO_BROADCAST).
	flags    map[int]bool
	peerCred Cred
	backlog  int
	pending  []*Socket // connections waiting for accept
	// changed is closed and replaced at every change, waking the calls
	// waiting on this socket.
	changed chan struct{}
	waiters vfs.Queue
}

// ValidType reports whether typ (without SOCK_NONBLOCK and SOCK_CLOEXEC)
// is a Unix socket type.
func ValidType(typ int) bool {
	return typ == unix.SOCK_STREAM || typ == unix.SOCK_DGRAM || typ == unix.SOCK_SEQPACKET
}

func (st *Stack) newSocket(typ int, cred Cred) *Socket {
	s := &Socket{st: st, typ: typ, ino: inodes.Add(1), uid: cred.UID, gid: cred.GID,
		sndbuf: DefaultBuf, rcvbuf: DefaultBuf, changed: make(chan struct{})}
	st.sockets.add(s)
	return s
}

func (s *Socket) newFile(nonblock bool) *vfs.File {
	flags := unix.O_RDWR
	if nonblock {
		flags |= unix.O_NONBLOCK
	}
	s.file = vfs.NewFile(s, flags)
	return s.file
}

// New implements socket(2) for AF_UNIX: typ is the socket type without
// flags; cred owns the socket.
func (st *Stack) New(typ int, nonblock bool, cred Cred) (*vfs.File, error) {
	if !ValidType(typ) {
		return nil, unix.ESOCKTNOSUPPORT
	}
	return st.newSocket(typ, cred).newFile(nonblock), nil
}

// Pair implements socketpair(2): two sockets connected to each other,
// each with cred as its peer's credentials.
func (st *Stack) Pair(typ int, nonblock bool, cred Cred) (a, b *vfs.File, err error) {
	if !ValidType(typ) {
		return nil, nil, unix.ESOCKTNOSUPPORT
	}
	sa, sb := st.newSocket(typ, cred), st.newSocket(typ, cred)
	sa.peer, sb.peer = sb, sa
	sa.state, sb.state = connected, connected
	sa.peerCred, sb.peerCred = cred, cred
	if typ == unix.SOCK_DGRAM {
		sa.dgramFrom = map[*Socket]struct{}{sb: {}}
		sb.dgramFrom = map[*Socket]struct{}{sa: {}}
	}
	return sa.newFile(nonblock), sb.newFile(nonblock), nil
}

// FromFile returns the Unix-domain socket behind f, if it is one.
func FromFile(f *vfs.File) (*Socket, bool) {
	s, ok := f.Impl().(*Socket)
	return s, ok
}

// Type is SO_TYPE.
func (s *Socket) Type() int { return s.typ }

// wakeLocked wakes the calls waiting on s and tells its waiters.
func (s *Socket) wakeLocked(events uint32) {
	close(s.changed)
	s.changed = make(chan struct{})
	s.waiters.Notify(events)
}

// connectionOriented reports whether s is a stream or seqpacket socket.
func (s *Socket) connectionOriented() bool {
	return s.typ != unix.SOCK_DGRAM
}

// Bind implements bind(2) to k, whose sockaddr is addr. An address taken
// is EADDRINUSE, a socket already named EINVAL.
func (s *Socket) Bind(k Key, addr []byte) error {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.addr != nil {
		return unix.EINVAL
	}
	if _, taken := st.names[k]; taken {
		return unix.EADDRINUSE
	}
	st.names[k] = s
	s.key = k
	s.addr = append([]byte(nil), addr...)
	return nil
}

// Autobind implements bind(2) with an empty address, which leaves a
// socket that has a name alone.
func (s *Socket) Autobind() error {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.addr != nil {
		return nil
	}
	return st.autobindLocked(s)
}

// Listen implements listen(2); cred is what connecting peers see.
func (s *Socket) Listen(backlog int, cred Cred) error {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case !s.connectionOriented():
		return unix.EOPNOTSUPP
	case s.addr == nil, s.state == connected:
		return unix.EINVAL
	}
	if uint(backlog) > maxBacklog {
		backlog = maxBacklog
	}
	s.backlog = backlog
	s.peerCred = cred
	s.state = listening
	s.wakeLocked(vfs.AllEvents)
	return nil
}

// Accept implements accept4(2): it returns the next connection's file.
func (s *Socket) Accept(ctx context.Context, nonblock, newNonblock bool) (*vfs.File, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if !s.connectionOriented() {
		return nil, unix.EOPNOTSUPP
	}
	for {
		if s.state != listening {
			return nil, unix.EINVAL
		}
		if len(s.pending) > 0 {
			ns := s.pending[0]
			s.pending = s.pending[1:]
			ns.passcred = s.passcred
			s.wakeLocked(unix.POLLOUT)
			return ns.newFile(newNonblock), nil
		}
		if nonblock {
			return nil, unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			return nil, vfs.ErrWouldWait
		}
		if err := st.waitLocked(ctx, s.changed, nil); err != nil {
			return nil, err
		}
	}
}

// lookupLocked finds the socket bound to k: ECONNREFUSED when none is,
// EPROTOTYPE when it is of another type.
func (s *Socket) lookupLocked(k Key) (*Socket, error) {
	o, ok := s.st.names[k]
	if !ok {
		return nil, unix.ECONNREFUSED
	}
	if o.typ != s.typ {
		return nil, unix.EPROTOTYPE
	}
	return o, nil
}

// Connect implements connect(2) to the socket bound to k; cred is the
// caller's, which the accepted socket's SO_PEERCRED reports.
func (s *Socket) Connect(ctx context.Context, k Key, nonblock bool, cred Cred) error {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.passcred && s.addr == nil {
		if err := st.autobindLocked(s); err != nil {
			return err
		}
	}
	o, err := s.lookupLocked(k)
	if err != nil {
		return err
	}
	if !s.connectionOriented() {
		return s.connectDgramLocked(o)
	}
	// Linux checks the listener and its backlog before the caller's own
	// state: a connected socket connecting to a full backlog gets EAGAIN.
	for {
		if o.released || o.state != listening {
			return unix.ECONNREFUSED
		}
		if len(o.pending) <= o.backlog {
			break
		}
		if nonblock {
			return unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			return vfs.ErrWouldWait
		}
		if err := st.waitLocked(ctx, o.changed, nil); err != nil {
			return err
		}
	}
	switch s.state {
	case listening:
		return unix.EINVAL
	case connected:
		return unix.EISCONN
	}
	ns := st.newSocket(s.typ, Cred{UID: o.uid, GID: o.gid})
	ns.state, ns.peer, ns.peerCred = connected, s, cred
	ns.addr = o.addr // shown by getsockname, but the listener's to own
	ns.sndbuf, ns.rcvbuf = o.sndbuf, o.rcvbuf
	s.state, s.peer, s.peerCred = connected, ns, o.peerCred
	o.pending = append(o.pending, ns)
	o.wakeLocked(unix.POLLIN | unix.EPOLLRDNORM)
	s.wakeLocked(vfs.AllEvents)
	return nil
}

func (s *Socket) connectDgramLocked(o *Socket) error {
	if o.peer != nil && o.peer != s {
		return unix.EPERM
	}
	s.disconnectLocked()
	s.peer = o
	if o.dgramFrom == nil {
		o.dgramFrom = make(map[*Socket]struct{})
	}
	o.dgramFrom[s] = struct{}{}
	s.wakeLocked(vfs.AllEvents)
	return nil
}

// Disconnect implements connect(2) to AF_UNSPEC: a datagram socket forgets
// its peer.
func (s *Socket) Disconnect() error {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.connectionOriented() {
		return unix.EINVAL
	}
	s.disconnectLocked()
	return nil
}

func (s *Socket) disconnectLocked() {
	if s.peer != nil {
		delete(s.peer.dgramFrom, s)
		s.peer = nil
	}
}

// Name returns the bound address (getsockname): just the family when
// unnamed.
func (s *Socket) Name() []byte {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.addr == nil {
		return []byte{unix.AF_UNIX, 0}
	}
	return s.addr
}

// PeerName implements getpeername(2).
func (s *Socket) PeerName() ([]byte, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	p := s.peer
	if p == nil || s.connectionOriented() && s.state != connected {
		return nil, unix.ENOTCONN
	}
	if p.addr == nil {
		return []byte{unix.AF_UNIX, 0}, nil
	}
	return p.addr, nil
}

// PeerCred is SO_PEERCRED: Linux reports pid 0 and the overflow ids
// (65534) for a socket without a peer.
func (s *Socket) PeerCred() Cred {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.peer == nil && s.state != listening {
		return Cred{UID: 65534, GID: 65534}
	}
	return s.peerCred
}

// Listening is SO_ACCEPTCONN.
func (s *Socket) Listening() bool {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.state == listening
}

// TakeError is SO_ERROR: the pending error, which it clears.
func (s *Socket) TakeError() unix.Errno {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	e := s.err
	s.err = 0
	return e
}

// Buffers returns SO_SNDBUF and SO_RCVBUF.
func (s *Socket) Buffers() (snd, rcv int) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.sndbuf, s.rcvbuf
}

// SetBuffer sets SO_SNDBUF (send true) or SO_RCVBUF as Linux does: the
// request, bounded by the maximum, doubled for bookkeeping overhead, and
// at least the minimum.
func (s *Socket) SetBuffer(send bool, v int) {
	if v < 0 || v > maxBuf {
		v = maxBuf // as an unsigned value, a negative one is too large
	}
	v *= 2
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if send {
		s.sndbuf = max(v, minSndBuf)
		s.wakeLocked(unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND)
	} else {
		s.rcvbuf = max(v, minRcvBuf)
	}
}

// PassCred returns SO_PASSCRED.
func (s *Socket) PassCred() bool {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.passcred
}

// SetPassCred sets SO_PASSCRED.
func (s *Socket) SetPassCred(on bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	s.passcred = on
}

// SetFlag sets a SOL_SOCKET flag that has no effect on Unix sockets but
// what getsockopt reads back.
func (s *Socket) SetFlag(name int, on bool) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.flags == nil {
		s.flags = make(map[int]bool)
	}
	s.flags[name] = on
}

// Flag returns a flag SetFlag set.
func (s *Socket) Flag(name int) bool {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.flags[name]
}

// Shutdown implements shutdown(2) with SHUT_RD, SHUT_WR or SHUT_RDWR.
func (s *Socket) Shutdown(how int) error {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	mode := how + 1
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	s.shut |= mode
	s.wakeLocked(vfs.AllEvents)
	if p := s.peer; p != nil && s.connectionOriented() {
		if mode&shutRcv != 0 {
			p.shut |= shutSend
		}
		if mode&shutSend != 0 {
			p.shut |= shutRcv
		}
		p.wakeLocked(vfs.AllEvents)
	}
	return nil
}

// enqueueLocked puts m on s's receive queue.
func (s *Socket) enqueueLocked(m *message) {
	s.rq = append(s.rq, m)
	s.rqBytes += len(m.data)
	m.sender.wmem += len(m.data) + msgOverhead
	for _, f := range m.files {
		if o, ok := FromFile(f); ok {
			s.st.inflight[o]++
		}
	}
	s.wakeLocked(unix.POLLIN | unix.EPOLLRDNORM)
}

// dequeueLocked removes the first message from s's queue; its files are
// the caller's.
func (s *Socket) dequeueLocked() *message {
	m := s.rq[0]
	s.rq[0] = nil
	s.rq = s.rq[1:]
	s.rqBytes -= len(m.data) - m.off
	s.unchargeLocked(m, len(m.data)-m.off+msgOverhead)
	for _, f := range m.files {
		if o, ok := FromFile(f); ok {
			if s.st.inflight[o]--; s.st.inflight[o] == 0 {
				delete(s.st.inflight, o)
			}
		}
	}
	return m
}

// unchargeLocked gives the sender of m back n bytes of its send buffer.
func (s *Socket) unchargeLocked(m *message, n int) {
	w := m.sender
	before := w.wmem
	w.wmem -= n
	if before >= w.sndbuf || before*4 > w.sndbuf && w.wmem*4 <= w.sndbuf {
		w.wakeLocked(unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND)
	}
	for o := range s.dgramFrom {
		o.wakeLocked(unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND)
	}
}

// forFiles calls fn for every socket whose file s's queue holds.
func (s *Socket) forFiles(fn func(*Socket)) {
	for _, m := range s.rq {
		for _, f := range m.files {
			if o, ok := FromFile(f); ok {
				fn(o)
			}
		}
	}
}

// purgeLocked empties s's receive queue and returns the files its
// messages held.
func (s *Socket) purgeLocked() []*vfs.File {
	var files []*vfs.File
	for len(s.rq) > 0 {
		files = append(files, s.dequeueLocked().files...)
	}
	return files
}

// Release closes the socket: its name goes, its peer sees the connection
// end, its queued messages and the descriptors in them are dropped.
func (s *Socket) Release() {
	st := s.st
	st.mu.Lock()
	files := s.releaseLocked(false)
	files = append(files, st.collectLocked()...)
	st.mu.Unlock()
	dropFiles(files)
}

// releaseLocked closes s; embryo is true for a connection its listener
// never accepted, whose peer gets ECONNRESET.
func (s *Socket) releaseLocked(embryo bool) []*vfs.File {
	st := s.st
	s.released = true
	st.sockets.remove(s)
	if s.addr != nil && st.names[s.key] == s {
		delete(st.names, s.key)
	}
	unread := len(s.rq) > 0
	files := s.purgeLocked()
	for _, ns := range s.pending {
		files = append(files, ns.releaseLocked(true)...)
	}
	s.pending = nil
	if p := s.peer; p != nil {
		if s.connectionOriented() {
			p.shut = shutBoth
			if unread || embryo {
				p.err = unix.ECONNRESET
			}
			p.wakeLocked(vfs.AllEvents)
		} else {
			delete(p.dgramFrom, s)
		}
	}
	for o := range s.dgramFrom {
		o.wakeLocked(vfs.AllEvents)
	}
	s.state = unconnected
	s.shut = shutBoth
	s.wakeLocked(vfs.AllEvents)
	return files
}

// Readiness implements vfs.Poller with the events of Linux's unix_poll
// (stream) and unix_dgram_poll (datagram, seqpacket).
func (s *Socket) Readiness(mask uint32) uint32 {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	var ev uint32
	if s.err != 0 {
		ev |= unix.POLLERR
	}
	if s.shut&shutRcv != 0 {
		ev |= unix.POLLRDHUP | unix.POLLIN | unix.EPOLLRDNORM
	}
	if s.shut == shutBoth {
		ev |= unix.POLLHUP
	}
	if len(s.rq) > 0 || len(s.pending) > 0 {
		ev |= unix.POLLIN | unix.EPOLLRDNORM
	}
	if s.connectionOriented() && s.state == unconnected {
		ev |= unix.POLLHUP
	}
	if s.writableLocked() {
		ev |= unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND
	}
	return ev & (mask | unix.POLLERR | unix.POLLHUP)
}

func (s *Socket) writableLocked() bool {
	if s.state == listening || s.wmem*4 > s.sndbuf {
		return false
	}
	p := s.peer
	return s.connectionOriented() || p == nil || p.peer == s || !p.recvqFull()
}

func (s *Socket) recvqFull() bool {
	return len(s.rq) > dgramQlen
}

// EventRegister implements vfs.Poller.
func (s *Socket) EventRegister(w *vfs.Waiter) { s.waiters.EventRegister(w) }

// EventUnregister implements vfs.Poller.
func (s *Socket) EventUnregister(w *vfs.Waiter) { s.waiters.EventUnregister(w) }

// Stat answers fstat: a socket inode, mode 0777, owned by its creator.
func (s *Socket) Stat(context.Context) (unix.Statx_t, error) {
	return socketStat(s.uid, s.gid, s.ino), nil
}

// Queued implements FIONREAD: the bytes queued, or for a datagram socket
// the size of the next datagram.
func (s *Socket) Queued() int {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.typ == unix.SOCK_DGRAM {
		if len(s.rq) == 0 {
			return 0
		}
		return len(s.rq[0].data)
	}
	return s.rqBytes
}

// Read implements read(2): recv without flags.
func (s *Socket) Read(ctx context.Context, f *vfs.File, dst []byte, _ int64) (int, error) {
	r, err := s.Recv(ctx, dst, RecvOptions{Nonblock: f.StatusFlags()&unix.O_NONBLOCK != 0})
	r.Control.Release()
	return r.N, err
}

// Write implements write(2): send without flags.
func (s *Socket) Write(ctx context.Context, f *vfs.File, src []byte, _ int64) (int, error) {
	return s.Send(ctx, src, SendOptions{Nonblock: f.StatusFlags()&unix.O_NONBLOCK != 0})
}

// socketStat is what fstat shows of a socket: an inode of its own, mode
// 0777, owned by its creator.
func socketStat(uid, gid uint32, ino uint64) unix.Statx_t {
	return unix.Statx_t{
		Mask:    unix.STATX_BASIC_STATS,
		Mode:    unix.S_IFSOCK | 0o777,
		Nlink:   1,
		Uid:     uid,
		Gid:     gid,
		Ino:     ino,
		Blksize: 4096,
	}
}
