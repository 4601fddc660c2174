package netstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
)

// Proto is the transport protocol a Rule allows.
type Proto int

const (
	// AnyProto allows TCP and UDP.
	AnyProto Proto = iota
	TCP
	UDP
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "tcp+udp"
}

// Rule allows the sandbox's flows to some destinations. It names them by
// address range (Prefix) or by host name (Host); a flow matches it when
// its destination port lies in [FirstPort, LastPort] (every port when
// both are 0) and its protocol is Proto (or Proto is AnyProto).
type Rule struct {
	// Prefix is an IPv4 address range; unset for a Host rule.
	Prefix netip.Prefix
	// Host is a DNS name the sandbox may resolve through the resolver at
	// DNSAddr; the addresses it resolves to become allowed destinations,
	// for this rule's ports and protocol. "*.example.com" matches every
	// name below example.com (not example.com itself).
	Host                string
	FirstPort, LastPort uint16
	Proto               Proto
}

func (r Rule) String() string {
	s := r.Host
	if s == "" {
		s = r.Prefix.String()
	}
	switch {
	case r.FirstPort == 0 && r.LastPort == 0:
	case r.FirstPort == r.LastPort:
		s += fmt.Sprintf(":%d", r.FirstPort)
	default:
		s += fmt.Sprintf(":%d-%d", r.FirstPort, r.LastPort)
	}
	if r.Proto != AnyProto {
		s += "/" + r.Proto.String()
	}
	return s
}

// Validate reports what is wrong with r.
func (r Rule) Validate() error {
	switch {
	case r.Host != "" && r.Prefix.IsValid():
		return errors.New("both an address range and a host name")
	case r.Host != "":
		if !validHostPattern(r.Host) {
			return errors.New("not a host name")
		}
	case !r.Prefix.IsValid():
		return errors.New("neither an address range nor a host name")
	case !r.Prefix.Addr().Is4():
		return errors.New("not an IPv4 range (the uplink is IPv4 only)")
	case r.Prefix != r.Prefix.Masked():
		return fmt.Errorf("address bits set past the prefix length (%s)", r.Prefix.Masked())
	}
	if (r.FirstPort == 0) != (r.LastPort == 0) || r.FirstPort > r.LastPort {
		return errors.New("bad port range")
	}
	if r.Proto < AnyProto || r.Proto > UDP {
		return fmt.Errorf("bad protocol %d", int(r.Proto))
	}
	return nil
}

// validHostPattern accepts a DNS name of letters, digits, '-' and '_'
// labels, optionally starting with the wildcard label "*".
func validHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// matchesHost reports whether the rule's Host names name (lower case,
// without a trailing dot).
func (r Rule) matchesHost(name string) bool {
	h := strings.ToLower(r.Host)
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return strings.HasSuffix(name, "."+rest)
	}
	return name == h
}

func (r Rule) matchesFlow(proto Proto, port uint16) bool {
	if r.Proto != AnyProto && r.Proto != proto {
		return false
	}
	return r.FirstPort == 0 && r.LastPort == 0 || r.FirstPort <= port && port <= r.LastPort
}

// Policy decides which of the sandbox's outbound flows kvmbox makes on
// the host. Everything not allowed is refused.
type Policy struct {
	Rules []Rule
	// Resolve looks up a host name's IPv4 addresses for the sandbox's
	// DNS queries; net.DefaultResolver's LookupNetIP when nil. A
	// *net.DNSError with IsNotFound answers NXDOMAIN.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Log, when set, receives a line for each refused flow and DNS query.
	Log io.Writer
}

// protectedRanges are the host's loopback, the private, link-local and
// "this network" ranges, and multicast and the reserved range with the
// broadcast address: a destination in one is allowed only by an address
// rule whose range lies inside it, so that a rule such as 0.0.0.0/0 does
// not open the host's own services or its LAN.
var protectedRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

var (
	hostLoopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	gatewayIP    = netip.AddrFrom4(GatewayAddr.As4())
	uplinkSubnet = netip.PrefixFrom(gatewayIP, uplinkPrefixLen).Masked()
)

var errNotAllowed = errors.New("not allowed")

// policy is a Policy in force: its rules, the host's own addresses, and
// the destinations allowed by the host names the sandbox resolved.
type policy struct {
	rules     []Rule
	resolve   func(ctx context.Context, host string) ([]netip.Addr, error)
	hostAddrs map[netip.Addr]bool
	// dial connects from the host: a net.Dialer's DialContext.
	dial func(ctx context.Context, network, address string) (net.Conn, error)

	mu sync.Mutex
	// resolved maps an address that an allowed name resolved to to the
	// rules that allowed the name.
	resolved map[netip.Addr][]Rule
}

func newPolicy(p *Policy) (*policy, error) {
	for _, r := range p.Rules {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("rule %s: %w", r, err)
		}
	}
	resolve := p.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		}
	}
	hostAddrs := make(map[netip.Addr]bool)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing the host's addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				hostAddrs[ip.Unmap()] = true
			}
		}
	}
	dialer := &net.Dialer{Timeout: dialTimeout}
	return &policy{rules: p.Rules, resolve: resolve, hostAddrs: hostAddrs, dial: dialer.DialContext, resolved: make(map[netip.Addr][]Rule)}, nil
}

// protection returns the range a destination is protected by: one of
// protectedRanges, or a host's own address on its own; ok is false for
// an unprotected destination.
func (p *policy) protection(a netip.Addr) (netip.Prefix, bool) {
	for _, r := range protectedRanges {
		if r.Contains(a) {
			return r, true
		}
	}
	if p.hostAddrs[a] {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// target returns the host address a flow to dst is made to: the
// gateway stands for the host's loopback. The rest of the sandbox's own
// subnet is nobody.
func target(dst netip.AddrPort) (netip.AddrPort, error) {
	a := dst.Addr().Unmap()
	switch {
	case a == gatewayIP:
		return netip.AddrPortFrom(hostLoopback, dst.Port()), nil
	case uplinkSubnet.Contains(a), !a.Is4():
		return netip.AddrPort{}, errNotAllowed
	}
	return netip.AddrPortFrom(a, dst.Port()), nil
}

// check decides a flow to dst and returns the host address to make it
// to.
func (p *policy) check(proto Proto, dst netip.AddrPort) (netip.AddrPort, error) {
	t, err := target(dst)
	if err != nil {
		return t, err
	}
	a := t.Addr()
	guard, protected := p.protection(a)
	for _, r := range p.rules {
		if r.Host != "" || !r.Prefix.Contains(a) || !r.matchesFlow(proto, t.Port()) {
			continue
		}
		if !protected || r.Prefix.Bits() >= guard.Bits() && guard.Contains(r.Prefix.Addr()) {
			return t, nil
		}
	}
	if protected {
		return t, errNotAllowed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.resolved[a] {
		if r.matchesFlow(proto, t.Port()) {
			return t, nil
		}
	}
	return t, errNotAllowed
}

// nameRules returns the host rules that allow name (lower case, no
// trailing dot).
func (p *policy) nameRules(name string) []Rule {
	var out []Rule
	for _, r := range p.rules {
		if r.Host != "" && r.matchesHost(name) {
			out = append(out, r)
		}
	}
	return out
}

// learn makes addrs, which a name allowed by rules resolved to, allowed
// destinations for those rules' ports, for the sandbox's life. A
// protected address is not learnt: a name cannot open the host's
// loopback or LAN (DNS rebinding).
func (p *policy) learn(addrs []netip.Addr, rules []Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range addrs {
		if _, protected := p.protection(a); protected {
			continue
		}
		have := p.resolved[a]
		for _, r := range rules {
			if !containsRule(have, r) {
				have = append(have, r)
			}
		}
		p.resolved[a] = have
	}
}

func containsRule(rs []Rule, r Rule) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}
