package netstack

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// Cred is the identity a message or a connection carries: struct ucred.
type Cred struct {
	PID      int32
	UID, GID uint32
}

// Control is what the control messages of one sendmsg carry.
type Control struct {
	// Files are the descriptors of SCM_RIGHTS, one reference each.
	Files []*vfs.File
	// Cred is SCM_CREDENTIALS, nil when the sender gave none.
	Cred *Cred
}

// Release drops the references Control holds.
func (c *Control) Release() {
	for _, f := range c.Files {
		f.DecRef()
	}
	c.Files = nil
}

// MaxRights is SCM_MAX_FD: the most descriptors one message carries.
const MaxRights = 253

// MaxControl is optmem_max: the largest msg_controllen sendmsg accepts
// (larger is ENOBUFS).
const MaxControl = 128 << 10

const (
	cmsgHdrLen = unix.SizeofCmsghdr
	ucredLen   = unix.SizeofUcred
)

// cmsgAlign rounds n up to the alignment of control messages (CMSG_ALIGN).
func cmsgAlign(n uint64) uint64 {
	return (n + 7) &^ 7
}

// ParseControl parses the control buffer of sendmsg as Linux's
// __scm_send does: each header must fit and claim at least its own size
// (EINVAL); levels other than SOL_SOCKET are skipped; SCM_RIGHTS takes at
// most MaxRights descriptors in all (EINVAL), each looked up with file
// (EBADF); SCM_CREDENTIALS must be exactly a struct ucred that check
// allows (EPERM); other SOL_SOCKET types are EINVAL. On error nothing is
// held.
func ParseControl(b []byte, file func(fd int32) (*vfs.File, error), check func(Cred) error) (Control, error) {
	var c Control
	for off := uint64(0); off+cmsgHdrLen <= uint64(len(b)); {
		clen := binary.LittleEndian.Uint64(b[off:])
		level := int32(binary.LittleEndian.Uint32(b[off+8:]))
		typ := int32(binary.LittleEndian.Uint32(b[off+12:]))
		if clen < cmsgHdrLen || clen > uint64(len(b))-off {
			c.Release()
			return Control{}, unix.EINVAL
		}
		data := b[off+cmsgHdrLen : off+clen]
		if level == unix.SOL_SOCKET {
			if err := c.add(typ, data, file, check); err != nil {
				c.Release()
				return Control{}, err
			}
		}
		next := off + cmsgAlign(clen)
		if next <= off {
			break
		}
		off = next
	}
	return c, nil
}

func (c *Control) add(typ int32, data []byte, file func(fd int32) (*vfs.File, error), check func(Cred) error) error {
	switch typ {
	case unix.SCM_RIGHTS:
		n := len(data) / 4
		if len(c.Files)+n > MaxRights {
			return unix.EINVAL
		}
		for i := range n {
			f, err := file(int32(binary.LittleEndian.Uint32(data[4*i:])))
			if err != nil {
				return err
			}
			c.Files = append(c.Files, f)
		}
		return nil
	case unix.SCM_CREDENTIALS:
		if len(data) != ucredLen {
			return unix.EINVAL
		}
		cr := Cred{
			PID: int32(binary.LittleEndian.Uint32(data)),
			UID: binary.LittleEndian.Uint32(data[4:]),
			GID: binary.LittleEndian.Uint32(data[8:]),
		}
		if err := check(cr); err != nil {
			return err
		}
		c.Cred = &cr
		return nil
	}
	return unix.EINVAL
}

// ControlWriter fills the control buffer of recvmsg as put_cmsg does: a
// message that does not fit is cut short and MSG_CTRUNC set.
type ControlWriter struct {
	Buf []byte // msg_controllen bytes
	// Len is the part of Buf used: the msg_controllen recvmsg returns.
	Len       int
	Truncated bool
}

// Put appends one control message.
func (w *ControlWriter) Put(level, typ int32, data []byte) {
	room := len(w.Buf) - w.Len
	if room < cmsgHdrLen {
		w.Truncated = true
		return
	}
	clen := cmsgHdrLen + len(data)
	msg := make([]byte, cmsgAlign(uint64(clen)))
	binary.LittleEndian.PutUint64(msg, uint64(clen))
	binary.LittleEndian.PutUint32(msg[8:], uint32(level))
	binary.LittleEndian.PutUint32(msg[12:], uint32(typ))
	copy(msg[cmsgHdrLen:], data)
	if room < clen {
		w.Truncated = true
		binary.LittleEndian.PutUint64(msg, uint64(room))
	}
	w.Len += copy(w.Buf[w.Len:], msg)
}

// PutCred appends SCM_CREDENTIALS.
func (w *ControlWriter) PutCred(c Cred) {
	var b [ucredLen]byte
	binary.LittleEndian.PutUint32(b[:], uint32(c.PID))
	binary.LittleEndian.PutUint32(b[4:], c.UID)
	binary.LittleEndian.PutUint32(b[8:], c.GID)
	w.Put(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, b[:])
}

// RightsRoom is how many descriptors an SCM_RIGHTS message can hold in
// what is left of the buffer.
func (w *ControlWriter) RightsRoom() int {
	room := len(w.Buf) - w.Len
	if room <= cmsgHdrLen {
		return 0
	}
	return (room - cmsgHdrLen) / 4
}

// PutRights appends SCM_RIGHTS with fds, which must fit (RightsRoom).
func (w *ControlWriter) PutRights(fds []int32) {
	b := make([]byte, 4*len(fds))
	for i, fd := range fds {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(fd))
	}
	w.Put(unix.SOL_SOCKET, unix.SCM_RIGHTS, b)
}
