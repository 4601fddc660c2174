package kernel

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// The si_code values of SIGIO/SIGPOLL signals (POLL_IN, ...), which
// x/sys/unix lacks.
const (
	PollIn  = 1
	PollOut = 2
	PollMsg = 3
	PollErr = 4
	PollPri = 5
	PollHup = 6
)

// pollBands are the si_band values of each si_code (Linux's band_table).
// Poll and epoll events share their values; x/sys names some only in
// their EPOLL form.
var pollBands = [...]uint64{
	PollIn - PollIn:  unix.POLLIN | unix.EPOLLRDNORM,
	PollOut - PollIn: unix.POLLOUT | unix.EPOLLWRNORM | unix.EPOLLWRBAND,
	PollMsg - PollIn: unix.POLLIN | unix.EPOLLRDNORM | unix.EPOLLMSG,
	PollErr - PollIn: unix.POLLERR,
	PollPri - PollIn: unix.POLLPRI | unix.EPOLLRDBAND,
	PollHup - PollIn: unix.POLLHUP | unix.POLLERR,
}

// SendIOSignal sends f's I/O signal to f's owner, as Linux's send_sigio
// does: the signal F_SETSIG chose, with si_code code (PollIn, ...), its
// si_band and si_fd fd, or without one a plain SIGIO from the kernel. A
// file without an owner sends nothing.
func (k *Kernel) SendIOSignal(f *vfs.File, fd int32, code int) {
	owner := f.Owner()
	if owner.ID == 0 {
		return
	}
	var info SigInfo
	if sig := f.Signal(); sig == 0 {
		info = NewSigInfo(int(unix.SIGIO), SiKernel)
	} else {
		info = NewSigInfo(sig, code)
		binary.LittleEndian.PutUint64(info[16:], pollBands[code-PollIn])
		binary.LittleEndian.PutUint32(info[24:], uint32(fd))
	}
	switch owner.Type {
	case vfs.OwnerThread:
		if t := k.Thread(owner.ID); t != nil && mayReceiveIOSignal(t.tg, owner) {
			t.SendSignal(info)
		}
	case vfs.OwnerProcess:
		if tg := k.Process(owner.ID); tg != nil && !tg.Zombie() && mayReceiveIOSignal(tg, owner) {
			tg.SendSignal(info)
		}
	case vfs.OwnerGroup:
		for _, tg := range k.ProcessGroupMembers(owner.ID) {
			if mayReceiveIOSignal(tg, owner) {
				tg.SendSignal(info)
			}
		}
	}
}

// mayReceiveIOSignal is Linux's sigio_perm: the process that set the
// owner was root, or one of its user IDs is the receiver's real or saved
// user ID.
func mayReceiveIOSignal(tg *ThreadGroup, owner vfs.Owner) bool {
	c := tg.Creds()
	return owner.EUID == 0 || owner.EUID == c.SUID || owner.EUID == c.UID || owner.UID == c.SUID || owner.UID == c.UID
}

// OwnerExists reports whether an owner of type typ may be id: Linux's
// F_SETOWN looks the id up and refuses one nothing has (ESRCH).
func (k *Kernel) OwnerExists(typ, id int32) bool {
	if typ == vfs.OwnerGroup {
		return len(k.ProcessGroupMembers(id)) > 0 || k.ProcessOf(id) != nil
	}
	return k.ProcessOf(id) != nil
}
