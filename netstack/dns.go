package netstack

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
)

// DNS message constants (RFC 1035).
const (
	dnsHeaderLen = 12
	dnsTypeA     = 1
	dnsTypeAAAA  = 28
	dnsClassIN   = 1

	dnsFlagQR     = 1 << 15
	dnsFlagRD     = 1 << 8
	dnsFlagRA     = 1 << 7
	dnsOpcodeMask = 0xf << 11

	dnsNoError  = 0
	dnsFormErr  = 1
	dnsServFail = 2
	dnsNXDomain = 3
	dnsNotImp   = 4
	dnsRefused  = 5

	// dnsAnswerTTL is the time to live of every answer: short, as the
	// host's own resolver may change its mind.
	dnsAnswerTTL = 60
	// dnsMaxUDP is the largest answer sent over UDP without EDNS.
	dnsMaxUDP = 512
)

// errNotAQuery is a message to drop without an answer: too short to
// carry an ID, or itself a response.
var errNotAQuery = errors.New("dns: not a query")

// dnsQuery is the question of a DNS query, as the answer echoes it.
type dnsQuery struct {
	id    uint16
	flags uint16
	// name is the queried name in lower case without the trailing dot;
	// "" for the root.
	name          string
	qtype, qclass uint16
	// question is the question section's bytes, echoed in the answer.
	question []byte
}

// dnsFormatError is a query too malformed to answer but with FORMERR.
type dnsFormatError struct{ id, flags uint16 }

func (e *dnsFormatError) Error() string { return "dns: malformed query" }

// parseDNSQuery parses msg, untrusted bytes from the sandbox. It accepts
// one question, whose name is uncompressed labels; the other sections
// (an EDNS record) are ignored. It returns errNotAQuery for a message
// to drop and a *dnsFormatError for one to answer with FORMERR.
func parseDNSQuery(msg []byte) (dnsQuery, error) {
	if len(msg) < dnsHeaderLen {
		return dnsQuery{}, errNotAQuery
	}
	q := dnsQuery{id: binary.BigEndian.Uint16(msg), flags: binary.BigEndian.Uint16(msg[2:])}
	if q.flags&dnsFlagQR != 0 {
		return dnsQuery{}, errNotAQuery
	}
	bad := &dnsFormatError{q.id, q.flags}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return q, bad
	}
	var name strings.Builder
	off := dnsHeaderLen
	for {
		if off >= len(msg) {
			return q, bad
		}
		n := int(msg[off])
		off++
		if n == 0 {
			break
		}
		// Compression pointers and the extended label types have no
		// place in a query's only name.
		if n > 63 || off+n > len(msg) || name.Len()+n+1 > 254 {
			return q, bad
		}
		if name.Len() > 0 {
			name.WriteByte('.')
		}
		for _, c := range msg[off : off+n] {
			if c == '.' {
				return q, bad
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			name.WriteByte(c)
		}
		off += n
	}
	if off+4 > len(msg) {
		return q, bad
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	q.name = name.String()
	q.question = msg[dnsHeaderLen : off+4]
	return q, nil
}

// dnsAnswer encodes the answer to q: rcode and, for NOERROR, an A or
// AAAA record per address of q's type. Over UDP (limit 512) the records
// that do not fit are left out and TC is set.
func dnsAnswer(q dnsQuery, rcode int, addrs []netip.Addr, limit int) []byte {
	flags := uint16(dnsFlagQR|dnsFlagRA) | q.flags&(dnsOpcodeMask|dnsFlagRD) | uint16(rcode)
	out := binary.BigEndian.AppendUint16(nil, q.id)
	out = binary.BigEndian.AppendUint16(out, flags)
	qd := uint16(0)
	if q.question != nil {
		qd = 1
	}
	out = binary.BigEndian.AppendUint16(out, qd)
	countAt := len(out)
	out = append(out, 0, 0, 0, 0, 0, 0)
	out = append(out, q.question...)
	count := uint16(0)
	for _, a := range addrs {
		typ := uint16(dnsTypeA)
		if a.Is6() {
			typ = dnsTypeAAAA
		}
		if typ != q.qtype {
			continue
		}
		rdata := a.AsSlice()
		if limit > 0 && len(out)+12+len(rdata) > limit {
			binary.BigEndian.PutUint16(out[2:], flags|1<<9) // TC
			break
		}
		// The name is a pointer to the question's, right after the header.
		out = append(out, 0xc0, dnsHeaderLen)
		out = binary.BigEndian.AppendUint16(out, typ)
		out = binary.BigEndian.AppendUint16(out, dnsClassIN)
		out = binary.BigEndian.AppendUint32(out, dnsAnswerTTL)
		out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
		out = append(out, rdata...)
		count++
	}
	binary.BigEndian.PutUint16(out[countAt:], count)
	return out
}
