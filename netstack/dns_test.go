package netstack

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseDNSQuery(t *testing.T) {
	q, err := parseDNSQuery(dnsQueryMsg(0x1234, "WWW.Example.com", dnsTypeA))
	require.NoError(t, err)
	require.Equal(t, uint16(0x1234), q.id)
	require.Equal(t, "www.example.com", q.name)
	require.Equal(t, uint16(dnsTypeA), q.qtype)
	require.Equal(t, uint16(dnsClassIN), q.qclass)

	// An EDNS record after the question is ignored.
	withOPT := append(dnsQueryMsg(1, "a.b", dnsTypeAAAA), 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0)
	withOPT[11] = 1
	q, err = parseDNSQuery(withOPT)
	require.NoError(t, err)
	require.Equal(t, "a.b", q.name)

	_, err = parseDNSQuery([]byte{1, 2, 3})
	require.Equal(t, errNotAQuery, err)
	response := dnsQueryMsg(1, "a", dnsTypeA)
	response[2] |= 0x80
	_, err = parseDNSQuery(response)
	require.Equal(t, errNotAQuery, err)
	var bad *dnsFormatError
	for _, msg := range [][]byte{
		dnsQueryMsg(1, "a", dnsTypeA)[:dnsHeaderLen+3],                                        // cut in the type
		append(dnsQueryMsg(1, "a", dnsTypeA)[:dnsHeaderLen], 0xc0, 12),                        // a pointer
		append(dnsQueryMsg(1, "a", dnsTypeA)[:dnsHeaderLen], 3, 'a', '.', 'b', 0, 0, 1, 0, 1), // a dot in a label
		{0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0},                                                  // two questions
		dnsQueryMsg(1, string(bytes.Repeat([]byte("a"), 64)), dnsTypeA),
		dnsQueryMsg(1, string(bytes.Repeat([]byte("abcdefghi."), 26))+"a", dnsTypeA),
	} {
		_, err := parseDNSQuery(msg)
		require.ErrorAs(t, err, &bad, "%q", msg)
		require.Equal(t, uint16(1), bad.id)
	}
}

func TestDNSAnswerTruncates(t *testing.T) {
	q, err := parseDNSQuery(dnsQueryMsg(9, "many.test", dnsTypeA))
	require.NoError(t, err)
	var addrs []netip.Addr
	for i := range 100 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	msg := dnsAnswer(q, dnsNoError, addrs, dnsMaxUDP)
	require.LessOrEqual(t, len(msg), dnsMaxUDP)
	require.NotZero(t, binary.BigEndian.Uint16(msg[2:])&(1<<9), "TC")
	require.Len(t, dnsAnswer(q, dnsNoError, addrs, 0), dnsHeaderLen+len(q.question)+100*16)
}

// FuzzParseDNSQuery checks that no message panics the parser, and that
// the answer to a parsed query echoes its ID and question and fits UDP.
func FuzzParseDNSQuery(f *testing.F) {
	f.Add(dnsQueryMsg(1, "example.com", dnsTypeA))
	f.Add(dnsQueryMsg(2, "host.kvmbox.internal", dnsTypeAAAA))
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, msg []byte) {
		q, err := parseDNSQuery(msg)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(q.name), 253)
		answer := dnsAnswer(q, dnsNoError, []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, 1})}, dnsMaxUDP)
		require.LessOrEqual(t, len(answer), dnsMaxUDP)
		require.Equal(t, q.id, binary.BigEndian.Uint16(answer))
		require.Equal(t, q.question, answer[dnsHeaderLen:dnsHeaderLen+len(q.question)])
	})
}
