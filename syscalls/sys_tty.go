package syscalls

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/devpts"
)

// The kernel's struct termios is 36 bytes: unix.Termios without the
// speed fields, which struct termios2 adds.
const (
	termiosSize  = 36
	termios2Size = 44
)

// ioctlTIOCOUTQ is TIOCOUTQ, which x/sys/unix lacks on x86-64.
const ioctlTIOCOUTQ = 0x5411

// ttyIoctlNote lists the terminal ioctls of the sandbox's ptys.
const ttyIoctlNote = "ptys: TCGETS, TCSETS, TCSETSW, TCSETSF and the termios2 ones, TIOCGWINSZ, TIOCSWINSZ, " +
	"TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER, TIOCSIG, TIOCSCTTY, TIOCNOTTY, TIOCGPGRP, TIOCSPGRP, " +
	"TIOCGSID, TCFLSH, TIOCOUTQ, TCSBRK, TCSBRKP"

// ptyOf returns the pty behind f and whether f is its master.
func ptyOf(f *vfs.File) (t *devpts.Terminal, master, ok bool) {
	switch impl := f.Impl().(type) {
	case *devpts.Master:
		return impl.Terminal(), true, true
	case *devpts.Slave:
		return impl.Terminal(), false, true
	}
	return nil, false, false
}

// baudRates are the speeds of the CBAUD codes: B0 to B38400, then with
// CBAUDEX B57600 to B4000000.
var baudRates = [...]uint32{
	0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
	57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
	2000000, 2500000, 3000000, 3500000, 4000000,
}

// baudRate is the speed code's rate; BOTHER keeps other.
func baudRate(code, other uint32) uint32 {
	if code&unix.CBAUDEX != 0 {
		code &^= unix.CBAUDEX
		if code == 0 {
			return other
		}
		code += 15
	}
	return baudRates[code]
}

// setSpeeds derives the speed fields from c_cflag, as Linux does on
// every TCSETS: the output rate from CBAUD, the input rate from CIBAUD
// (the output rate when B0).
func setSpeeds(tio *unix.Termios) {
	tio.Ospeed = baudRate(tio.Cflag&unix.CBAUD, tio.Ospeed)
	in := tio.Cflag & unix.CIBAUD >> 16
	if in == unix.B0 {
		tio.Ispeed = tio.Ospeed
	} else {
		tio.Ispeed = baudRate(in, tio.Ispeed)
	}
}

// ptyIoctl runs the terminal ioctls of a pty file. Those about job
// control are answered for the slave, whichever side is asked, as on
// Linux.
func ptyIoctl(t *kernel.Task, f *vfs.File, pty *devpts.Terminal, master bool, cmd, arg uint64) (uint64, error) {
	tg := t.ThreadGroup()
	switch cmd {
	case unix.TCSETS, unix.TCSETSW, unix.TCSETSF, unix.TCSETS2, unix.TCSETSW2, unix.TCSETSF2,
		unix.TCFLSH, unix.TIOCSPGRP:
		// A background group changing its terminal gets SIGTTOU.
		if !master {
			err := t.CheckTerminalAccess(pty, unix.SIGTTOU)
			if err == unix.EIO && cmd == unix.TIOCSPGRP {
				err = unix.ENOTTY
			}
			if err != nil {
				return 0, err
			}
		}
	}
	switch cmd {
	case unix.TCGETS, unix.TCGETS2:
		tio := pty.Termios()
		size := termiosSize
		if cmd == unix.TCGETS2 {
			size = termios2Size
		}
		return 0, copyOut(t, arg, bytesOf(&tio)[:size])
	case unix.TCSETS, unix.TCSETSW, unix.TCSETSF, unix.TCSETS2, unix.TCSETSW2, unix.TCSETSF2:
		tio := pty.Termios()
		two := cmd == unix.TCSETS2 || cmd == unix.TCSETSW2 || cmd == unix.TCSETSF2
		size := termiosSize
		if two {
			size = termios2Size
		}
		if err := copyIn(t, arg, bytesOf(&tio)[:size]); err != nil {
			return 0, err
		}
		setSpeeds(&tio)
		pty.SetTermios(tio, cmd == unix.TCSETSF || cmd == unix.TCSETSF2)
		return 0, nil
	case unix.TIOCGWINSZ:
		ws := pty.WindowSize()
		return 0, copyOutStruct(t, arg, &ws)
	case unix.TIOCSWINSZ:
		var ws unix.Winsize
		if err := copyInStruct(t, arg, &ws); err != nil {
			return 0, err
		}
		pty.SetWindowSize(ws)
		return 0, nil
	case unix.TCFLSH:
		return 0, pty.Flush(master, int(arg))
	case ioctlTIOCOUTQ:
		// Linux counts what the driver still holds, which a pty never
		// does: what the slave wrote is the master's input at once.
		return 0, copyOut(t, arg, make([]byte, 4))
	case unix.TCSBRK, unix.TCSBRKP:
		// tcdrain and tcsendbreak: a pty has no line to drain or break.
		return 0, nil
	case unix.TIOCSCTTY:
		return 0, tg.SetControllingTerminal(pty, arg == 1, f.StatusFlags()&unix.O_ACCMODE != unix.O_WRONLY)
	case unix.TIOCNOTTY:
		if master {
			return 0, unix.ENOTTY
		}
		return 0, tg.DropControllingTerminal(pty)
	case unix.TIOCGPGRP, unix.TIOCGSID:
		sid, pgrp := pty.Session()
		if !master && tg.ControllingTerminal() != pty {
			return 0, unix.ENOTTY
		}
		v := pgrp
		if cmd == unix.TIOCGSID {
			if sid == 0 {
				return 0, unix.ENOTTY
			}
			v = sid
		}
		return 0, copyOutUint32(t, arg, uint32(v))
	case unix.TIOCSPGRP:
		var b [4]byte
		if err := copyIn(t, arg, b[:]); err != nil {
			return 0, err
		}
		return 0, tg.SetForegroundGroup(pty, int32(binary.LittleEndian.Uint32(b[:])))
	}
	if !master {
		return 0, unix.ENOTTY
	}
	switch cmd {
	case unix.TIOCGPTN:
		return 0, copyOutUint32(t, arg, pty.Index())
	case unix.TIOCSPTLCK:
		var b [4]byte
		if err := copyIn(t, arg, b[:]); err != nil {
			return 0, err
		}
		pty.SetLocked(b != [4]byte{})
		return 0, nil
	case unix.TIOCGPTLCK:
		var locked uint32
		if pty.Locked() {
			locked = 1
		}
		return 0, copyOutUint32(t, arg, locked)
	case unix.TIOCSIG:
		if arg == 0 || arg > kernel.NumSignals {
			return 0, unix.EINVAL
		}
		return 0, pty.SignalForeground(unix.Signal(arg))
	case unix.TIOCGPTPEER:
		return openPeer(t, pty, int(arg))
	}
	return 0, unix.ENOTTY
}

func copyOutUint32(t *kernel.Task, addr uint64, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return copyOut(t, addr, b[:])
}

// openPeer implements TIOCGPTPEER: a new descriptor of the slave, named
// /dev/pts/N when the caller's /dev/pts shows this pty (ttyname works on
// it), else a slave file reached through no name.
func openPeer(t *kernel.Task, pty *devpts.Terminal, flags int) (uint64, error) {
	if flags&^(unix.O_ACCMODE|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC) != 0 {
		return 0, unix.EINVAL
	}
	cloexec := flags&unix.O_CLOEXEC != 0
	fd, err := reserveFD(t, cloexec)
	if err != nil {
		return 0, err
	}
	open := flags &^ unix.O_CLOEXEC
	f, err := t.Kernel().VFS().OpenAt(t.FSContext(), nil, fmt.Sprintf("/dev/pts/%d", pty.Index()), open, 0)
	if err == nil {
		if s, ok := f.Impl().(*devpts.Slave); !ok || s.Terminal() != pty {
			f.DecRef()
			f = nil
		}
	}
	if f == nil {
		s, err := pty.OpenSlave(t.Context(), open)
		if err != nil {
			closeReserved(t, fd)
			return 0, err
		}
		f = vfs.NewFile(s, open)
	}
	return fillFD(t, fd, f, cloexec), nil
}
