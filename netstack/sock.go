package netstack

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// Sock is what the socket system calls ask of every socket, Unix-domain
// (*Socket) or inet (*InetSocket); binding, connecting and options
// differ by family and go to the types themselves.
type Sock interface {
	vfs.FileImpl
	vfs.Poller
	Type() int
	Listen(backlog int, cred Cred) error
	Accept(ctx context.Context, nonblock, newNonblock bool) (*vfs.File, error)
	Name() []byte
	PeerName() ([]byte, error)
	Shutdown(how int) error
	Send(ctx context.Context, data []byte, o SendOptions) (int, error)
	Recv(ctx context.Context, dst []byte, o RecvOptions) (RecvResult, error)
	TakeError() unix.Errno
}

var (
	_ Sock = (*Socket)(nil)
	_ Sock = (*InetSocket)(nil)
)

// SockOf returns the socket behind f, if it is one.
func SockOf(f *vfs.File) (Sock, bool) {
	s, ok := f.Impl().(Sock)
	return s, ok
}
