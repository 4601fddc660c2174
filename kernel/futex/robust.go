package futex

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/kvmbox/kvmbox/mm"
)

// The robust-futex ABI (linux/futex.h), which golang.org/x/sys/unix lacks.
const (
	// RobustListHeadSize is sizeof(struct robust_list_head): next,
	// futex_offset and list_op_pending, 8 bytes each.
	RobustListHeadSize = 24
	// robustListLimit is ROBUST_LIST_LIMIT: the walk stops there, so a
	// circular list cannot hold the exiting thread.
	robustListLimit = 2048

	futexWaiters   = 0x8000_0000
	futexOwnerDied = 0x4000_0000
	futexTIDMask   = 0x3fff_ffff
)

// RobustMemory is the guest memory a robust list lives in, as
// *mm.AddressSpace provides it.
type RobustMemory interface {
	// CopyIn reads guest memory at va into dst; it returns how much it
	// read and an error short of len(dst).
	CopyIn(dst []byte, va uint64) (int, error)
	// Word returns the aligned 32-bit word at va, for atomic reads, and
	// its futex key.
	Word(va uint64, write bool) (*uint32, uint64, error)
	// UpdateWord calls fn with the writable word at va, held in place
	// while fn runs, and returns its futex key.
	UpdateWord(va uint64, fn func(word *uint32)) (uint64, error)
}

var _ RobustMemory = (*mm.AddressSpace)(nil)

// ReleaseRobustList releases the robust futexes that thread tid still
// holds as it exits, as Linux's exit_robust_list does: for each lock on
// the list at head, and for its list_op_pending lock, whose word (at the
// entry's address plus futex_offset) names tid as its owner, it sets
// FUTEX_OWNER_DIED in place of the owner, keeps FUTEX_WAITERS, and wakes
// one waiter if there were any, so that one of them can take the lock over.
// The low bit of each pointer marks a PI futex, which has no waiters here
// to wake. The walk stops back at head, at the first address that faults,
// or after 2048 entries.
func ReleaseRobustList(mem RobustMemory, tbl *Table, head uint64, tid int32) {
	if head == 0 {
		return
	}
	entry, pi, err := readEntry(mem, head)
	if err != nil {
		return
	}
	offset, err := readUint64(mem, head+8)
	if err != nil {
		return
	}
	pending, pendingPI, err := readEntry(mem, head+16)
	if err != nil {
		return
	}
	for limit := robustListLimit; entry != head; {
		// Read the next entry first: releasing the lock lets another
		// thread take it and reuse the entry.
		next, nextPI, nextErr := readEntry(mem, entry)
		// The pending lock may already be on the list; it is released once,
		// below.
		if entry != pending && !ownerDied(mem, tbl, entry+offset, uint32(tid), pi, false) {
			return
		}
		if nextErr != nil {
			return
		}
		entry, pi = next, nextPI
		limit--
		if limit == 0 {
			break
		}
	}
	if pending != 0 {
		ownerDied(mem, tbl, pending+offset, uint32(tid), pendingPI, true)
	}
}

// readEntry reads a robust-list pointer and splits off its PI bit.
func readEntry(mem RobustMemory, va uint64) (uint64, bool, error) {
	v, err := readUint64(mem, va)
	return v &^ 1, v&1 != 0, err
}

func readUint64(mem RobustMemory, va uint64) (uint64, error) {
	var b [8]byte
	if _, err := mem.CopyIn(b[:], va); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// ownerDied is Linux's handle_futex_death for the word at uaddr. It
// reports false where the walk must stop: the word is misaligned, or
// cannot be read, or must be written and cannot be.
func ownerDied(mem RobustMemory, tbl *Table, uaddr uint64, tid uint32, pi, pending bool) bool {
	for {
		word, key, err := mem.Word(uaddr, false)
		if err != nil {
			return false
		}
		old := atomic.LoadUint32(word)
		owner := old & futexTIDMask
		if pending && !pi && owner == 0 {
			// The thread died between unlocking a lock and waking its
			// waiters, or a woken waiter died before taking it: wake the
			// next one without touching the word.
			tbl.Wake(key, 1, BitsetMatchAny)
			return true
		}
		if owner != tid {
			return true
		}
		swapped := false
		key, err = mem.UpdateWord(uaddr, func(w *uint32) {
			swapped = atomic.CompareAndSwapUint32(w, old, old&futexWaiters|futexOwnerDied)
		})
		if err != nil {
			return false
		}
		if !swapped {
			// The word changed under us: judge it again.
			continue
		}
		if !pi && old&futexWaiters != 0 {
			tbl.Wake(key, 1, BitsetMatchAny)
		}
		return true
	}
}
