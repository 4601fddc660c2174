package netstack

import (
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The uplink network, numbered as QEMU's user networking and
// gvisor-tap-vsock number theirs: the sandbox is GuestAddr on eth0, and
// its gateway, GatewayAddr, is the router, a second TCP/IP stack in the
// kvmbox process where the sandbox's outbound flows and the host's
// connections to published ports end.
var (
	GuestAddr   = tcpip.AddrFrom4([4]byte{10, 0, 2, 15})
	GatewayAddr = tcpip.AddrFrom4([4]byte{10, 0, 2, 2})
)

const (
	uplinkPrefixLen = 24
	// uplinkNIC is eth0's interface index in the sandbox; routerNIC is
	// the router's side of the same link.
	uplinkNIC = 2
	routerNIC = 1
	// uplinkMTU is eth0's MTU. The link is a pair of stacks in one
	// process, not a wire: a large MTU saves segmenting.
	uplinkMTU = 65520
)

// Options chooses what the sandbox's network reaches beyond loopback.
type Options struct {
	// Uplink gives the sandbox eth0, with GuestAddr and a default route
	// through GatewayAddr to the router.
	Uplink bool
	// Publish are host ports whose connections and datagrams New relays
	// to ports of the sandbox through the router; they imply Uplink.
	Publish []PublishedPort
	// Outbound, with Uplink, makes the sandbox's flows to the outside
	// that it allows on the host, and serves DNS at DNSAddr.
	Outbound *Policy
}

// New returns the network of a sandbox. With opts' zero value it is
// NewStack's: loopback only.
func New(opts Options) (*Stack, error) {
	st := NewStack()
	st.opts = opts
	if len(opts.Publish) > 0 {
		st.opts.Uplink = true
	}
	if opts.Outbound != nil {
		if !st.opts.Uplink {
			return nil, errors.New("netstack: an outbound policy needs the uplink")
		}
		pol, err := newPolicy(opts.Outbound)
		if err != nil {
			return nil, fmt.Errorf("netstack: %w", err)
		}
		st.policy = pol
	}
	if len(opts.Publish) > 0 {
		if err := st.startPublishing(); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// addUplink connects s, the sandbox's stack, to a new router stack by a
// link of two pipe endpoints and returns the router. The router owns
// GatewayAddr and accepts packets for any address (promiscuous, and
// spoofing for its replies): the flows it terminates are the sandbox's
// traffic to the outside, whatever their destination.
func addUplink(s *stack.Stack) (*stack.Stack, error) {
	guestEnd, routerEnd := pipe.New("", "", uplinkMTU)
	if err := s.CreateNICWithOptions(uplinkNIC, guestEnd, stack.NICOptions{Name: "eth0"}); err != nil {
		return nil, errnoOf(err)
	}
	guest := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: GuestAddr, PrefixLen: uplinkPrefixLen}}
	if err := s.AddProtocolAddress(uplinkNIC, guest, stack.AddressProperties{}); err != nil {
		return nil, errnoOf(err)
	}
	subnet := guest.AddressWithPrefix.Subnet()
	s.AddRoute(tcpip.Route{Destination: subnet, NIC: uplinkNIC})
	s.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: GatewayAddr, NIC: uplinkNIC})

	r := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := r.CreateNIC(routerNIC, routerEnd); err != nil {
		r.Destroy()
		return nil, errnoOf(err)
	}
	gw := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: GatewayAddr, PrefixLen: uplinkPrefixLen}}
	if err := r.AddProtocolAddress(routerNIC, gw, stack.AddressProperties{}); err != nil {
		r.Destroy()
		return nil, errnoOf(err)
	}
	for _, set := range []func(tcpip.NICID, bool) tcpip.Error{r.SetPromiscuousMode, r.SetSpoofing} {
		if err := set(routerNIC, true); err != nil {
			r.Destroy()
			return nil, errnoOf(err)
		}
	}
	r.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: routerNIC}})
	return r, nil
}
