package syscalls

import (
	"io"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/netstack"
)

// TCP sends and receives move data between the stack and the guest's own
// memory, pinned a piece of at most directChunk at a time, with no copy
// through a host buffer. A buffer that cannot be pinned (a page the guest
// may not access, or one still shared copy-on-write for a receive) goes
// through the buffered path, which gives Linux's answer.

// pinIovecs pins up to limit bytes of the guest buffers of iovs into p,
// for reading them or (write) filling them. Where a page cannot be
// pinned, it releases p and reports false.
func pinIovecs(t *kernel.Task, p *mm.Pinned, iovs []iovec, limit uint64, write bool) bool {
	as := t.ThreadGroup().MM()
	for _, v := range iovs {
		if limit == 0 {
			break
		}
		n := min(v.Len, limit)
		if err := as.Pin(p, v.Base, n, write); err != nil {
			p.Release()
			return false
		}
		limit -= n
	}
	return true
}

// sendTCPDirect sends the guest data of iovs on a TCP socket straight from
// guest memory. A send that waits for room keeps its piece pinned: the
// stack only reads it.
func sendTCPDirect(t *kernel.Task, s *netstack.InetSocket, iovs []iovec, o netstack.SendOptions) (uint64, error) {
	total := totalLen(iovs)
	pin := t.Pinned()
	var done uint64
	for done < total {
		want := min(total-done, directChunk)
		if !pinIovecs(t, pin, skip(iovs, done), want, false) {
			rest, err := sendBuffered(t, s, skip(iovs, done), o)
			return done + rest, orPartial(done+rest, err)
		}
		n, err := s.SendSlices(t.Context(), pin.Slices, o)
		pin.Release()
		done += uint64(n)
		if err != nil || uint64(n) < want {
			return done, orPartial(done, err)
		}
	}
	return done, nil
}

// guestFiller lends a TCP receive the guest buffers of iovs: when the
// stack has data for them it pins the next directChunk bytes of them, and
// it releases them after each read from the stack, so that nothing stays
// pinned while the receive waits (a fork meanwhile must not see data
// land in the pages it shares with its parent).
type guestFiller struct {
	t      *kernel.Task
	iovs   []iovec
	total  uint64
	filled uint64
	pin    *mm.Pinned
	// room is what is left of the pinned memory; pinned says whether
	// there is a pin to release.
	room   [][]byte
	pinned bool
	// unpinnable records a pin that failed: the receive took nothing, and
	// goes through the buffered path instead.
	unpinnable bool
}

// Write implements io.Writer.
func (g *guestFiller) Write(p []byte) (int, error) {
	if !g.pinned {
		if !pinIovecs(g.t, g.pin, skip(g.iovs, g.filled), min(g.total-g.filled, directChunk), true) {
			g.unpinnable = true
			return 0, unix.EFAULT
		}
		g.pinned = true
		g.room = append(g.room[:0], g.pin.Slices...)
	}
	n := 0
	for n < len(p) && len(g.room) > 0 {
		c := copy(g.room[0], p[n:])
		n += c
		if g.room[0] = g.room[0][c:]; len(g.room[0]) == 0 {
			g.room = g.room[1:]
		}
	}
	g.filled += uint64(n)
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// Done implements netstack.Filler.
func (g *guestFiller) Done() {
	if g.pinned {
		g.pin.Release()
		g.pinned = false
	}
}

// recvTCPDirect receives on a TCP socket into the guest buffers of iovs.
// A receive returns at most directChunk bytes unless MSG_WAITALL asks for
// all of them. ok is false when they cannot be pinned and nothing was
// received.
func recvTCPDirect(t *kernel.Task, s *netstack.InetSocket, iovs []iovec, o netstack.RecvOptions) (r netstack.RecvResult, ok bool, err error) {
	total := totalLen(iovs)
	if !o.WaitAll {
		total = min(total, directChunk)
	}
	g := &guestFiller{t: t, iovs: iovs, total: total, pin: t.Pinned()}
	r, err = s.RecvInto(t.Context(), g, int(total), o)
	if g.unpinnable && r.N == 0 {
		return r, false, nil
	}
	return r, true, err
}
