package mm

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestWordIsTheGuestWord(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, 2*PageSize, rw, fixed)
	va := uint64(area + PageSize + 12)
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], 0xdeadbeef)
	_, err := as.CopyOut(va, b[:])
	require.NoError(t, err)

	word, gpa, err := as.Word(va, false)
	require.NoError(t, err)
	require.Equal(t, uint32(0xdeadbeef), atomic.LoadUint32(word))
	want, _, ok := as.Translate(va)
	require.True(t, ok)
	require.Equal(t, want, gpa)

	atomic.StoreUint32(word, 7)
	_, err = as.CopyIn(b[:], va)
	require.NoError(t, err)
	require.Equal(t, uint32(7), binary.LittleEndian.Uint32(b[:]))

	got, err := as.UpdateWord(va, func(w *uint32) { atomic.AddUint32(w, 5) })
	require.NoError(t, err)
	require.Equal(t, gpa, got)
	require.Equal(t, uint32(12), atomic.LoadUint32(word))
}

func TestWordChecksAccess(t *testing.T) {
	as, _ := newTestSpace(t)
	mustMmap(t, as, area, PageSize, rw, fixed)
	mustMmap(t, as, area+PageSize, PageSize, unix.PROT_READ, fixed)
	mustMmap(t, as, area+2*PageSize, PageSize, unix.PROT_NONE, fixed)

	_, _, err := as.Word(area+PageSize, false)
	require.NoError(t, err, "a read-only word can be read")
	_, _, err = as.Word(area+PageSize, true)
	require.ErrorIs(t, err, unix.EFAULT)
	_, err = as.UpdateWord(area+PageSize, func(*uint32) { t.Fatal("fn ran on a read-only page") })
	require.ErrorIs(t, err, unix.EFAULT)

	for _, va := range []uint64{area + 2*PageSize, area + 3*PageSize, 0, MaxUserTop, MaxUserTop - 4, 1 << 63, 1<<64 - 4} {
		_, _, err = as.Word(va, false)
		require.ErrorIs(t, err, unix.EFAULT, "%#x", va)
		_, err = as.UpdateWord(va, func(*uint32) {})
		require.ErrorIs(t, err, unix.EFAULT, "%#x", va)
	}
	for _, va := range []uint64{area + 1, area + 2, area + PageSize - 1, area + 3*PageSize + 2} {
		_, _, err = as.Word(va, false)
		require.ErrorIs(t, err, unix.EINVAL, "%#x: alignment is checked first", va)
		_, err = as.UpdateWord(va, func(*uint32) {})
		require.ErrorIs(t, err, unix.EINVAL, "%#x", va)
	}
}

// TestWordOfASharedFrameIsTheSameEverywhere checks what futex keys rely
// on: two address spaces that map one frame see the same guest-physical
// address and the same word.
func TestWordOfASharedFrameIsTheSameEverywhere(t *testing.T) {
	p := newPhys(t, 16<<20)
	frame, err := p.AllocFrame()
	require.NoError(t, err)
	defer p.DecRef(frame)
	a, b := newSpace(t, p, 0), newSpace(t, p, 0)
	defer a.Release()
	defer b.Release()
	require.NoError(t, a.MapFrames(area, []uint64{frame}, rw, 0, ""))
	require.NoError(t, b.MapFrames(area+16*PageSize, []uint64{frame}, rw, 0, ""))

	wa, ga, err := a.Word(area+8, true)
	require.NoError(t, err)
	wb, gb, err := b.Word(area+16*PageSize+8, false)
	require.NoError(t, err)
	require.Equal(t, frame+8, ga)
	require.Equal(t, ga, gb)
	atomic.StoreUint32(wa, 42)
	require.Equal(t, uint32(42), atomic.LoadUint32(wb))
}
