package mm

import "golang.org/x/sys/unix"

// noLimit is RLIM_INFINITY: no bound on the address space or its data.
const noLimit = ^uint64(0)

// SetVMLimits sets how many bytes of mappings (RLIMIT_AS) and of data
// mappings (RLIMIT_DATA) the address space may grow to; unix.RLIM_INFINITY
// for no bound. Like Linux, lowering a limit below what is mapped unmaps
// nothing: only growth fails.
func (as *AddressSpace) SetVMLimits(total, data uint64) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.limitTotal, as.limitData = total, data
}

// isData reports whether an area counts against RLIMIT_DATA: private,
// writable and not a stack, as Linux's is_data_mapping says.
func isData(prot, flags int, name string) bool {
	return prot&unix.PROT_WRITE != 0 && flags&unix.MAP_SHARED == 0 && flags&unix.MAP_GROWSDOWN == 0 && name != "[stack]"
}

// usageLocked returns the bytes of the areas in [start, end), and those of
// them that are data.
func (as *AddressSpace) usageLocked(start, end uint64) (total, data uint64) {
	for _, v := range as.vmas.overlapping(start, end) {
		n := min(v.end, end) - max(v.start, start)
		total += n
		if isData(v.prot, v.flags, v.name) {
			data += n
		}
	}
	return total, data
}

// limited reports whether a limit is set, so that growth must be checked.
func (as *AddressSpace) limited() bool {
	return as.limitTotal != noLimit || as.limitData != noLimit
}

// fitsLocked reports whether n more bytes, data ones if data, stay within
// both limits, as Linux's may_expand_vm does.
func (as *AddressSpace) fitsLocked(n uint64, data bool) bool {
	if !as.limited() {
		return true
	}
	total, d := as.usageLocked(0, as.top)
	return total+n <= as.limitTotal && (!data || d+n <= as.limitData)
}

// expandLocked fails with ENOMEM where n more bytes would pass a limit.
func (as *AddressSpace) expandLocked(n uint64, data bool) error {
	if !as.fitsLocked(n, data) {
		return unix.ENOMEM
	}
	return nil
}

// MayMap fails with ENOMEM where mmap(addr, length, prot, flags) would
// pass RLIMIT_AS or RLIMIT_DATA. The pages a MAP_FIXED mapping replaces
// are not counted twice, as on Linux. Callers check before mapping: the
// mapping they then make may be writable for a while to be filled (a
// private file mapping), which must not count as data.
func (as *AddressSpace) MayMap(addr, length uint64, prot, flags int) error {
	length = pageAlign(length)
	as.mu.Lock()
	defer as.mu.Unlock()
	if !as.limited() {
		return nil
	}
	if flags&(unix.MAP_FIXED|unix.MAP_FIXED_NOREPLACE) != 0 && addr&pageMask == 0 && addr+length > addr {
		replaced, _ := as.usageLocked(addr, addr+length)
		length -= replaced
	}
	return as.expandLocked(length, isData(prot, flags, ""))
}

// protectFitsLocked applies mprotect's rule: making areas writable fails
// where they become data that the data limit has no room for, unless the
// area could not have grown as it was either.
func (as *AddressSpace) protectFitsLocked(areas []vma, start, end uint64, prot int) error {
	if prot&unix.PROT_WRITE == 0 || !as.limited() {
		return nil
	}
	for _, v := range areas {
		n := min(v.end, end) - max(v.start, start)
		if !as.fitsLocked(n, isData(prot, v.flags, v.name)) && as.fitsLocked(n, isData(v.prot, v.flags, v.name)) {
			return unix.ENOMEM
		}
	}
	return nil
}
