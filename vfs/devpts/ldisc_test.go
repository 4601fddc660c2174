package devpts

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// feed runs input through d as a master's write does, reading the slave
// side whenever the discipline has no room, and returns what the slave
// read.
func feed(d *discipline, input []byte) []byte {
	var got []byte
	buf := make([]byte, 64)
	for _, c := range input {
		for d.room() == 0 {
			n := d.read(buf)
			got = append(got, buf[:n]...)
			if n == 0 && d.room() == 0 {
				d.flushInput()
			}
		}
		d.receive(c)
	}
	d.flushEchoes()
	return got
}

// readAll drains the slave's input: every line in canonical mode.
func readAll(d *discipline) []byte {
	var got []byte
	buf := make([]byte, 64)
	for {
		if _, ok := d.readable(); !ok {
			return got
		}
		n := d.read(buf)
		got = append(got, buf[:n]...)
	}
}

func TestCanonicalEditing(t *testing.T) {
	for _, tc := range []struct {
		name, in, read, echo string
	}{
		{"line", "hello\n", "hello\n", "hello\r\n"},
		{"erase", "abc\x7f\x7fd\n", "ad\n", "abc\b \b\b \bd\r\n"},
		{"kill", "xyz\x15q\n", "q\n", "xyz\b \b\b \b\b \bq\r\n"},
		{"tab", "ab\tc\x7f\x7fe\r", "abe\n", "ab\tc\b \b\b\b\b\b\b\be\r\n"},
		{"word", "one two\x17three\n", "one three\n", "one two\b \b\b \b\b \bthree\r\n"},
		{"lnext", "x\x16\x7fy\n", "x\x7fy\n", "x^\b^?y\r\n"},
		{"eof", "ab\x04", "ab", "ab"},
		{"signal", "partial\x03", "", "^C"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDiscipline()
			feed(d, []byte(tc.in))
			require.Equal(t, tc.read, string(readAll(d)))
			require.Equal(t, tc.echo, string(d.out))
		})
	}
}

func TestSignalCharacters(t *testing.T) {
	d := newDiscipline()
	feed(d, []byte("\x03\x1c\x1a"))
	require.Equal(t, []unix.Signal{unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP}, d.takeSignals())
	require.Empty(t, d.takeSignals())
}

func TestRawModeSwitches(t *testing.T) {
	d := newDiscipline()
	feed(d, []byte("par"))
	_, ok := d.readable()
	require.False(t, ok, "a partial line is not readable in canonical mode")
	raw := d.termios
	raw.Lflag &^= unix.ICANON
	d.setTermios(raw)
	require.Equal(t, 3, d.queued())
	feed(d, []byte("tial"))
	canonical := d.termios
	canonical.Lflag |= unix.ICANON
	d.setTermios(canonical)
	require.Equal(t, "partial", string(readAll(d)), "switching to canonical mode makes the input one line")
}

func TestOutputProcessing(t *testing.T) {
	d := newDiscipline()
	require.Equal(t, 8, d.write([]byte("a\tb\nc\rd\b")))
	require.Equal(t, "a\tb\r\nc\rd\b", string(d.out))
	tio := d.termios
	tio.Oflag |= unix.XTABS | unix.OLCUC
	d.setTermios(tio)
	d.flushOutput()
	d.column = 0
	d.write([]byte("x\ty"))
	require.Equal(t, "X       Y", string(d.out))
	d.stopped = true
	require.Equal(t, 0, d.write([]byte("z")), "stopped output takes nothing")
}

// FuzzLineDiscipline runs arbitrary input through the line discipline
// under an arbitrary termios, with reads and output in between: it must
// never panic nor hold more than its buffers allow.
func FuzzLineDiscipline(f *testing.F) {
	def := defaultTermios()
	f.Add(termiosBytes(&def), []byte("hello\nabc\x7f\x7fd\nxyz\x15q\n\x04ab\x04\x03\x16\x7f\n"))
	raw := def
	raw.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 0, 0
	f.Add(termiosBytes(&raw), []byte("\x03raw\r\n\xff\x00"))
	utf8 := def
	utf8.Iflag |= unix.IUTF8 | unix.PARMRK | unix.INLCR | unix.IXANY
	utf8.Oflag |= unix.XTABS | unix.OCRNL | unix.ONOCR | unix.ONLRET
	f.Add(termiosBytes(&utf8), []byte("h\xc3\xa9\x7f\t\x7f\x17\x12\x13x\x11\xff\r\n"))
	f.Fuzz(func(t *testing.T, tio []byte, input []byte) {
		var termios unix.Termios
		if len(tio) >= 16 {
			termios.Iflag = binary.LittleEndian.Uint32(tio[0:])
			termios.Oflag = binary.LittleEndian.Uint32(tio[4:])
			termios.Cflag = binary.LittleEndian.Uint32(tio[8:])
			termios.Lflag = binary.LittleEndian.Uint32(tio[12:])
			copy(termios.Cc[:], tio[16:])
		}
		d := newDiscipline()
		d.setTermios(termios)
		for i, c := range input {
			if d.room() == 0 {
				d.read(make([]byte, int(c)+1))
				if d.room() == 0 {
					d.flushInput()
				}
			}
			d.receive(c)
			switch c % 7 {
			case 0:
				d.takeOutput(make([]byte, int(c)))
			case 1:
				d.write(input[i:min(len(input), i+64)])
			case 2:
				d.flushEchoes()
			case 3:
				flipped := termios
				flipped.Lflag ^= uint32(c)
				d.setTermios(flipped)
			}
			if len(d.in) > inputCap || len(d.out)+len(d.echoes) > outputCap || d.complete != sum(d.lines) || d.complete > len(d.in) {
				t.Fatalf("after byte %d: %d input bytes, %d complete in lines %v; %d output bytes", i, len(d.in), d.complete, d.lines, len(d.out)+len(d.echoes))
			}
		}
		readAll(d)
		d.takeSignals()
	})
}

func termiosBytes(t *unix.Termios) []byte {
	b := make([]byte, 16+len(t.Cc))
	binary.LittleEndian.PutUint32(b[0:], t.Iflag)
	binary.LittleEndian.PutUint32(b[4:], t.Oflag)
	binary.LittleEndian.PutUint32(b[8:], t.Cflag)
	binary.LittleEndian.PutUint32(b[12:], t.Lflag)
	copy(b[16:], t.Cc[:])
	return b
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
