package netstack

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// nlMsg is one netlink message of a request: its header and payload.
type nlMsg struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
	// Data is the payload, nlmsg_len less the header; Whole is the
	// message with its header, as an error reply quotes it.
	Data, Whole []byte
}

// parseNetlink splits what a sendmsg to the kernel carries into
// messages as netlink_rcv_skb walks them: it stops at a header shorter
// than NLMSG_HDRLEN or longer than what is left, and steps over each
// message's alignment padding.
func parseNetlink(b []byte) []nlMsg {
	var out []nlMsg
	for len(b) >= unix.NLMSG_HDRLEN {
		n := binary.LittleEndian.Uint32(b)
		if n < unix.NLMSG_HDRLEN || uint64(n) > uint64(len(b)) {
			break
		}
		out = append(out, nlMsg{
			Len: n, Type: binary.LittleEndian.Uint16(b[4:]), Flags: binary.LittleEndian.Uint16(b[6:]),
			Seq: binary.LittleEndian.Uint32(b[8:]), PID: binary.LittleEndian.Uint32(b[12:]),
			Data: b[unix.NLMSG_HDRLEN:n], Whole: b[:n],
		})
		step := min(nlAlign(int(n)), len(b))
		b = b[step:]
	}
	return out
}

// nlAttr is one attribute (struct nlattr, struct rtattr).
type nlAttr struct {
	Type uint16 // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	Data []byte
}

// parseAttrs lists the attributes in b as nla_for_each_attr does,
// stopping at the first that does not fit; ok is false when bytes were
// left over (a malformed attribute), which strict checking refuses.
func parseAttrs(b []byte) (attrs []nlAttr, ok bool) {
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.LittleEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return attrs, false
		}
		attrs = append(attrs, nlAttr{Type: binary.LittleEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER), Data: b[unix.SizeofRtAttr:n]})
		b = b[min(nlAlign(n), len(b)):]
	}
	return attrs, len(b) == 0
}

// nlAlign rounds n up to NLMSG_ALIGNTO (and RTA_ALIGNTO, the same 4).
func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// nlBuilder appends netlink messages and their attributes.
type nlBuilder struct {
	b     []byte
	start int // where the message being built begins
}

// begin starts a message; end sets its length.
func (w *nlBuilder) begin(typ, flags uint16, seq, pid uint32) {
	w.start = len(w.b)
	w.b = binary.LittleEndian.AppendUint32(w.b, 0)
	w.b = binary.LittleEndian.AppendUint16(w.b, typ)
	w.b = binary.LittleEndian.AppendUint16(w.b, flags)
	w.b = binary.LittleEndian.AppendUint32(w.b, seq)
	w.b = binary.LittleEndian.AppendUint32(w.b, pid)
}

func (w *nlBuilder) end() []byte {
	binary.LittleEndian.PutUint32(w.b[w.start:], uint32(len(w.b)-w.start))
	return w.b[w.start:]
}

// raw appends bytes, padded to the alignment.
func (w *nlBuilder) raw(p []byte) {
	w.b = append(w.b, p...)
	w.pad()
}

func (w *nlBuilder) pad() {
	for len(w.b)%unix.NLMSG_ALIGNTO != 0 {
		w.b = append(w.b, 0)
	}
}

func (w *nlBuilder) attr(typ uint16, data []byte) {
	w.b = binary.LittleEndian.AppendUint16(w.b, uint16(unix.SizeofRtAttr+len(data)))
	w.b = binary.LittleEndian.AppendUint16(w.b, typ)
	w.raw(data)
}

func (w *nlBuilder) u8(typ uint16, v uint8) { w.attr(typ, []byte{v}) }

func (w *nlBuilder) u32(typ uint16, v uint32) {
	w.attr(typ, binary.LittleEndian.AppendUint32(nil, v))
}

func (w *nlBuilder) str(typ uint16, s string) { w.attr(typ, append([]byte(s), 0)) }
