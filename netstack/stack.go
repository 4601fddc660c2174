// Package netstack implements sockets. Unix-domain sockets (stream,
// datagram and seqpacket) live entirely in the sandbox: their names are
// abstract names kept per Stack or socket files of the sandbox's VFS,
// looked up by the inode the name leads to. TCP and UDP sockets, over
// IPv4 and IPv6, are endpoints of the sandbox's own gVisor TCP/IP stack,
// whose only interface is loopback unless Options.Uplink adds eth0 to a
// router stack in the same process; there, under Options.Outbound, the
// flows a Policy allows are made again from the host, and a DNS
// resolver answers the names it allows; Options.Publish relays host
// ports' connections and datagrams through the router into the sandbox.
package netstack

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/kvmbox/kvmbox/vfs"
)

// FileID is the inode a socket file name leads to: its device and inode
// numbers as stat shows them.
type FileID struct {
	Dev, Ino uint64
}

// Key is a name that sockets bind to and connect to: an abstract name
// (which starts with a NUL byte, so is never empty) or a socket file.
type Key struct {
	Abstract string
	File     FileID
}

// Stack is the network of one sandbox. One lock guards every socket of
// it: Unix sockets reach into their peers' state on every operation.
type Stack struct {
	mu    sync.Mutex
	names map[Key]*Socket
	// nextAuto is the next abstract name autobind tries.
	nextAuto uint32
	// inflight counts, per socket, the references to its file held by
	// messages in some receive queue (SCM_RIGHTS), for collect.
	inflight map[*Socket]int
	// netlink holds the ports netlink sockets are bound to.
	netlink netlinkPorts
	// sockets lists the open Unix and inet sockets, for /proc/net.
	sockets registry

	// inetMu guards inet, the TCP/IP stack, made by the first inet
	// socket (most sandboxes never have one) and destroyed by Close.
	inetMu sync.Mutex
	inet   *stack.Stack
	// router is the far end of eth0 (Options.Uplink), made with inet.
	router *stack.Stack
	// ports relays the published ports (Options.Publish) to the router.
	ports *publisher
	// policy, when outbound access is on, decides the flows out makes
	// for the router.
	policy *policy
	out    *outbound
	closed bool
	opts   Options
}

// NewStack returns an empty network with loopback only.
func NewStack() *Stack {
	return &Stack{names: make(map[Key]*Socket), inflight: make(map[*Socket]int)}
}

// waitLocked releases st.mu until one of the channels is closed or ctx is
// cancelled (EINTR). A nil channel is never ready.
func (st *Stack) waitLocked(ctx context.Context, a, b chan struct{}) error {
	st.mu.Unlock()
	defer st.mu.Lock()
	select {
	case <-a:
		return nil
	case <-b:
		return nil
	case <-ctx.Done():
		return unix.EINTR
	}
}

// autobindLocked gives s an abstract name of five hex digits, as Linux's
// autobind does.
func (st *Stack) autobindLocked(s *Socket) error {
	for range 1 << 20 {
		st.nextAuto = (st.nextAuto + 1) & 0xfffff
		name := fmt.Sprintf("\x00%05x", st.nextAuto)
		k := Key{Abstract: name}
		if _, taken := st.names[k]; taken {
			continue
		}
		st.names[k] = s
		s.key = k
		s.addr = append([]byte{unix.AF_UNIX, 0}, name...)
		return nil
	}
	return unix.ENOSPC
}

// collectLocked frees the messages of sockets that only messages in
// flight still reach, as Linux's unix_gc does: a socket whose every file
// reference sits in a receive queue, and which no queue of a socket still
// reachable from a descriptor holds, can never be read again. It returns
// the files whose references the caller drops after unlocking st.mu.
func (st *Stack) collectLocked() []*vfs.File {
	if len(st.inflight) == 0 {
		return nil
	}
	// Candidates: sockets referenced by in-flight messages only.
	cand := make(map[*Socket]bool)
	for s, n := range st.inflight {
		if s.file != nil && s.file.Refs() == int64(n) {
			cand[s] = true
		}
	}
	if len(cand) == 0 {
		return nil
	}
	// References from candidates' own queues do not make a candidate
	// reachable; any other reference does.
	internal := make(map[*Socket]int)
	for s := range cand {
		s.forFiles(func(o *Socket) {
			if cand[o] {
				internal[o]++
			}
		})
	}
	var reach []*Socket
	reached := make(map[*Socket]bool)
	for s := range cand {
		if st.inflight[s] > internal[s] {
			reach = append(reach, s)
			reached[s] = true
		}
	}
	for len(reach) > 0 {
		s := reach[len(reach)-1]
		reach = reach[:len(reach)-1]
		s.forFiles(func(o *Socket) {
			if cand[o] && !reached[o] {
				reached[o] = true
				reach = append(reach, o)
			}
		})
	}
	var drop []*vfs.File
	for s := range cand {
		if !reached[s] {
			drop = append(drop, s.purgeLocked()...)
		}
	}
	return drop
}

// dropFiles releases files outside st.mu (a file's release may be a
// socket's, which takes it).
func dropFiles(files []*vfs.File) {
	for _, f := range files {
		f.DecRef()
	}
}
