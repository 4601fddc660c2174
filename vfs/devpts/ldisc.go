package devpts

import (
	"golang.org/x/sys/unix"
)

// Buffer sizes, Linux's: the line discipline holds N_TTY_BUF_SIZE bytes
// of input; bytes the master writes wait in a queue of 64 KiB (the tty
// flip buffers) until the discipline has room; the slave's output queues
// up to 64 KiB for the master to read.
const (
	inputCap   = 4096
	pendingCap = 64 << 10
	outputCap  = 64 << 10
)

// echoBatch is how many echoed bytes wait before they go out in the
// middle of a write (Linux's ECHO_COMMIT_WATERMARK).
const echoBatch = 256

// disabledChar is _POSIX_VDISABLE: a control character set to it
// matches no input byte.
const disabledChar = 0

// discipline is a pseudo-terminal's line discipline (N_TTY): it turns
// the bytes the master writes into the input the slave reads, as the
// slave's termios says (canonical line editing, echo, signal
// characters, CR/NL mapping), and the bytes the slave writes into what
// the master reads (output processing). It holds no lock; Terminal
// serializes its use.
type discipline struct {
	termios unix.Termios
	// special marks the bytes that need more than storing and echoing
	// under the current termios.
	special [256]bool

	// in is the input the slave reads. In canonical mode its first
	// complete bytes are finished lines, whose lengths lines lists in
	// order (a line ended by VEOF stores no terminator and may be
	// empty); the rest is the line being edited.
	in       []byte
	lines    []int
	complete int
	// lnext says that the previous byte was VLNEXT: the next is taken
	// literally.
	lnext bool

	// out is what the master reads: the slave's processed output and
	// the echoes.
	out []byte
	// echoes holds the echoes of the input being received, which go to
	// out when a write of the master has been taken in (or once
	// echoBatch bytes are waiting): a signal character discards those
	// not yet gone, as on Linux.
	echoes  []byte
	echoing bool
	// column is the cursor column output processing tracks, for tabs
	// and erasing; canonColumn is where the line being edited began.
	column, canonColumn int
	// stopped says that output is stopped by VSTOP (IXON).
	stopped bool

	// signals are the signals the input raised for the foreground
	// process group, taken by the caller.
	signals []unix.Signal
}

// defaultTermios is the termios of a new pty's slave: Linux's
// tty_std_termios without HUPCL, at 38400 baud.
func defaultTermios() unix.Termios {
	t := unix.Termios{
		Iflag:  unix.ICRNL | unix.IXON,
		Oflag:  unix.OPOST | unix.ONLCR,
		Cflag:  unix.B38400 | unix.CS8 | unix.CREAD,
		Lflag:  unix.ISIG | unix.ICANON | unix.ECHO | unix.ECHOE | unix.ECHOK | unix.ECHOCTL | unix.ECHOKE | unix.IEXTEN,
		Ispeed: 38400,
		Ospeed: 38400,
	}
	cc := map[int]byte{
		unix.VINTR: 0o3, unix.VQUIT: 0o34, unix.VERASE: 0o177, unix.VKILL: 0o25,
		unix.VEOF: 0o4, unix.VMIN: 1, unix.VSTART: 0o21, unix.VSTOP: 0o23,
		unix.VSUSP: 0o32, unix.VREPRINT: 0o22, unix.VDISCARD: 0o17,
		unix.VWERASE: 0o27, unix.VLNEXT: 0o26,
	}
	for i, c := range cc {
		t.Cc[i] = c
	}
	return t
}

func newDiscipline() *discipline {
	d := &discipline{}
	d.setTermios(defaultTermios())
	return d
}

func (d *discipline) iflag(f uint32) bool { return d.termios.Iflag&f != 0 }
func (d *discipline) oflag(f uint32) bool { return d.termios.Oflag&f != 0 }
func (d *discipline) lflag(f uint32) bool { return d.termios.Lflag&f != 0 }
func (d *discipline) cc(i int) byte       { return d.termios.Cc[i] }
func (d *discipline) canonical() bool     { return d.lflag(unix.ICANON) }

// setTermios installs t. Switching canonical mode on makes the input
// already queued one finished line; switching it off makes all of it,
// the line being edited included, readable.
func (d *discipline) setTermios(t unix.Termios) {
	wasCanonical := d.canonical()
	d.termios = t
	if d.canonical() != wasCanonical {
		d.lines, d.complete, d.lnext = nil, 0, false
		if d.canonical() && len(d.in) > 0 {
			d.lines, d.complete = []int{len(d.in)}, len(d.in)
		}
	}
	if !d.iflag(unix.IXON) {
		d.stopped = false
	}
	d.special = [256]bool{}
	mark := func(c byte) { d.special[c] = true }
	if d.iflag(unix.IGNCR | unix.ICRNL) {
		mark('\r')
	}
	if d.iflag(unix.INLCR) {
		mark('\n')
	}
	if d.canonical() {
		mark(d.cc(unix.VERASE))
		mark(d.cc(unix.VKILL))
		mark(d.cc(unix.VEOF))
		mark('\n')
		mark(d.cc(unix.VEOL))
		if d.lflag(unix.IEXTEN) {
			mark(d.cc(unix.VWERASE))
			mark(d.cc(unix.VLNEXT))
			mark(d.cc(unix.VEOL2))
			if d.lflag(unix.ECHO) {
				mark(d.cc(unix.VREPRINT))
			}
		}
	}
	if d.iflag(unix.IXON) {
		mark(d.cc(unix.VSTART))
		mark(d.cc(unix.VSTOP))
	}
	if d.lflag(unix.ISIG) {
		mark(d.cc(unix.VINTR))
		mark(d.cc(unix.VQUIT))
		mark(d.cc(unix.VSUSP))
	}
	d.special[disabledChar] = false
}

// room is how many more input bytes the discipline takes now. In
// canonical mode without a finished line it always takes more, dropping
// what does not fit, so that erase and newline still work.
func (d *discipline) room() int {
	// Lines ended by VEOF store nothing but take a place all the same.
	left := inputCap - 1 - len(d.in) - len(d.lines)
	if left <= 0 && d.canonical() && len(d.lines) == 0 {
		return 1
	}
	return max(left, 0)
}

// readable returns how many bytes a read could take now (canonical: the
// first line, which may be an empty end-of-file line), and whether a read
// would return (a canonical end-of-file line counts).
func (d *discipline) readable() (int, bool) {
	if d.canonical() {
		if len(d.lines) == 0 {
			return 0, false
		}
		return d.lines[0], true
	}
	return len(d.in), len(d.in) > 0
}

// queued is FIONREAD on the slave: the bytes of finished lines in
// canonical mode, all input otherwise.
func (d *discipline) queued() int {
	if d.canonical() {
		return d.complete
	}
	return len(d.in)
}

// read takes up to len(dst) bytes of input; in canonical mode no more
// than the rest of the first line, which it consumes when done.
func (d *discipline) read(dst []byte) int {
	n := len(d.in)
	if d.canonical() {
		if len(d.lines) == 0 {
			return 0
		}
		n = d.lines[0]
	}
	n = copy(dst, d.in[:n])
	// Reslicing, not copying down, keeps a byte-at-a-time reader linear;
	// append reallocates once the front is used up.
	d.in = d.in[n:]
	if d.canonical() {
		d.lines[0] -= n
		d.complete -= n
		if d.lines[0] == 0 {
			d.lines = d.lines[1:]
		}
	}
	return n
}

// flushInput discards the input.
func (d *discipline) flushInput() {
	d.in, d.lines, d.complete, d.lnext = d.in[:0], nil, 0, false
}

// flushOutput discards the output the master has not read.
func (d *discipline) flushOutput() {
	d.out = d.out[:0]
}

// editing returns the line being edited.
func (d *discipline) editing() []byte {
	return d.in[d.complete:]
}

// store queues an input byte; PARMRK doubles \377 so that it cannot be
// mistaken for the start of a mark.
func (d *discipline) store(c byte) {
	if d.canonical() && len(d.in) >= inputCap-1 {
		return
	}
	if c == 0xff && d.iflag(unix.PARMRK) {
		d.in = append(d.in, c)
	}
	d.in = append(d.in, c)
}

// endLine finishes the line being edited, with c stored as its
// terminator unless c is VEOF's end of file (stored is false).
func (d *discipline) endLine(c byte, stored bool) {
	if stored {
		d.in = append(d.in, c)
	}
	d.lines = append(d.lines, len(d.in)-d.complete)
	d.complete = len(d.in)
}

// receive processes one input byte written by the master; the caller
// has checked room.
func (d *discipline) receive(c byte) {
	d.echoing = true
	defer func() {
		d.echoing = false
		if len(d.echoes) >= echoBatch {
			d.flushEchoes()
		}
	}()
	if d.iflag(unix.ISTRIP) {
		c &= 0x7f
	}
	if d.iflag(unix.IUCLC) && d.lflag(unix.IEXTEN) && c >= 'A' && c <= 'Z' {
		c += 'a' - 'A'
	}
	if d.lnext {
		d.lnext = false
		d.receiveOrdinary(c)
		return
	}
	if d.stopped && d.iflag(unix.IXANY) && !d.special[c] {
		d.stopped = false
	}
	if !d.special[c] {
		d.receiveOrdinary(c)
		return
	}
	d.receiveSpecial(c)
}

// receiveOrdinary stores and echoes a byte without special meaning.
func (d *discipline) receiveOrdinary(c byte) {
	if d.lflag(unix.ECHO) {
		d.markLineStart()
		d.echoChar(c)
	}
	d.store(c)
}

// markLineStart records the column the line being edited starts at.
func (d *discipline) markLineStart() {
	if len(d.in) == d.complete {
		d.canonColumn = d.column
	}
}

func (d *discipline) receiveSpecial(c byte) {
	if d.iflag(unix.IXON) {
		switch c {
		case d.cc(unix.VSTART):
			d.stopped = false
			return
		case d.cc(unix.VSTOP):
			d.stopped = true
			return
		}
	}
	if d.lflag(unix.ISIG) {
		switch c {
		case d.cc(unix.VINTR):
			d.signal(unix.SIGINT, c)
			return
		case d.cc(unix.VQUIT):
			d.signal(unix.SIGQUIT, c)
			return
		case d.cc(unix.VSUSP):
			d.signal(unix.SIGTSTP, c)
			return
		}
	}
	if d.stopped && d.iflag(unix.IXANY) {
		d.stopped = false
	}
	switch {
	case c == '\r':
		if d.iflag(unix.IGNCR) {
			return
		}
		if d.iflag(unix.ICRNL) {
			c = '\n'
		}
	case c == '\n' && d.iflag(unix.INLCR):
		c = '\r'
	}
	if d.canonical() && d.receiveCanonical(c) {
		return
	}
	if d.lflag(unix.ECHO) {
		if c == '\n' {
			d.echo('\n')
		} else {
			d.markLineStart()
			d.echoChar(c)
		}
	}
	d.store(c)
}

// signal handles a signal character: unless NOFLSH the input goes, the
// signal is raised, stopped output restarts and the character echoes.
func (d *discipline) signal(sig unix.Signal, c byte) {
	if !d.lflag(unix.NOFLSH) {
		d.flushInput()
		d.echoes = d.echoes[:0]
	}
	d.signals = append(d.signals, sig)
	if d.iflag(unix.IXON) {
		d.stopped = false
	}
	if d.lflag(unix.ECHO) {
		d.echoChar(c)
	}
}

// receiveCanonical handles the line-editing characters; it returns
// false for a byte that is to be stored as any other.
func (d *discipline) receiveCanonical(c byte) bool {
	iexten := d.lflag(unix.IEXTEN)
	switch {
	case c == d.cc(unix.VERASE), c == d.cc(unix.VKILL), c == d.cc(unix.VWERASE) && iexten:
		d.erase(c)
	case c == d.cc(unix.VLNEXT) && iexten:
		d.lnext = true
		if d.lflag(unix.ECHO) && d.lflag(unix.ECHOCTL) {
			d.echo('^')
			d.echo('\b')
		}
	case c == d.cc(unix.VREPRINT) && iexten && d.lflag(unix.ECHO):
		d.echoChar(c)
		d.echo('\n')
		for _, b := range d.editing() {
			d.echoChar(b)
		}
	case c == '\n':
		if d.lflag(unix.ECHO) || d.lflag(unix.ECHONL) {
			d.echo('\n')
		}
		d.endLine(c, true)
	case c == d.cc(unix.VEOF):
		d.endLine(c, false)
	case c == d.cc(unix.VEOL), c == d.cc(unix.VEOL2) && iexten:
		if d.lflag(unix.ECHO) {
			d.markLineStart()
			d.echoChar(c)
		}
		d.endLine(c, true)
	default:
		return false
	}
	return true
}

// erase handles VERASE (one character), VWERASE (a word) and VKILL (the
// line), echoing the erasure as ECHOE, ECHOK and ECHOKE ask.
func (d *discipline) erase(c byte) {
	if len(d.editing()) == 0 {
		return
	}
	kill := c == d.cc(unix.VKILL) && c != d.cc(unix.VERASE) && c != d.cc(unix.VWERASE)
	word := !kill && c != d.cc(unix.VERASE)
	echo := d.lflag(unix.ECHO)
	if kill {
		if !echo {
			d.in = d.in[:d.complete]
			return
		}
		if !d.lflag(unix.ECHOK) || !d.lflag(unix.ECHOKE) || !d.lflag(unix.ECHOE) {
			d.in = d.in[:d.complete]
			d.echoChar(c)
			if d.lflag(unix.ECHOK) {
				d.echo('\n')
			}
			return
		}
	}
	alnums := 0
	for len(d.editing()) > 0 {
		line := d.editing()
		start := len(line) - 1
		for start > 0 && d.continuation(line[start]) {
			start--
		}
		last := line[start]
		if d.continuation(last) {
			break
		}
		if word {
			if isAlnum(last) || last == '_' {
				alnums++
			} else if alnums > 0 {
				break
			}
		}
		d.in = d.in[:d.complete+start]
		if echo {
			d.echoErase(c, last)
		}
		if !kill && !word {
			break
		}
	}
}

// echoErase echoes the erasure of the character last.
func (d *discipline) echoErase(c, last byte) {
	switch {
	case c == d.cc(unix.VERASE) && !d.lflag(unix.ECHOE):
		d.echoChar(c)
	case last == '\t':
		d.echoEraseTab()
	default:
		wipes := 1
		if isCntrl(last) {
			wipes = 0
			if d.lflag(unix.ECHOCTL) {
				wipes = 2
			}
		}
		for range wipes {
			d.echo('\b')
			d.echo(' ')
			d.echo('\b')
		}
	}
}

// echoEraseTab backs up over an erased tab: to the previous tab stop,
// counting the columns of what follows the previous tab in the line, or
// the line's start column when there is none.
func (d *discipline) echoEraseTab() {
	cols, afterTab := 0, false
	line := d.editing()
	for i := len(line) - 1; i >= 0; i-- {
		b := line[i]
		if b == '\t' {
			afterTab = true
			break
		}
		switch {
		case isCntrl(b):
			if d.lflag(unix.ECHOCTL) {
				cols += 2
			}
		case !d.continuation(b):
			cols++
		}
	}
	if !afterTab {
		cols += d.canonColumn
	}
	back := 8 - cols&7
	if d.outputRoom() < back {
		return
	}
	for range back {
		d.emit('\b')
		if d.column > 0 {
			d.column--
		}
	}
}

func (d *discipline) continuation(c byte) bool {
	return d.iflag(unix.IUTF8) && c&0xc0 == 0x80
}

func isCntrl(c byte) bool { return c < 0x20 || c == 0x7f }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// echoChar echoes an input byte: with ECHOCTL a control character other
// than tab shows as ^X.
func (d *discipline) echoChar(c byte) {
	if d.lflag(unix.ECHOCTL) && isCntrl(c) && c != '\t' {
		if d.outputRoom() >= 2 {
			d.emit('^')
			d.emit(c ^ 0o100)
			d.column += 2
		}
		return
	}
	d.echo(c)
}

// echo writes one byte of echo through output processing; echoes that
// do not fit in the output queue are lost.
func (d *discipline) echo(c byte) {
	d.output(c)
}

func (d *discipline) outputRoom() int { return outputCap - len(d.out) - len(d.echoes) }

// emit queues an output byte, holding echoes back until flushEchoes.
func (d *discipline) emit(c byte) {
	if d.echoing {
		d.echoes = append(d.echoes, c)
		return
	}
	d.out = append(d.out, c)
}

// flushEchoes makes the echoes waiting readable by the master.
func (d *discipline) flushEchoes() {
	d.out = append(d.out, d.echoes...)
	d.echoes = d.echoes[:0]
}

// write processes the slave's output into the master's queue and returns
// how many bytes of src it took: fewer when the queue fills or output is
// stopped.
func (d *discipline) write(src []byte) int {
	for i, c := range src {
		if d.stopped || !d.output(c) {
			return i
		}
	}
	return len(src)
}

// output processes one output byte as the oflag says (OPOST: ONLCR,
// OCRNL, ONOCR, ONLRET, OLCUC, XTABS), tracking the column; false when
// its expansion does not fit.
func (d *discipline) output(c byte) bool {
	room := d.outputRoom()
	if room == 0 {
		return false
	}
	if !d.oflag(unix.OPOST) {
		d.emit(c)
		return true
	}
	switch c {
	case '\n':
		if d.oflag(unix.ONLRET) {
			d.column = 0
		}
		if d.oflag(unix.ONLCR) {
			if room < 2 {
				return false
			}
			d.column, d.canonColumn = 0, 0
			d.emit('\r')
			d.emit('\n')
			return true
		}
		d.canonColumn = d.column
	case '\r':
		if d.oflag(unix.ONOCR) && d.column == 0 {
			return true
		}
		if d.oflag(unix.OCRNL) {
			c = '\n'
			if d.oflag(unix.ONLRET) {
				d.column, d.canonColumn = 0, 0
			}
			break
		}
		d.column, d.canonColumn = 0, 0
	case '\t':
		spaces := 8 - d.column&7
		if d.termios.Oflag&unix.TABDLY == unix.XTABS {
			if room < spaces {
				return false
			}
			for range spaces {
				d.emit(' ')
			}
			d.column += spaces
			return true
		}
		d.column += spaces
	case '\b':
		if d.column > 0 {
			d.column--
		}
	default:
		if !isCntrl(c) {
			if d.oflag(unix.OLCUC) && c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if !d.continuation(c) {
				d.column++
			}
		}
	}
	d.emit(c)
	return true
}

// takeOutput moves up to len(dst) bytes of output to dst.
func (d *discipline) takeOutput(dst []byte) int {
	n := copy(dst, d.out)
	d.out = d.out[n:]
	return n
}

// takeSignals returns and clears the signals raised.
func (d *discipline) takeSignals() []unix.Signal {
	s := d.signals
	d.signals = nil
	return s
}
