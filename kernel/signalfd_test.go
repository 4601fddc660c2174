package kernel

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSignalFDReadinessAndRead(t *testing.T) {
	tg, task := newSignalTestProcess()
	usr1, usr2 := int(unix.SIGUSR1), int(unix.SIGUSR2)
	task.sigmask = SigBit(usr1) | SigBit(usr2)
	f := NewSignalFD(task, SigBit(usr1)|Unblockable, unix.O_NONBLOCK)
	defer f.DecRef()
	s := f.Impl().(*SignalFD)
	require.Equal(t, uint64(SigBit(usr1)), s.mask.Load(), "SIGKILL and SIGSTOP are never in the mask")
	require.Equal(t, "[signalfd]", s.AnonName())
	require.Zero(t, s.Readiness(unix.POLLIN|unix.POLLOUT))
	buf := make([]byte, 2*SignalFDInfoSize)
	_, err := f.Read(task.Context(), buf)
	require.ErrorIs(t, err, unix.EAGAIN)
	_, err = f.Read(task.Context(), buf[:SignalFDInfoSize-1])
	require.ErrorIs(t, err, unix.EINVAL)

	changed := make(chan struct{}, 4)
	w := vfs.NewChanWaiter(changed, unix.POLLIN)
	f.EventRegister(w)
	defer f.EventUnregister(w)
	info := NewSigInfo(usr2, SiUser)
	require.NoError(t, tg.SendSignal(info))
	<-changed // any signal may change readiness
	require.Zero(t, s.Readiness(unix.POLLIN), "SIGUSR2 is not in the mask")
	s.SetMask(SigBit(usr1) | SigBit(usr2))
	<-changed
	require.Equal(t, uint32(unix.POLLIN), s.Readiness(unix.POLLIN|unix.POLLOUT))

	info = NewSigInfo(usr1, SiUser)
	info.SetSender(7, 1000)
	require.NoError(t, task.SendSignal(info))
	n, err := f.Read(task.Context(), buf)
	require.NoError(t, err)
	require.Equal(t, 2*SignalFDInfoSize, n, "both, the thread's own first")
	require.Equal(t, uint32(usr1), binary.LittleEndian.Uint32(buf[0:]))
	require.Equal(t, uint32(7), binary.LittleEndian.Uint32(buf[12:]), "ssi_pid")
	require.Equal(t, uint32(1000), binary.LittleEndian.Uint32(buf[16:]), "ssi_uid")
	require.Equal(t, uint32(usr2), binary.LittleEndian.Uint32(buf[SignalFDInfoSize:]))
	require.Zero(t, s.Readiness(unix.POLLIN))

	// A blocking read waits for a blocked signal.
	require.NoError(t, f.SetStatusFlags(0))
	require.False(t, task.hasWork())
	done := make(chan int)
	go func() {
		n, _ := f.Read(task.Context(), buf)
		done <- n
	}()
	require.Eventually(t, func() bool {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		return task.waitingFor != 0
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, tg.SendSignal(NewSigInfo(usr2, SiUser)))
	require.Equal(t, SignalFDInfoSize, <-done)
	require.False(t, tg.Exiting())
}

func TestSignalFDInfoLayouts(t *testing.T) {
	le := binary.LittleEndian
	timer := NewSigInfo(int(unix.SIGALRM), SiTimer)
	timer.SetTimer(3, 4, 0x1_0000_0005)
	var out [SignalFDInfoSize]byte
	putSignalFDInfo(out[:], &timer)
	require.Equal(t, uint32(3), le.Uint32(out[24:]), "ssi_tid")
	require.Equal(t, uint32(4), le.Uint32(out[32:]), "ssi_overrun")
	require.Equal(t, uint32(5), le.Uint32(out[44:]), "ssi_int")
	require.Equal(t, uint64(0x1_0000_0005), le.Uint64(out[48:]), "ssi_ptr")
	require.Zero(t, le.Uint32(out[12:]), "no ssi_pid for a timer")

	segv := NewSigInfo(int(unix.SIGSEGV), segvMapErr)
	segv.SetAddr(0xdead000)
	putSignalFDInfo(out[:], &segv)
	require.Equal(t, uint64(0xdead000), le.Uint64(out[72:]), "ssi_addr")

	chld := NewSigInfo(int(unix.SIGCHLD), cldExited)
	chld.setChild(9, 3)
	putSignalFDInfo(out[:], &chld)
	require.Equal(t, uint32(9), le.Uint32(out[12:]))
	require.Equal(t, uint32(3), le.Uint32(out[40:]), "ssi_status")

	require.Equal(t, silPoll, siginfoLayout(int(unix.SIGIO), 1))
	require.Equal(t, silKill, siginfoLayout(int(unix.SIGUSR1), 7))
	require.Equal(t, silFaultMCE, siginfoLayout(int(unix.SIGBUS), 4))
	require.Equal(t, silRT, siginfoLayout(40, SiQueue))
	require.Equal(t, silSys, siginfoLayout(int(unix.SIGSYS), 1))
}
