package futex

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/kvmbox/kvmbox/mm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeMemory is guest memory [base, base+4*len(words)) for robust-list
// walks, with a read-only range and a count of the pointers read.
type fakeMemory struct {
	base           uint64
	words          []uint32
	roStart, roEnd uint64
	reads          int
	updates        int
}

// keyOffset makes a fake word's key differ from its address, as a
// guest-physical address does from a virtual one.
const keyOffset = 0x4000_0000

const (
	memBase = 0x1_0000
	tid     = 77
)

func newFakeMemory() *fakeMemory {
	return &fakeMemory{base: memBase, words: make([]uint32, 4096)}
}

func (m *fakeMemory) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&m.words[0])), 4*len(m.words))
}

func (m *fakeMemory) contains(va, n uint64) bool {
	return va >= m.base && va-m.base <= uint64(4*len(m.words))-n
}

func (m *fakeMemory) CopyIn(dst []byte, va uint64) (int, error) {
	m.reads++
	if !m.contains(va, uint64(len(dst))) {
		return 0, unix.EFAULT
	}
	return copy(dst, m.bytes()[va-m.base:]), nil
}

func (m *fakeMemory) Word(va uint64, write bool) (*uint32, uint64, error) {
	if va&3 != 0 {
		return nil, 0, unix.EINVAL
	}
	if !m.contains(va, 4) || write && va >= m.roStart && va < m.roEnd {
		return nil, 0, unix.EFAULT
	}
	return &m.words[(va-m.base)/4], va + keyOffset, nil
}

func (m *fakeMemory) UpdateWord(va uint64, fn func(*uint32)) (uint64, error) {
	m.updates++
	w, key, err := m.Word(va, true)
	if err != nil {
		return 0, err
	}
	fn(w)
	return key, nil
}

func (m *fakeMemory) put64(va, v uint64) {
	binary.LittleEndian.PutUint64(m.bytes()[va-m.base:], v)
}

func (m *fakeMemory) word(va uint64) uint32 { return m.words[(va-m.base)/4] }

func (m *fakeMemory) setWord(va uint64, v uint32) { m.words[(va-m.base)/4] = v }

// robustList lays out a robust_list_head at head whose entries are at
// entries (each pointer as given, PI bit included), the last linking back
// to head, with futex_offset offset and list_op_pending pending.
func (m *fakeMemory) robustList(head uint64, offset int64, pending uint64, entries ...uint64) {
	m.put64(head+8, uint64(offset))
	m.put64(head+16, pending)
	prev := head
	for _, e := range entries {
		m.put64(prev, e)
		prev = e &^ 1
	}
	m.put64(prev, head)
}

// Locks: the list entry is 0x20 bytes after the lock word, as in a glibc
// mutex, so futex_offset is negative.
const (
	head       = memBase
	lockBefore = 0x20
	offset     = -lockBefore
	e1         = memBase + 0x120
	e2         = memBase + 0x220
	e3         = memBase + 0x320
	e4         = memBase + 0x420
	e5         = memBase + 0x520
)

func lockOf(entry uint64) uint64 { return entry - lockBefore }

func keyOf(entry uint64) uint64 { return lockOf(entry) + keyOffset }

func TestRobustListReleasesTheLocksOfTheDeadThread(t *testing.T) {
	m := newFakeMemory()
	tbl := NewTable()
	m.setWord(lockOf(e1), tid|futexWaiters)
	m.setWord(lockOf(e2), tid+1|futexWaiters)
	m.setWord(lockOf(e3), tid)
	m.setWord(lockOf(e4), tid|futexWaiters)
	// e4 is a PI lock: the pointer to it carries the PI bit.
	m.robustList(head, offset, e1, e1, e2, e3, e4|1)
	onE1 := startWaiters(t, tbl, keyOf(e1), BitsetMatchAny, BitsetMatchAny)
	onE2 := startWaiters(t, tbl, keyOf(e2), BitsetMatchAny)
	onE3 := startWaiters(t, tbl, keyOf(e3), BitsetMatchAny)
	onE4 := startWaiters(t, tbl, keyOf(e4), BitsetMatchAny)

	ReleaseRobustList(m, tbl, head, tid)

	require.Equal(t, uint32(futexWaiters|futexOwnerDied), m.word(lockOf(e1)), "the owner is gone, its waiters stay")
	require.Equal(t, []int{0}, woken(t, onE1, 1), "one waiter, once, though e1 is both listed and pending")
	require.Equal(t, 1, tbl.queued(keyOf(e1)))
	require.Equal(t, uint32(tid+1|futexWaiters), m.word(lockOf(e2)), "another thread's lock")
	require.Equal(t, uint32(futexOwnerDied), m.word(lockOf(e3)))
	require.Equal(t, uint32(futexWaiters|futexOwnerDied), m.word(lockOf(e4)))
	requireNoneReturns(t, onE2)
	requireNoneReturns(t, onE3)
	requireNoneReturns(t, onE4)
	require.Equal(t, 1, tbl.queued(keyOf(e3)), "no FUTEX_WAITERS, no wake")
	require.Equal(t, 1, tbl.queued(keyOf(e4)), "a PI lock is not woken here")
	for _, e := range []uint64{e1, e2, e3, e4} {
		tbl.Wake(keyOf(e), 10, BitsetMatchAny)
	}
}

func TestRobustListPendingUnlockWakesAWaiter(t *testing.T) {
	m := newFakeMemory()
	tbl := NewTable()
	// The thread unlocked e1 and died before it woke anyone.
	m.robustList(head, offset, e1)
	done := startWaiters(t, tbl, keyOf(e1), BitsetMatchAny, BitsetMatchAny)
	ReleaseRobustList(m, tbl, head, tid)
	require.Equal(t, []int{0}, woken(t, done, 1))
	require.Zero(t, m.word(lockOf(e1)), "the word is left alone")

	// Not for a PI lock, and not for a lock someone else owns.
	m.robustList(head, offset, e1|1)
	ReleaseRobustList(m, tbl, head, tid)
	m.setWord(lockOf(e1), tid+1)
	m.robustList(head, offset, e1)
	ReleaseRobustList(m, tbl, head, tid)
	requireNoneReturns(t, done)
	require.Equal(t, uint32(tid+1), m.word(lockOf(e1)))
	require.Equal(t, 1, tbl.Wake(keyOf(e1), 1, BitsetMatchAny))
	require.Equal(t, []int{1}, woken(t, done, 1))
}

func TestRobustListWalkIsBounded(t *testing.T) {
	m := newFakeMemory()
	tbl := NewTable()
	m.setWord(lockOf(e1), tid)
	m.setWord(lockOf(e3), tid)
	// e1 and e2 point at each other and never back to head.
	m.robustList(head, offset, e3, e1, e2)
	m.put64(e2, e1)
	ReleaseRobustList(m, tbl, head, tid)
	require.Equal(t, 3+robustListLimit, m.reads)
	require.Equal(t, uint32(futexOwnerDied), m.word(lockOf(e1)))
	require.Equal(t, uint32(futexOwnerDied), m.word(lockOf(e3)), "the pending lock after the limit")
}

func TestRobustListStopsAtAFault(t *testing.T) {
	tbl := NewTable()
	t.Run("next pointer", func(t *testing.T) {
		m := newFakeMemory()
		m.setWord(lockOf(e1), tid)
		m.setWord(lockOf(e3), tid)
		m.robustList(head, offset, e3, e1)
		m.put64(e1, 0xdead_0000)
		ReleaseRobustList(m, tbl, head, tid)
		require.Equal(t, uint32(futexOwnerDied), m.word(lockOf(e1)), "the entry whose next faults is released")
		require.Equal(t, uint32(tid), m.word(lockOf(e3)), "then the walk ends, pending lock and all")
	})
	t.Run("read-only lock", func(t *testing.T) {
		m := newFakeMemory()
		m.roStart, m.roEnd = lockOf(e1), lockOf(e3)
		m.setWord(lockOf(e1), tid+1)
		m.setWord(lockOf(e2), tid)
		m.setWord(lockOf(e3), tid)
		m.setWord(lockOf(e4), tid)
		m.robustList(head, offset, e4, e1, e2, e3)
		ReleaseRobustList(m, tbl, head, tid)
		require.Equal(t, uint32(tid+1), m.word(lockOf(e1)), "read-only but not ours: skipped")
		require.Equal(t, uint32(tid), m.word(lockOf(e2)), "ours but read-only: the walk ends")
		require.Equal(t, uint32(tid), m.word(lockOf(e3)))
		require.Equal(t, uint32(tid), m.word(lockOf(e4)))
	})
	t.Run("misaligned lock", func(t *testing.T) {
		m := newFakeMemory()
		m.setWord(lockOf(e1), tid)
		m.robustList(head, offset+2, e1, e2, e1)
		ReleaseRobustList(m, tbl, head, tid)
		require.Equal(t, uint32(tid), m.word(lockOf(e1)))
	})
	t.Run("head", func(t *testing.T) {
		m := newFakeMemory()
		ReleaseRobustList(m, tbl, 0, tid)
		ReleaseRobustList(m, tbl, 0xdead_0000, tid)
		ReleaseRobustList(m, tbl, memBase+4*4096-16, tid)
		require.Zero(t, m.updates)
	})
	require.True(t, tbl.empty())
}

// TestRobustListInGuestMemory walks a list in a real address space.
func TestRobustListInGuestMemory(t *testing.T) {
	p, err := mm.NewPhysMem(16 << 20)
	require.NoError(t, err)
	defer p.Close()
	as, err := mm.NewAddressSpace(p, mm.Options{UserTop: mm.MaxUserTop, MmapBase: mm.MaxUserTop})
	require.NoError(t, err)
	defer as.Release()
	const base = 0x1000_0000
	_, err = as.Mmap(base, mm.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	require.NoError(t, err)
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], base+0x40)
	binary.LittleEndian.PutUint64(b[8:], uint64(0x100))
	_, err = as.CopyOut(base, b[:])
	require.NoError(t, err)
	binary.LittleEndian.PutUint64(b[:], base)
	_, err = as.CopyOut(base+0x40, b[:8])
	require.NoError(t, err)
	binary.LittleEndian.PutUint32(b[:], tid|futexWaiters)
	_, err = as.CopyOut(base+0x140, b[:4])
	require.NoError(t, err)
	_, key, err := as.Word(base+0x140, false)
	require.NoError(t, err)

	tbl := NewTable()
	done := startWaiters(t, tbl, key, BitsetMatchAny)
	ReleaseRobustList(as, tbl, base, tid)
	require.Equal(t, []int{0}, woken(t, done, 1))
	_, err = as.CopyIn(b[:4], base+0x140)
	require.NoError(t, err)
	require.Equal(t, uint32(futexWaiters|futexOwnerDied), binary.LittleEndian.Uint32(b[:]))
}
