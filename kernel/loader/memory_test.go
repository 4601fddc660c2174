package loader

import (
	"cmp"
	"encoding/binary"
	"slices"

	"golang.org/x/sys/unix"
)

// fakeVMA is one mapping of fakeMemory.
type fakeVMA struct {
	start, end uint64
	prot       int
}

// fakeMemory is an in-memory Memory: VMAs with protections, pages
// allocated on first write, PROT_WRITE enforced on CopyOut.
type fakeMemory struct {
	top   uint64
	vmas  []fakeVMA // sorted, disjoint
	pages map[uint64][]byte
	names map[uint64]string
	brk   uint64
}

func newFakeMemory(top uint64) *fakeMemory {
	return &fakeMemory{top: top, pages: map[uint64][]byte{}, names: map[uint64]string{}}
}

func (m *fakeMemory) Mmap(addr, length uint64, prot, flags int) (uint64, error) {
	end := addr + length
	if flags != unix.MAP_FIXED|unix.MAP_PRIVATE|unix.MAP_ANONYMOUS ||
		addr%pageSize != 0 || length == 0 || length%pageSize != 0 || end < addr || end > m.top {
		return 0, unix.EINVAL
	}
	m.vmas = m.split(addr, end, func(fakeVMA) []fakeVMA { return nil })
	m.vmas = append(m.vmas, fakeVMA{start: addr, end: end, prot: prot})
	slices.SortFunc(m.vmas, func(a, b fakeVMA) int { return cmp.Compare(a.start, b.start) })
	for page := range m.pages {
		if addr <= page && page < end {
			delete(m.pages, page)
		}
	}
	return addr, nil
}

func (m *fakeMemory) Mprotect(addr, length uint64, prot int) error {
	end := addr + length
	if addr%pageSize != 0 || length%pageSize != 0 || end < addr {
		return unix.EINVAL
	}
	if !m.mapped(addr, end) {
		return unix.ENOMEM
	}
	m.vmas = m.split(addr, end, func(v fakeVMA) []fakeVMA {
		v.prot = prot
		return []fakeVMA{v}
	})
	return nil
}

// split cuts the VMAs at start and end and replaces each piece inside
// [start, end) with what inside returns.
func (m *fakeMemory) split(start, end uint64, inside func(fakeVMA) []fakeVMA) []fakeVMA {
	var out []fakeVMA
	for _, v := range m.vmas {
		if v.end <= start || v.start >= end {
			out = append(out, v)
			continue
		}
		if v.start < start {
			out = append(out, fakeVMA{start: v.start, end: start, prot: v.prot})
		}
		out = append(out, inside(fakeVMA{start: max(v.start, start), end: min(v.end, end), prot: v.prot})...)
		if v.end > end {
			out = append(out, fakeVMA{start: end, end: v.end, prot: v.prot})
		}
	}
	return out
}

func (m *fakeMemory) CopyOut(va uint64, src []byte) (int, error) {
	for done := 0; done < len(src); {
		addr := va + uint64(done)
		if v := m.vma(addr); v == nil || v.prot&unix.PROT_WRITE == 0 {
			return done, unix.EFAULT
		}
		page := addr &^ (pageSize - 1)
		if m.pages[page] == nil {
			m.pages[page] = make([]byte, pageSize)
		}
		done += copy(m.pages[page][addr-page:], src[done:])
	}
	return len(src), nil
}

func (m *fakeMemory) SetBrk(start uint64) { m.brk = start }

func (m *fakeMemory) SetName(start uint64, name string) { m.names[start] = name }

func (m *fakeMemory) vma(addr uint64) *fakeVMA {
	for i := range m.vmas {
		if m.vmas[i].start <= addr && addr < m.vmas[i].end {
			return &m.vmas[i]
		}
	}
	return nil
}

func (m *fakeMemory) mapped(start, end uint64) bool {
	for addr := start; addr < end; {
		v := m.vma(addr)
		if v == nil {
			return false
		}
		addr = v.end
	}
	return true
}

// prot returns the protection at addr, or -1 where nothing is mapped.
func (m *fakeMemory) prot(addr uint64) int {
	if v := m.vma(addr); v != nil {
		return v.prot
	}
	return -1
}

// read returns n bytes at addr, which must be mapped; ok is false otherwise.
func (m *fakeMemory) read(addr, n uint64) ([]byte, bool) {
	if !m.mapped(addr, addr+n) {
		return nil, false
	}
	out := make([]byte, n)
	for done := uint64(0); done < n; {
		a := addr + done
		page := a &^ (pageSize - 1)
		chunk := min(n-done, page+pageSize-a)
		if data := m.pages[page]; data != nil {
			copy(out[done:done+chunk], data[a-page:])
		}
		done += chunk
	}
	return out, true
}

func (m *fakeMemory) word(addr uint64) (uint64, bool) {
	b, ok := m.read(addr, 8)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b), true
}

// cstring reads a NUL-terminated string of at most 1 MiB at addr.
func (m *fakeMemory) cstring(addr uint64) (string, bool) {
	var out []byte
	for len(out) < 1<<20 {
		b, ok := m.read(addr+uint64(len(out)), 1)
		if !ok {
			return "", false
		}
		if b[0] == 0 {
			return string(out), true
		}
		out = append(out, b[0])
	}
	return "", false
}

// stackVMA returns the VMA named "[stack]".
func (m *fakeMemory) stackVMA() (fakeVMA, bool) {
	for _, v := range m.vmas {
		if m.names[v.start] == "[stack]" {
			return v, true
		}
	}
	return fakeVMA{}, false
}
