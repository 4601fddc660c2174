package kvmbox

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kvmbox/kvmbox/netstack"
)

// PublishedPort makes a port of the sandbox reachable from the host, as
// docker run -p does: the sandbox has the address 10.0.2.15 on eth0, and
// connections and datagrams that reach the host at HostAddr:HostPort
// arrive at 10.0.2.15:Port, from the client's address and port. Clients
// on the host's loopback, and IPv6 clients, appear as the gateway
// 10.0.2.2 with their port.
type PublishedPort struct {
	// HostAddr is the host address to listen on; the zero Addr listens
	// on every address, IPv4 and IPv6.
	HostAddr netip.Addr
	// HostPort is the host port; 0 takes a free one, which
	// Sandbox.PublishedAddrs reports.
	HostPort uint16
	// Port is the sandbox's port.
	Port uint16
	// UDP publishes a UDP port; otherwise the port is TCP.
	UDP bool
}

// String writes p in ParsePublishedPort's syntax.
func (p PublishedPort) String() string { return netstack.PublishedPort(p).String() }

// ParsePublishedPort parses docker run -p's syntax,
// [HOSTADDR:][HOSTPORT:]PORT[/tcp|/udp]: "8080:80", "127.0.0.1:8080:80",
// "[::1]:8080:80/udp" (an IPv6 HOSTADDR in brackets). A HOSTPORT of 0,
// empty ("127.0.0.1::80") or left out ("80") takes a free host port.
func ParsePublishedPort(s string) (PublishedPort, error) {
	var p PublishedPort
	fail := func(why string) (PublishedPort, error) {
		return PublishedPort{}, fmt.Errorf("published port %q: %s", s, why)
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		switch proto {
		case "tcp":
		case "udp":
			p.UDP = true
		default:
			return fail("protocol is not tcp or udp")
		}
	}
	var addr string
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]")
		if end < 0 || !strings.HasPrefix(spec[end+1:], ":") {
			return fail("a bracketed address needs ]: after it")
		}
		addr, spec = spec[1:end], spec[end+2:]
		a, err := netip.ParseAddr(addr)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return fail("bad IPv6 host address")
		}
		p.HostAddr = a
		if !strings.Contains(spec, ":") {
			return fail("no host port after the host address")
		}
	}
	parts := strings.Split(spec, ":")
	switch {
	case len(parts) == 3 && !p.HostAddr.IsValid():
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return fail("bad IPv4 host address (an IPv6 one goes in brackets)")
		}
		p.HostAddr = a
		parts = parts[1:]
	case len(parts) > 2:
		return fail("too many colons")
	}
	port, err := parsePort(parts[len(parts)-1])
	if err != nil || port == 0 {
		return fail("bad sandbox port")
	}
	p.Port = port
	if len(parts) == 2 && (parts[0] != "" || !p.HostAddr.IsValid()) {
		if p.HostPort, err = parsePort(parts[0]); err != nil {
			return fail("bad host port")
		}
	}
	return p, nil
}

// parsePort parses a decimal port number, 0 to 65535, digits only.
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a port number")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// PublishedAddrs reports the host address and port each of
// Config.Publish listens on, in its order: for a HostPort of 0, the port
// taken. Listening on every address shows as [::].
func (s *Sandbox) PublishedAddrs() []netip.AddrPort { return s.k.Net().PublishedAddrs() }

// publishedPorts are c.Publish for the sandbox's network.
func (c *Config) publishedPorts() []netstack.PublishedPort {
	var ports []netstack.PublishedPort
	for _, p := range c.Publish {
		ports = append(ports, netstack.PublishedPort(p))
	}
	return ports
}
