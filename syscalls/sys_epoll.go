package syscalls

import (
	"encoding/binary"
	"time"

	"github.com/kvmbox/kvmbox/kernel"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/epoll"
	"golang.org/x/sys/unix"
)

// epollEventSize is sizeof(struct epoll_event): packed on x86-64.
const epollEventSize = 12

// epMaxEvents is Linux's bound on maxevents (EP_MAX_EVENTS).
const epMaxEvents = 0x7fffffff / epollEventSize

// epollBatch bounds the events one wait returns, which bounds the host
// memory a guest's maxevents can make it use.
const epollBatch = 1024

const epollWaitNote = "at most 1024 events a call"

func sysEpollCreate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if int32(a[0]) <= 0 {
		return 0, unix.EINVAL
	}
	return epollCreate(t, false)
}

func sysEpollCreate1(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := int32(a[0])
	if flags&^unix.EPOLL_CLOEXEC != 0 {
		return 0, unix.EINVAL
	}
	return epollCreate(t, flags&unix.EPOLL_CLOEXEC != 0)
}

func epollCreate(t *kernel.Task, cloexec bool) (uint64, error) {
	fd, err := installFD(t, epoll.New(), 0, cloexec)
	if err != nil {
		return 0, err
	}
	return uint64(fd), nil
}

func sysEpollCtl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	op := int(int32(a[1]))
	var ev [epollEventSize]byte
	if op != unix.EPOLL_CTL_DEL {
		if err := copyIn(t, a[3], ev[:]); err != nil {
			return 0, err
		}
	}
	epf, err := getNonPathFile(t, a[0])
	if err != nil {
		return 0, err
	}
	defer epf.DecRef()
	target, err := getNonPathFile(t, a[2])
	if err != nil {
		return 0, err
	}
	defer target.DecRef()
	events, data := binary.LittleEndian.Uint32(ev[:]), binary.LittleEndian.Uint64(ev[4:])
	return 0, epoll.Ctl(epf, op, target, int32(a[2]), events, data)
}

func sysEpollWait(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	return epollWait(t, a[0], a[1], int32(a[2]), msTimeout(int32(a[3])))
}

func sysEpollPwait(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if err := waitSigMask(t, a[4], a[5]); err != nil {
		return 0, err
	}
	return epollWait(t, a[0], a[1], int32(a[2]), msTimeout(int32(a[3])))
}

func sysEpollPwait2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	d, err := readTimeout(t, a[3])
	if err != nil {
		return 0, err
	}
	if err := waitSigMask(t, a[4], a[5]); err != nil {
		return 0, err
	}
	return epollWait(t, a[0], a[1], int32(a[2]), d)
}

// epollWait implements epoll_wait(2) on epfd, writing up to maxevents
// events at addr.
func epollWait(t *kernel.Task, epfd, addr uint64, maxevents int32, d time.Duration) (uint64, error) {
	if maxevents <= 0 || maxevents > epMaxEvents {
		return 0, unix.EINVAL
	}
	// Linux checks only that the array lies in user space up front.
	if size := uint64(maxevents) * epollEventSize; addr > mm.MaxUserTop || size > mm.MaxUserTop-addr {
		return 0, unix.EFAULT
	}
	f, err := getNonPathFile(t, epfd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef()
	if !epoll.Is(f) {
		return 0, unix.EINVAL
	}
	out := make([]epoll.Event, min(int(maxevents), epollBatch))
	check := func() int {
		n, _ := epoll.Collect(f, out)
		return n
	}
	arm := func(wake chan<- struct{}) func() {
		w := vfs.NewChanWaiter(wake, unix.POLLIN)
		f.EventRegister(w)
		return func() { f.EventUnregister(w) }
	}
	n, err := waitReady(t, d, check, arm)
	if err != nil || n == 0 {
		return 0, err
	}
	buf := t.Scratch(n * epollEventSize)
	for i, e := range out[:n] {
		binary.LittleEndian.PutUint32(buf[i*epollEventSize:], e.Events)
		binary.LittleEndian.PutUint64(buf[i*epollEventSize+4:], e.Data)
	}
	if err := copyOut(t, addr, buf); err != nil {
		return 0, err
	}
	return uint64(n), nil
}
