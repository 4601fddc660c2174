package loader

import (
	"bytes"
	"debug/elf"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/mm"
)

// cachedTestFile serves an executable's pages from a page cache.
type cachedTestFile struct {
	io.ReaderAt
	cache *mm.PageCache
	phys  *mm.PhysMem
	size  int64
}

func (f *cachedTestFile) Pages(first, n uint64) ([]uint64, error) {
	return f.cache.Pages(mm.FileID{Ino: 1}, mm.FileVersion{Size: f.size}, first, n, f.ReadAt)
}

func (f *cachedTestFile) Release(frames []uint64) { f.cache.Release(frames) }

func (f *cachedTestFile) PageBytes(frame uint64) []byte { return f.phys.Frame(frame) }

// TestCachedLoadMatchesCopiedLoad loads executables twice into address
// spaces from a page cache and checks that every page reads and is
// protected as when the loader copies the file: segments that share a
// page, bss on a segment's last file page and beyond, a segment that maps
// the same file page elsewhere. The second load reads nothing.
func TestCachedLoadMatchesCopiedLoad(t *testing.T) {
	binaries := map[string][]byte{
		"gcc -static":     buildC(t, "-static"),
		"gcc -static-pie": buildC(t, "-static-pie"),
		"crafted":         craftELF(nil),
		"crafted, a file page twice": craftELF(func(_ *elf.Header64, progs []elf.Prog64) {
			progs[1].Vaddr += 4 * pageSize
			progs[1].Memsz = progs[1].Filesz
		}),
	}
	for name, data := range binaries {
		t.Run(name, func(t *testing.T) {
			want, wantImg, err := load(data, testOptions(7))
			require.NoError(t, err)
			require.NotZero(t, wantImg.CopiedBytes)

			phys, err := mm.NewPhysMem(64 << 20)
			require.NoError(t, err)
			defer phys.Close()
			cache := mm.NewPageCache(phys)
			file := &cachedTestFile{ReaderAt: bytes.NewReader(data), cache: cache, phys: phys, size: int64(len(data))}
			var copied uint64
			for round := range 2 {
				as, err := mm.NewAddressSpace(phys, mm.Options{UserTop: testUserTop, MmapBase: testUserTop})
				require.NoError(t, err)
				img, err := Load(as, file, int64(len(data)), testOptions(7))
				require.NoError(t, err)
				require.Zero(t, img.CopiedBytes)
				img.CopiedBytes = wantImg.CopiedBytes
				require.Equal(t, wantImg, img)
				shared := 0
				for _, v := range want.vmas {
					for va := v.start; va < v.end; va += pageSize {
						gpa, prot, ok := as.Translate(va)
						require.True(t, ok, "%#x", va)
						require.Equal(t, v.prot, prot, "%#x", va)
						page, _ := want.read(va, pageSize)
						require.Equal(t, page, phys.Frame(gpa), "page %#x", va)
						if phys.Shared(gpa) {
							require.Zero(t, prot&unix.PROT_WRITE, "a writable page is shared at %#x", va)
							shared++
						}
					}
				}
				require.Equal(t, len(want.vmas), len(as.Mappings()))
				if !strings.HasPrefix(name, "crafted") {
					require.NotZero(t, shared, "read-only pages map the cached frames")
				}
				if round == 1 {
					require.Equal(t, copied, cache.Stats().CopiedBytes, "the second load reads nothing")
				}
				copied = cache.Stats().CopiedBytes
				as.Release()
			}
		})
	}
}

// TestCachedLoadOfAFileThatShrank loads an executable whose page cache
// sees a shorter file than the loader was told: the missing bytes read as
// zeros, not as whatever frame 0 holds.
func TestCachedLoadOfAFileThatShrank(t *testing.T) {
	data := buildC(t, "-static")
	exe, err := elf.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	var last *elf.Prog
	for _, p := range exe.Progs {
		if p.Type == elf.PT_LOAD {
			last = p
		}
	}
	require.NotZero(t, last.Vaddr%pageSize, "the data segment starts inside a page")

	phys, err := mm.NewPhysMem(64 << 20)
	require.NoError(t, err)
	defer phys.Close()
	copy(phys.Frame(0), bytes.Repeat([]byte{0xcc}, pageSize))
	cache := mm.NewPageCache(phys)
	shrunk := int64(last.Off &^ (pageSize - 1))
	file := &cachedTestFile{ReaderAt: bytes.NewReader(data[:shrunk]), cache: cache, phys: phys, size: shrunk}
	as, err := mm.NewAddressSpace(phys, mm.Options{UserTop: testUserTop, MmapBase: testUserTop})
	require.NoError(t, err)
	defer as.Release()
	_, err = Load(as, file, int64(len(data)), testOptions(7))
	require.NoError(t, err)
	got := make([]byte, 64)
	_, err = as.CopyIn(got, last.Vaddr)
	require.NoError(t, err)
	require.Equal(t, make([]byte, 64), got)
}
