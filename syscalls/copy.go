package syscalls

import (
	"encoding/binary"
	"unsafe"

	"github.com/kvmbox/kvmbox/kernel"
	"golang.org/x/sys/unix"
)

// copyIn reads exactly len(dst) bytes of guest memory at addr.
func copyIn(t *kernel.Task, addr uint64, dst []byte) error {
	if n, err := t.ThreadGroup().MM().CopyIn(dst, addr); err != nil || n != len(dst) {
		return unix.EFAULT
	}
	return nil
}

// copyOut writes src to guest memory at addr.
func copyOut(t *kernel.Task, addr uint64, src []byte) error {
	if n, err := t.ThreadGroup().MM().CopyOut(addr, src); err != nil || n != len(src) {
		return unix.EFAULT
	}
	return nil
}

// bytesOf views a plain-data struct as bytes, for copying to and from the
// guest in the Linux x86-64 layout that golang.org/x/sys/unix defines.
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func copyOutStruct[T any](t *kernel.Task, addr uint64, v *T) error {
	return copyOut(t, addr, bytesOf(v))
}

func copyInStruct[T any](t *kernel.Task, addr uint64, v *T) error {
	return copyIn(t, addr, bytesOf(v))
}

func copyOutUint64(t *kernel.Task, addr, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return copyOut(t, addr, b[:])
}

// sliceBytes views a non-empty slice of plain-data structs as bytes.
func sliceBytes[T any](v []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}
