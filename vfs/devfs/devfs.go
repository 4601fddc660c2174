// Package devfs builds /dev: a tmpfs holding device nodes whose drivers
// it registers in the VFS (null, zero, full, random, urandom), the tty
// node, and the stdin/stdout/stderr/fd links into /proc/self/fd.
//
// /dev/tty (5:0) opens with ENXIO until the kernel plugs its terminal in
// with VFS.RegisterCharDevice(TTYMajor, TTYMinor, ...); /dev/ptmx (5:2)
// until devpts registers it.
package devfs

import (
	"context"
	"crypto/rand"

	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
)

var _ vfs.Poller = pollRandom{}

// The device numbers of /dev/tty.
const (
	TTYMajor = 5
	TTYMinor = 0
)

type device struct {
	name         string
	major, minor uint32
	impl         vfs.FileImpl
}

var devices = []device{
	{"null", 1, 3, null{}},
	{"zero", 1, 5, zero{}},
	{"full", 1, 7, full{}},
	{"random", 1, 8, pollRandom{}},
	{"urandom", 1, 9, random{}},
	{"tty", TTYMajor, TTYMinor, nil},
	{"ptmx", 5, 2, nil},
}

var links = [][2]string{
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"fd", "/proc/self/fd"},
}

// New registers the device drivers in v and returns the file system to
// mount at /dev.
func New(ctx context.Context, v *vfs.VFS) (*tmpfs.FS, error) {
	fs := tmpfs.New(tmpfs.Options{Mode: 0o755})
	root := fs.Root()
	for _, d := range devices {
		if d.impl != nil {
			impl := d.impl
			v.RegisterCharDevice(d.major, d.minor, func(context.Context, int) (vfs.FileImpl, error) {
				return impl, nil
			})
		}
		opts := &vfs.CreateOptions{Mode: unix.S_IFCHR | 0o666, Rdev: unix.Mkdev(d.major, d.minor)}
		if _, err := root.Create(ctx, d.name, opts); err != nil {
			return nil, err
		}
	}
	for _, l := range links {
		if _, err := root.Create(ctx, l[0], &vfs.CreateOptions{Mode: unix.S_IFLNK | 0o777, Target: l[1]}); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// stateless gives the devices their common behaviour: seeks go nowhere,
// writes are swallowed, nothing to release.
type stateless struct{}

func (stateless) Write(_ context.Context, _ *vfs.File, src []byte, _ int64) (int, error) {
	return len(src), nil
}

func (stateless) Seek(context.Context, int64, int64, int) (int64, error) {
	return 0, nil
}

func (stateless) Release() {}

type null struct{ stateless }

var _ vfs.Sink = null{}

// DropsWrites implements vfs.Sink.
func (null) DropsWrites() {}

func (null) Read(context.Context, *vfs.File, []byte, int64) (int, error) {
	return 0, nil
}

type zero struct{ stateless }

func (zero) Read(_ context.Context, _ *vfs.File, dst []byte, _ int64) (int, error) {
	clear(dst)
	return len(dst), nil
}

type full struct{ zero }

func (full) Write(context.Context, *vfs.File, []byte, int64) (int, error) {
	return 0, unix.ENOSPC
}

type random struct{ stateless }

func (random) Read(_ context.Context, _ *vfs.File, dst []byte, _ int64) (int, error) {
	return rand.Read(dst)
}

// pollRandom is /dev/random, which Linux lets poll and epoll watch: once
// the kernel's generator is seeded, which it always is here, it is
// readable and never changes.
type pollRandom struct{ random }

func (pollRandom) Readiness(mask uint32) uint32 {
	return mask & (unix.POLLIN | unix.EPOLLRDNORM)
}

func (pollRandom) EventRegister(*vfs.Waiter) {}

func (pollRandom) EventUnregister(*vfs.Waiter) {}
