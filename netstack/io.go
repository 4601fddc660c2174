package netstack

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// SendOptions qualify a send.
type SendOptions struct {
	Nonblock bool
	// To is the destination of sendto/sendmsg with an address; nil sends
	// to the connected peer.
	To *Key
	// Dest is the guest's destination address of an inet socket's
	// sendto or sendmsg, nil when it gave none.
	Dest []byte
	// Control is taken over by Send: its files go with the message or
	// are dropped.
	Control Control
	// Cred is the sender's identity, which the message carries unless
	// Control has SCM_CREDENTIALS.
	Cred Cred
	// NetAdmin says the sender has CAP_NET_ADMIN, which netlink
	// messages to other ports and groups take.
	NetAdmin bool
}

// Send implements sendmsg(2) of data as one write: a stream socket takes
// it in pieces and returns how much it took; a datagram or seqpacket
// socket sends it as one message or not at all.
func (s *Socket) Send(ctx context.Context, data []byte, o SendOptions) (int, error) {
	st := s.st
	st.mu.Lock()
	cred := o.Cred
	if o.Control.Cred != nil {
		cred = *o.Control.Cred
	}
	// m carries the files until a piece of the write takes them.
	m := &message{files: o.Control.Files, cred: cred}
	var n int
	var err error
	if s.typ == unix.SOCK_STREAM {
		n, err = s.sendStreamLocked(ctx, data, o, m)
	} else {
		n, err = s.sendMessageLocked(ctx, data, o, m)
	}
	var drop []*vfs.File
	if m.files != nil {
		drop = m.files // never queued
	} else if len(o.Control.Files) > 0 {
		drop = st.collectLocked()
	}
	st.mu.Unlock()
	dropFiles(drop)
	return n, err
}

// sendStreamLocked queues data for s's peer in pieces of at most half
// the send buffer, waiting while the buffer is full. The first piece
// carries m's files.
func (s *Socket) sendStreamLocked(ctx context.Context, data []byte, o SendOptions, m *message) (int, error) {
	if o.To != nil {
		if s.state == connected {
			return 0, unix.EISCONN
		}
		return 0, unix.EOPNOTSUPP
	}
	p := s.peer
	if p == nil || s.state != connected {
		return 0, unix.ENOTCONN
	}
	if s.shut&shutSend != 0 {
		return 0, unix.EPIPE
	}
	if vfs.MustNotWait(ctx) && !o.Nonblock && s.wmem+len(data)+msgOverhead > s.sndbuf {
		return 0, vfs.ErrWouldWait
	}
	sent := 0
	for sent < len(data) {
		if s.shut&shutSend != 0 || p.released || p.shut&shutRcv != 0 {
			return orSent(sent, unix.EPIPE)
		}
		if s.wmem < s.sndbuf {
			n := min(len(data)-sent, max(s.sndbuf/2-64, 1))
			piece := &message{data: append([]byte(nil), data[sent:sent+n]...), files: m.files, cred: m.cred, from: s.addr, sender: s}
			m.files = nil
			p.enqueueLocked(piece)
			sent += n
			continue
		}
		if o.Nonblock {
			return orSent(sent, unix.EAGAIN)
		}
		if vfs.MustNotWait(ctx) {
			return orSent(sent, vfs.ErrWouldWait)
		}
		if err := s.st.waitLocked(ctx, s.changed, p.changed); err != nil {
			return orSent(sent, err)
		}
	}
	return sent, nil
}

// orSent hides an error behind a partial send.
func orSent(sent int, err error) (int, error) {
	if sent > 0 {
		return sent, nil
	}
	return 0, err
}

// sendMessageLocked sends data as one datagram or seqpacket record.
func (s *Socket) sendMessageLocked(ctx context.Context, data []byte, o SendOptions, m *message) (int, error) {
	if len(data) > s.sndbuf-32 {
		return 0, unix.EMSGSIZE
	}
	var target *Socket
	if s.typ == unix.SOCK_SEQPACKET {
		if s.err != 0 {
			err := s.err
			s.err = 0
			return 0, err
		}
		if s.state != connected {
			return 0, unix.ENOTCONN
		}
		target = s.peer
	} else {
		if s.passcred && s.addr == nil {
			if err := s.st.autobindLocked(s); err != nil {
				return 0, err
			}
		}
		if o.To != nil {
			t, err := s.lookupLocked(*o.To)
			if err != nil {
				return 0, err
			}
			target = t
		} else if target = s.peer; target == nil {
			return 0, unix.ENOTCONN
		}
	}
	for {
		if s.shut&shutSend != 0 {
			return 0, unix.EPIPE
		}
		if target.released {
			if target == s.peer && !s.connectionOriented() {
				s.disconnectLocked()
			}
			return 0, unix.ECONNREFUSED
		}
		if !s.connectionOriented() && target.peer != nil && target.peer != s {
			return 0, unix.EPERM
		}
		if target.shut&shutRcv != 0 {
			return 0, unix.EPIPE
		}
		if s.wmem < s.sndbuf && (target.peer == s || !target.recvqFull()) {
			target.enqueueLocked(&message{data: append([]byte(nil), data...), files: m.files, cred: m.cred, from: s.addr, sender: s})
			m.files = nil
			return len(data), nil
		}
		if o.Nonblock {
			return 0, unix.EAGAIN
		}
		if vfs.MustNotWait(ctx) {
			return 0, vfs.ErrWouldWait
		}
		if err := s.st.waitLocked(ctx, s.changed, target.changed); err != nil {
			return 0, err
		}
	}
}

// RecvOptions qualify a receive.
type RecvOptions struct {
	Nonblock bool
	Peek     bool // MSG_PEEK
	WaitAll  bool // MSG_WAITALL
	Trunc    bool // MSG_TRUNC: return a datagram's full length
}

// RecvResult is what a receive got.
type RecvResult struct {
	// N is the number of bytes placed in the buffer; Len the length to
	// return (the datagram's full length with RecvOptions.Trunc).
	N, Len int
	// Truncated is MSG_TRUNC in msg_flags: a datagram did not fit.
	Truncated bool
	// From is the sender's address, nil when unnamed.
	From []byte
	// Control holds the descriptors received (the caller's references)
	// and the sender's credentials when SO_PASSCRED is on.
	Control Control
}

// Recv implements recvmsg(2) into dst.
func (s *Socket) Recv(ctx context.Context, dst []byte, o RecvOptions) (RecvResult, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.typ == unix.SOCK_STREAM {
		return s.recvStreamLocked(ctx, dst, o)
	}
	return s.recvMessageLocked(ctx, dst, o)
}

// waitRecvLocked is what a receive that found nothing does: the pending
// error, end of file after shutdown, EAGAIN, or a wait (nil).
func (s *Socket) waitRecvLocked(ctx context.Context, nonblock bool) (done bool, err error) {
	if s.err != 0 {
		err = s.err
		s.err = 0
		return true, err
	}
	if s.shut&shutRcv != 0 {
		return true, nil
	}
	if nonblock {
		return true, unix.EAGAIN
	}
	if vfs.MustNotWait(ctx) {
		return true, vfs.ErrWouldWait
	}
	return false, s.st.waitLocked(ctx, s.changed, nil)
}

// deliverLocked fills r's sender and credentials from m.
func (s *Socket) deliverLocked(r *RecvResult, m *message) {
	r.From = m.from
	if s.passcred {
		c := m.cred
		r.Control.Cred = &c
	}
}

// takeFiles gives the caller m's files: a peek gets new references.
func takeFiles(s *Socket, r *RecvResult, m *message, peek bool) {
	if peek {
		for _, f := range m.files {
			f.IncRef()
		}
		r.Control.Files = append(r.Control.Files, m.files...)
		return
	}
	for _, f := range m.files {
		if o, ok := FromFile(f); ok {
			if s.st.inflight[o]--; s.st.inflight[o] == 0 {
				delete(s.st.inflight, o)
			}
		}
	}
	r.Control.Files = append(r.Control.Files, m.files...)
	m.files = nil
}

func (s *Socket) recvStreamLocked(ctx context.Context, dst []byte, o RecvOptions) (RecvResult, error) {
	var r RecvResult
	if s.state != connected {
		return r, unix.EINVAL
	}
	if vfs.MustNotWait(ctx) && o.WaitAll && !o.Nonblock && s.rqBytes < len(dst) && s.shut&shutRcv == 0 {
		return r, vfs.ErrWouldWait
	}
	target := 1
	if o.WaitAll && !o.Peek {
		target = len(dst)
	}
	for {
		if len(s.rq) > 0 {
			if s.readStreamLocked(&r, dst, o.Peek) || r.N >= target || len(dst) == 0 {
				r.Len = r.N
				return r, nil
			}
			continue
		}
		done, err := s.waitRecvLocked(ctx, o.Nonblock)
		if r.N > 0 && (done || err != nil) {
			r.Len = r.N
			return r, nil
		}
		if done || err != nil {
			return r, err
		}
	}
}

// readStreamLocked moves queued bytes into dst[r.N:] until it is full,
// the queue is empty, a message with descriptors has been read from, or
// (with SO_PASSCRED) the next message comes from another sender. It
// reports whether the read must stop there.
func (s *Socket) readStreamLocked(r *RecvResult, dst []byte, peek bool) bool {
	var first *Cred
	for i := 0; i < len(s.rq) && r.N < len(dst); {
		m := s.rq[i]
		if first == nil {
			if r.N == 0 {
				s.deliverLocked(r, m)
			}
			first = &m.cred
		} else if s.passcred && m.cred != *first {
			return true
		}
		n := copy(dst[r.N:], m.data[m.off:])
		r.N += n
		hasFiles := len(m.files) > 0
		if hasFiles {
			takeFiles(s, r, m, peek)
		}
		if peek {
			i++
		} else {
			m.off += n
			s.rqBytes -= n
			s.unchargeLocked(m, n)
			if m.off == len(m.data) {
				s.dequeueLocked()
			}
		}
		if hasFiles {
			return true
		}
	}
	return peek
}

func (s *Socket) recvMessageLocked(ctx context.Context, dst []byte, o RecvOptions) (RecvResult, error) {
	var r RecvResult
	if s.typ == unix.SOCK_SEQPACKET && s.state != connected {
		return r, unix.ENOTCONN
	}
	for {
		if len(s.rq) > 0 {
			m := s.rq[0]
			r.N = copy(dst, m.data)
			r.Len = r.N
			if len(m.data) > len(dst) {
				r.Truncated = true
				if o.Trunc {
					r.Len = len(m.data)
				}
			}
			s.deliverLocked(&r, m)
			takeFiles(s, &r, m, o.Peek)
			if !o.Peek {
				s.dequeueLocked()
			}
			return r, nil
		}
		if done, err := s.waitRecvLocked(ctx, o.Nonblock); done || err != nil {
			return r, err
		}
	}
}
