package mm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// wordLocked resolves the 32-bit word at va as Word does.
func (as *AddressSpace) wordLocked(va uint64, write bool) (*uint32, uint64, error) {
	if va&3 != 0 {
		return nil, 0, unix.EINVAL
	}
	e, ok := as.entryLocked(va)
	if !ok || write && e&pteWritable == 0 || e&pteFrame == 0 {
		return nil, 0, unix.EFAULT
	}
	gpa := e&pteFrame | va&pageMask
	// Frames are page-aligned in a page-aligned host mapping, so the
	// pointer is as aligned as va.
	return (*uint32)(unsafe.Pointer(&as.phys.Frame(gpa)[va&pageMask])), gpa, nil
}

// Word returns a pointer to the aligned 32-bit guest word at va in host
// memory, for atomic access, and its guest-physical address. It fails
// with unix.EINVAL if va is not 4-byte aligned and with unix.EFAULT where
// the guest could not read the word (or write it, with write). The pointer
// stays valid host memory while the PhysMem is open, but once Word returns
// another thread may unmap the page and the frame may be reused, or be
// write-protected on the host for an instant while another mapping of it
// goes away. So it is only read through; writes go through UpdateWord.
func (as *AddressSpace) Word(va uint64, write bool) (*uint32, uint64, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.wordLocked(va, write)
}

// UpdateWord calls fn with the writable word at va, which must be aligned,
// while the address space is locked, so that the frame stays mapped and
// writable on the host until fn returns. It returns the word's
// guest-physical address, or Word's errors.
func (as *AddressSpace) UpdateWord(va uint64, fn func(word *uint32)) (uint64, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	word, gpa, err := as.wordLocked(va, true)
	if err != nil {
		return 0, err
	}
	fn(word)
	return gpa, nil
}
