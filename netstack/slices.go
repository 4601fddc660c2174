package netstack

import "io"

// slicesReader reads the bytes of several buffers in order: the stack
// reads a send straight from the guest memory pinned for it. It is a
// tcpip.Payloader.
type slicesReader struct {
	bufs [][]byte
	left int
}

// newSlicesReader returns a reader of bufs from byte off on; bufs is left alone.
func newSlicesReader(bufs [][]byte, off int) *slicesReader {
	r := &slicesReader{}
	for _, b := range bufs {
		if off >= len(b) {
			off -= len(b)
			continue
		}
		r.bufs = append(r.bufs, b[off:])
		r.left += len(b) - off
		off = 0
	}
	return r
}

// Read implements io.Reader.
func (r *slicesReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && len(r.bufs) > 0 {
		c := copy(p[n:], r.bufs[0])
		n += c
		if r.bufs[0] = r.bufs[0][c:]; len(r.bufs[0]) == 0 {
			r.bufs = r.bufs[1:]
		}
	}
	r.left -= n
	return n, nil
}

// Len implements tcpip.Payloader: the bytes left to read.
func (r *slicesReader) Len() int { return r.left }

// Filler is where a TCP receive puts its bytes. The stack calls Write
// only once it has data, and Done after each read from it, so memory lent
// for the receive need not stay lent while it waits: the system calls pin
// guest memory in Write and release it in Done.
type Filler interface {
	io.Writer
	Done()
}

// slicesWriter fills several buffers in order, as tcpip.SliceWriter fills
// one: a write that does not fit is io.ErrShortWrite. It is a Filler of
// host memory.
type slicesWriter struct{ bufs [][]byte }

// newSlicesWriter returns a writer into bufs.
func newSlicesWriter(bufs ...[]byte) *slicesWriter {
	return &slicesWriter{bufs: newSlicesReader(bufs, 0).bufs}
}

// Done implements Filler.
func (*slicesWriter) Done() {}

// Write implements io.Writer.
func (w *slicesWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(w.bufs) > 0 {
		c := copy(w.bufs[0], p[n:])
		n += c
		if w.bufs[0] = w.bufs[0][c:]; len(w.bufs[0]) == 0 {
			w.bufs = w.bufs[1:]
		}
	}
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// totalLen is the bytes in bufs.
func totalLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
