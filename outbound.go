package kvmbox

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kvmbox/kvmbox/netstack"
)

// OutboundPolicy gives the sandbox an uplink to the host's network
// (eth0, 10.0.2.15/24, gateway 10.0.2.2, resolver 10.0.2.3) and lists
// the flows kvmbox makes for it: everything else is refused. See the
// README's Network section.
type OutboundPolicy struct {
	// Allow lists the destinations the sandbox may reach.
	Allow []AllowRule
	// Resolve, when set, answers the sandbox's DNS queries for allowed
	// names in place of the host's resolver: it returns a name's IPv4
	// addresses, or a *net.DNSError with IsNotFound for a name that
	// does not exist.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// AllowRule allows flows to an IPv4 address range (Prefix) or to the
// addresses a host name resolves to (Host), on ports FirstPort to
// LastPort (every port when both are 0), over Protocol: "tcp", "udp",
// or both when empty.
//
// The host's loopback (127.0.0.0/8, which the gateway 10.0.2.2 stands
// for), the private ranges 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16,
// link-local 169.254.0.0/16, 0.0.0.0/8, multicast 224.0.0.0/4,
// 240.0.0.0/4 (with the broadcast address) and the host's own addresses
// are reached only through a Prefix rule that lies inside one of them
// (for a host address outside them, a /32 of that address): 0.0.0.0/0
// or a host name does not open them.
type AllowRule struct {
	Prefix              netip.Prefix
	Host                string
	FirstPort, LastPort uint16
	Protocol            string
}

// ParseAllowRule parses the text form of a rule, as sandbox-exec's
// --allow takes it: ADDRESS[/BITS][:PORT[-PORT]][/tcp|/udp] or
// HOST[:PORT[-PORT]][/tcp|/udp], where HOST may start with "*." for
// every name below a domain.
func ParseAllowRule(s string) (AllowRule, error) {
	var r AllowRule
	rest := s
	for _, proto := range []string{"tcp", "udp"} {
		if cut, ok := strings.CutSuffix(rest, "/"+proto); ok {
			rest, r.Protocol = cut, proto
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		first, last, isRange := strings.Cut(rest[i+1:], "-")
		if !isRange {
			last = first
		}
		a, err1 := strconv.ParseUint(first, 10, 16)
		b, err2 := strconv.ParseUint(last, 10, 16)
		if err1 != nil || err2 != nil || a == 0 || a > b {
			return AllowRule{}, fmt.Errorf("kvmbox: allow rule %q: bad port range %q", s, rest[i+1:])
		}
		r.FirstPort, r.LastPort = uint16(a), uint16(b)
		rest = rest[:i]
	}
	if strings.Contains(rest, "/") {
		p, err := netip.ParsePrefix(rest)
		if err != nil {
			return AllowRule{}, fmt.Errorf("kvmbox: allow rule %q: %w", s, err)
		}
		r.Prefix = p
	} else if a, err := netip.ParseAddr(rest); err == nil {
		r.Prefix = netip.PrefixFrom(a, a.BitLen())
	} else {
		r.Host = rest
	}
	if _, err := r.rule(); err != nil {
		return AllowRule{}, fmt.Errorf("kvmbox: allow rule %q: %w", s, err)
	}
	return r, nil
}

// rule is r for the network stack, checked.
func (r AllowRule) rule() (netstack.Rule, error) {
	out := netstack.Rule{Prefix: r.Prefix, Host: r.Host, FirstPort: r.FirstPort, LastPort: r.LastPort}
	switch r.Protocol {
	case "":
	case "tcp":
		out.Proto = netstack.TCP
	case "udp":
		out.Proto = netstack.UDP
	default:
		return out, fmt.Errorf("protocol %q is neither tcp nor udp", r.Protocol)
	}
	return out, out.Validate()
}

// network is the sandbox's network options: loopback only, or the
// uplink under the policy, whose refusals go to log.
func (p *OutboundPolicy) network(log io.Writer) (netstack.Options, error) {
	if p == nil {
		return netstack.Options{}, nil
	}
	pol := &netstack.Policy{Resolve: p.Resolve, Log: log}
	for _, r := range p.Allow {
		nr, err := r.rule()
		if err != nil {
			return netstack.Options{}, fmt.Errorf("kvmbox: allow rule %s: %w", nr, err)
		}
		pol.Rules = append(pol.Rules, nr)
	}
	return netstack.Options{Uplink: true, Outbound: pol}, nil
}

// resolvConf is the sandbox's /etc/resolv.conf when it has outbound access.
var resolvConf = "nameserver " + netstack.DNSAddr.String() + "\n"
