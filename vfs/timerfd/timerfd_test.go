package timerfd_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/timerfd"
)

func read(ctx context.Context, f *vfs.File) (uint64, error) {
	buf := make([]byte, 8)
	if _, err := f.Read(ctx, buf); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(buf), nil
}

func TestCreateChecksClockAndFlags(t *testing.T) {
	_, err := timerfd.New(unix.CLOCK_PROCESS_CPUTIME_ID, 0)
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = timerfd.New(unix.CLOCK_MONOTONIC, 0x10)
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = timerfd.New(unix.CLOCK_BOOTTIME_ALARM, 0)
	require.ErrorIs(t, err, unix.EPERM)
	for _, clock := range []int32{unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME} {
		f, err := timerfd.New(clock, unix.TFD_NONBLOCK)
		require.NoError(t, err)
		require.Equal(t, unix.O_RDWR|unix.O_NONBLOCK, f.StatusFlags())
		f.DecRef()
	}
}

func TestOneShot(t *testing.T) {
	f, err := timerfd.New(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK)
	require.NoError(t, err)
	defer f.DecRef()
	_, err = read(context.Background(), f)
	require.ErrorIs(t, err, unix.EAGAIN)
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	f.EventRegister(w)
	defer f.EventUnregister(w)
	old, err := timerfd.Set(f, timerfd.Spec{Value: time.Millisecond}, false)
	require.NoError(t, err)
	require.Zero(t, old)
	cur, err := timerfd.Get(f)
	require.NoError(t, err)
	require.LessOrEqual(t, cur.Value, time.Millisecond)
	<-ch
	require.Equal(t, uint32(unix.POLLIN), f.Readiness(unix.POLLIN|unix.POLLOUT))
	n, err := read(context.Background(), f)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
	require.Zero(t, f.Readiness(unix.POLLIN))
	cur, err = timerfd.Get(f)
	require.NoError(t, err)
	require.Zero(t, cur)
	_, err = f.Write(context.Background(), make([]byte, 8))
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = f.Read(context.Background(), make([]byte, 4))
	require.ErrorIs(t, err, unix.EINVAL)
}

func TestIntervalCountsMissedExpirations(t *testing.T) {
	f, err := timerfd.New(unix.CLOCK_MONOTONIC, 0)
	require.NoError(t, err)
	defer f.DecRef()
	_, err = timerfd.Set(f, timerfd.Spec{Value: time.Millisecond, Interval: time.Millisecond}, false)
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	n, err := read(context.Background(), f)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, uint64(10))
	cur, err := timerfd.Get(f)
	require.NoError(t, err)
	require.Equal(t, time.Millisecond, cur.Interval)
	require.LessOrEqual(t, cur.Value, time.Millisecond)
	// Disarming resets the count and keeps the interval.
	old, err := timerfd.Set(f, timerfd.Spec{Interval: time.Second}, false)
	require.NoError(t, err)
	require.Equal(t, time.Millisecond, old.Interval)
	cur, err = timerfd.Get(f)
	require.NoError(t, err)
	require.Equal(t, timerfd.Spec{Interval: time.Second}, cur)
	_, err = read(vfs.NoWait(context.Background()), f)
	require.ErrorIs(t, err, vfs.ErrWouldWait)
}

func TestAbsoluteTimeInThePastFiresAtOnce(t *testing.T) {
	f, err := timerfd.New(unix.CLOCK_REALTIME, 0)
	require.NoError(t, err)
	defer f.DecRef()
	_, err = timerfd.Set(f, timerfd.Spec{Value: time.Duration(time.Now().Add(-time.Hour).UnixNano())}, true)
	require.NoError(t, err)
	n, err := read(context.Background(), f)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
}

func TestReadIsInterrupted(t *testing.T) {
	f, err := timerfd.New(unix.CLOCK_MONOTONIC, 0)
	require.NoError(t, err)
	defer f.DecRef()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Millisecond, cancel)
	_, err = read(ctx, f)
	require.ErrorIs(t, err, unix.EINTR)
}

func TestCloseStopsTheTimer(t *testing.T) {
	f, err := timerfd.New(unix.CLOCK_MONOTONIC, 0)
	require.NoError(t, err)
	ch := make(chan struct{}, 1)
	w := vfs.NewChanWaiter(ch, unix.POLLIN)
	f.EventRegister(w)
	_, err = timerfd.Set(f, timerfd.Spec{Value: 5 * time.Millisecond, Interval: time.Millisecond}, false)
	require.NoError(t, err)
	f.DecRef()
	time.Sleep(20 * time.Millisecond)
	require.Empty(t, ch)
	_, err = timerfd.Set(f, timerfd.Spec{Value: time.Millisecond}, false)
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond)
	require.Empty(t, ch, "a released timer does not start again")
}

func TestSetRefusesOtherFiles(t *testing.T) {
	f, err := timerfd.New(unix.CLOCK_MONOTONIC, 0)
	require.NoError(t, err)
	defer f.DecRef()
	other := vfs.NewFile(nil, unix.O_PATH)
	_, err = timerfd.Set(other, timerfd.Spec{}, false)
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = timerfd.Get(other)
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = timerfd.Set(f, timerfd.Spec{Value: -1}, false)
	require.ErrorIs(t, err, unix.EINVAL)
}
