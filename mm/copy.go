package mm

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// hostPageLocked returns the host bytes behind va up to the end of its page,
// if the guest may read there (and write, if write is set). The kernel checks
// what the guest itself could do, as copy_to_user and copy_from_user do.
func (as *AddressSpace) hostPageLocked(va uint64, write bool) ([]byte, bool) {
	e, ok := as.entryLocked(va)
	if !ok || write && e&pteWritable == 0 {
		return nil, false
	}
	return as.phys.Frame(e & pteFrame)[va&pageMask:], true
}

// CopyIn copies guest memory at va into dst. On a page the guest cannot
// read it returns how much it copied and unix.EFAULT.
func (as *AddressSpace) CopyIn(dst []byte, va uint64) (int, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	done := 0
	for done < len(dst) {
		src, ok := as.hostPageLocked(va+uint64(done), false)
		if !ok {
			return done, unix.EFAULT
		}
		done += copy(dst[done:], src)
	}
	return done, nil
}

// CopyOut copies src into guest memory at va. On a page the guest cannot
// write it returns how much it copied and unix.EFAULT.
func (as *AddressSpace) CopyOut(va uint64, src []byte) (int, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	done := 0
	for done < len(src) {
		dst, ok := as.hostPageLocked(va+uint64(done), true)
		if !ok {
			return done, unix.EFAULT
		}
		done += copy(dst, src[done:])
	}
	return done, nil
}

// ZeroOut writes n zero bytes to guest memory at va, or fails with
// unix.EFAULT at the first page the guest cannot write.
func (as *AddressSpace) ZeroOut(va, n uint64) error {
	as.mu.Lock()
	defer as.mu.Unlock()
	for n > 0 {
		dst, ok := as.hostPageLocked(va, true)
		if !ok {
			return unix.EFAULT
		}
		dst = dst[:min(uint64(len(dst)), n)]
		clear(dst)
		va += uint64(len(dst))
		n -= uint64(len(dst))
	}
	return nil
}

// ReadString reads a NUL-terminated string at va. It fails with
// unix.ENAMETOOLONG if the first maxLen bytes hold no NUL, and with unix.EFAULT
// if it meets a page the guest cannot read first.
func (as *AddressSpace) ReadString(va uint64, maxLen int) (string, error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	var s []byte
	for len(s) < maxLen {
		src, ok := as.hostPageLocked(va+uint64(len(s)), false)
		if !ok {
			return "", unix.EFAULT
		}
		src = src[:min(len(src), maxLen-len(s))]
		if i := bytes.IndexByte(src, 0); i >= 0 {
			return string(append(s, src[:i]...)), nil
		}
		s = append(s, src...)
	}
	return "", unix.ENAMETOOLONG
}
