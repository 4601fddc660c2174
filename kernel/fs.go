package kernel

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/kvmbox/kvmbox/netstack"
	"github.com/kvmbox/kvmbox/vfs"
	"github.com/kvmbox/kvmbox/vfs/devfs"
	"github.com/kvmbox/kvmbox/vfs/devpts"
	"github.com/kvmbox/kvmbox/vfs/hostfs"
	"github.com/kvmbox/kvmbox/vfs/overlay"
	"github.com/kvmbox/kvmbox/vfs/procfs"
	"github.com/kvmbox/kvmbox/vfs/tmpfs"
	"golang.org/x/sys/unix"
)

// Mount is a file system mounted at Target inside the sandbox.
type Mount struct {
	Target   string
	FS       vfs.FileSystem
	ReadOnly bool
}

// Symlink is a symbolic link at Path, whose contents are Target.
type Symlink struct {
	Path   string
	Target string
}

// fsState is a process's view of the file system: root, working directory,
// umask and credentials.
type fsState struct {
	mu    sync.Mutex
	root  vfs.VirtualDentry
	cwd   vfs.VirtualDentry
	umask uint32
	creds *Creds
}

// buildVFS composes the sandbox's mount table: the root file system (an
// empty tmpfs when none is given), /proc, /dev, /dev/shm, /tmp, the configured
// symbolic links, then the configured mounts in order. Mount points are
// created as needed.
func (k *Kernel) buildVFS() error {
	cfg := &k.cfg
	ctx := context.Background()
	root := cfg.Root
	if root == nil {
		root = tmpfs.New(tmpfs.Options{Mode: 0o755})
	}
	v, err := vfs.New(ctx, root)
	if err != nil {
		root.Release()
		releaseMounts(cfg.Mounts)
		return err
	}
	fctx := &vfs.Context{Context: ctx, Creds: vfs.RootCredentials(), Root: v.Root(), Cwd: v.Root(), Umask: 0o022}
	dev, err := devfs.New(ctx, v)
	if err != nil {
		v.Release()
		releaseMounts(cfg.Mounts)
		return err
	}
	v.RegisterCharDevice(devfs.TTYMajor, devfs.TTYMinor, k.openTTY)
	pts := devpts.New(v, ptySessions{k})
	standard := []Mount{
		{Target: "/proc", FS: procfs.New(k.ProcSource())},
		{Target: "/dev", FS: dev},
		// POSIX shared memory and semaphores (shm_open, sem_open, which
		// Python's multiprocessing locks use) live in /dev/shm.
		{Target: "/dev/shm", FS: tmpfs.New(tmpfs.Options{})},
		{Target: "/dev/pts", FS: pts},
		{Target: "/tmp", FS: tmpfs.New(tmpfs.Options{})},
	}
	for i, m := range standard {
		if err := mountAt(fctx, v, m); err != nil {
			v.Release()
			releaseMounts(standard[i:])
			releaseMounts(cfg.Mounts)
			return fmt.Errorf("kernel: mounting %s: %w", m.Target, err)
		}
	}
	if err := makeSymlinks(fctx, v, cfg.Symlinks); err != nil {
		v.Release()
		releaseMounts(cfg.Mounts)
		return err
	}
	for i, m := range cfg.Mounts {
		if err := mountAt(fctx, v, m); err != nil {
			v.Release()
			releaseMounts(cfg.Mounts[i:])
			return fmt.Errorf("kernel: mounting %s: %w", m.Target, err)
		}
	}
	if cfg.ReadOnlyRoot {
		if err := v.Remount(fctx, nil, "/", vfs.MountReadOnly); err != nil {
			v.Release()
			return fmt.Errorf("kernel: making the root read-only: %w", err)
		}
	}
	k.vfs = v
	return nil
}

// releaseMounts frees file systems that never got mounted.
func releaseMounts(ms []Mount) {
	for _, m := range ms {
		m.FS.Release()
	}
}

// makeSymlinks creates links and their parent directories; a link whose
// path already exists (in a root file system that has it) is left alone.
func makeSymlinks(ctx *vfs.Context, v *vfs.VFS, links []Symlink) error {
	for _, l := range links {
		target := path.Clean("/" + l.Path)
		if err := makeParents(ctx, v, target); err != nil {
			return fmt.Errorf("kernel: symlink %s: %w", target, err)
		}
		if err := v.SymlinkAt(ctx, l.Target, nil, target); err != nil && err != unix.EEXIST {
			return fmt.Errorf("kernel: symlink %s: %w", target, err)
		}
	}
	return nil
}

// makeParents creates the directories above the absolute, clean path p.
func makeParents(ctx *vfs.Context, v *vfs.VFS, p string) error {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i := range parts[:len(parts)-1] {
		if err := v.MkdirAt(ctx, nil, "/"+strings.Join(parts[:i+1], "/"), 0o755); err != nil && err != unix.EEXIST {
			return err
		}
	}
	return nil
}

// mountAt mounts m, creating its mount point (and parents) as directories,
// or as an empty file when m's root is not a directory.
func mountAt(ctx *vfs.Context, v *vfs.VFS, m Mount) error {
	target := path.Clean("/" + m.Target)
	isDir := true
	if st, err := m.FS.Root().Stat(ctx); err == nil {
		isDir = st.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	if !isDir {
		var err error
		if target, err = followLinks(ctx, v, target); err != nil {
			return err
		}
	}
	parts := strings.Split(strings.TrimPrefix(target, "/"), "/")
	for i := range parts {
		p := "/" + strings.Join(parts[:i+1], "/")
		if i < len(parts)-1 || isDir {
			if err := v.MkdirAt(ctx, nil, p, 0o755); err != nil && err != unix.EEXIST {
				return err
			}
			continue
		}
		f, err := v.OpenAt(ctx, nil, p, unix.O_CREAT|unix.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		f.DecRef()
	}
	flags := uint32(0)
	if m.ReadOnly {
		flags = vfs.MountReadOnly
	}
	return v.Mount(ctx, nil, target, m.FS, flags)
}

// followLinks returns where the absolute, clean path p leads when its
// last component is a symbolic link, as mount(2) follows it, even to a
// path that does not exist yet: a file mounted over /etc/resolv.conf,
// often a link into /run, lands where the link leads.
func followLinks(ctx *vfs.Context, v *vfs.VFS, p string) (string, error) {
	for range 40 {
		link, err := v.ReadlinkAt(ctx, nil, p)
		if err != nil {
			// Not a link, or nothing there yet.
			return p, nil
		}
		if !path.IsAbs(link) {
			link = path.Join(path.Dir(p), link)
		}
		p = path.Clean(link)
	}
	return "", unix.ELOOP
}

// Net is the sandbox's network: its sockets and their names.
func (k *Kernel) Net() *netstack.Stack { return k.net }

// VFS is the sandbox's virtual file system.
func (k *Kernel) VFS() *vfs.VFS { return k.vfs }

// FSContext is what a path operation of t needs: its cancellation, its
// credentials, root, working directory and umask.
func (t *Task) FSContext() *vfs.Context {
	fs := &t.tg.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return &vfs.Context{Context: t.Context(), Creds: fs.creds.fs, Root: fs.root, Cwd: fs.cwd, Umask: fs.umask}
}

// fsType names a file system for /proc/mounts.
func fsType(fs vfs.FileSystem) string {
	switch fs.(type) {
	case *procfs.FS:
		return "proc"
	case *tmpfs.FS:
		return "tmpfs"
	case *hostfs.FS:
		return "hostfs"
	case *overlay.FS:
		return "overlay"
	case *devpts.FS:
		return "devpts"
	}
	return "none"
}

// SetCwd changes the working directory (chdir, fchdir).
func (tg *ThreadGroup) SetCwd(cwd vfs.VirtualDentry) {
	tg.fs.mu.Lock()
	tg.fs.cwd = cwd
	tg.fs.mu.Unlock()
}

// SwapUmask sets the umask and returns the old one.
func (tg *ThreadGroup) SwapUmask(mask uint32) uint32 {
	tg.fs.mu.Lock()
	defer tg.fs.mu.Unlock()
	old := tg.fs.umask
	tg.fs.umask = mask & 0o777
	return old
}

// SetRoot changes the root directory (chroot).
func (tg *ThreadGroup) SetRoot(root vfs.VirtualDentry) {
	tg.fs.mu.Lock()
	tg.fs.root = root
	tg.fs.mu.Unlock()
}

// RootIs reports whether tg's root directory is root.
func (tg *ThreadGroup) RootIs(root vfs.VirtualDentry) bool {
	tg.fs.mu.Lock()
	defer tg.fs.mu.Unlock()
	return tg.fs.root == root
}

// initFS gives a new process the root directory root, the credentials
// creds, umask 022 and the working directory dir under root (entered as
// creds allow).
func (tg *ThreadGroup) initFS(root vfs.VirtualDentry, dir string, creds *Creds) error {
	v := tg.k.vfs
	tg.fs = fsState{root: root, cwd: root, umask: 0o022, creds: creds}
	if dir == "" {
		return nil
	}
	ctx := &vfs.Context{Context: tg.ctx, Creds: tg.fs.creds.fs, Root: tg.fs.root, Cwd: tg.fs.cwd, Umask: tg.fs.umask}
	cwd, err := v.Chdir(ctx, nil, dir)
	if err != nil {
		return err
	}
	tg.fs.cwd = cwd
	return nil
}

// rootContext is a path-operation context for the kernel's own lookups:
// root credentials at the sandbox's root.
func (k *Kernel) rootContext() *vfs.Context {
	return &vfs.Context{Context: context.Background(), Creds: vfs.RootCredentials(), Root: k.vfs.Root(), Cwd: k.vfs.Root(), Umask: 0o022}
}

// LookupDir resolves the absolute path dir from the sandbox's root, with
// root's credentials, to a directory: a Program.Root.
func (k *Kernel) LookupDir(dir string) (vfs.VirtualDentry, error) {
	if !path.IsAbs(dir) {
		return vfs.VirtualDentry{}, unix.EINVAL
	}
	return k.vfs.Chdir(k.rootContext(), nil, dir)
}

// AddMount mounts m in the running sandbox, creating its mount point (and
// the directories above it) as directories, or as an empty file when m's
// root is not a directory.
func (k *Kernel) AddMount(m Mount) error {
	if !path.IsAbs(m.Target) {
		m.FS.Release()
		return unix.EINVAL
	}
	if err := mountAt(k.rootContext(), k.vfs, m); err != nil {
		m.FS.Release()
		return err
	}
	return nil
}

// Bind makes what is at the sandbox path source visible at target too,
// with the mounts below it (mount --rbind), creating target as a
// directory (and the directories above it) when source is one, or as an
// empty file.
func (k *Kernel) Bind(source, target string) error {
	if !path.IsAbs(source) || !path.IsAbs(target) {
		return unix.EINVAL
	}
	ctx := k.rootContext()
	var st unix.Stat_t
	if err := k.vfs.StatAt(ctx, nil, source, 0, &st); err != nil {
		return err
	}
	target = path.Clean(target)
	if err := makeParents(ctx, k.vfs, target); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := k.vfs.MkdirAt(ctx, nil, target, 0o755); err != nil && err != unix.EEXIST {
			return err
		}
	} else {
		f, err := k.vfs.OpenAt(ctx, nil, target, unix.O_CREAT|unix.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		f.DecRef()
	}
	return k.vfs.Bind(ctx, nil, source, target, true)
}

// Unmount detaches the mount whose root is at the sandbox path target, and
// the mounts below it (umount -l), and releases the file systems no other
// mount shows.
func (k *Kernel) Unmount(target string) error {
	return k.vfs.UnmountRelease(k.rootContext(), target)
}

// Remount makes the mount whose root is at the sandbox path target
// read-only or read-write.
func (k *Kernel) Remount(target string, readOnly bool) error {
	flags := uint32(0)
	if readOnly {
		flags = vfs.MountReadOnly
	}
	return k.vfs.Remount(k.rootContext(), nil, target, flags)
}

// ExposeHostFile makes the host file at path visible, read-only, at the same
// path inside the sandbox, unless the sandbox already has something there.
func (k *Kernel) ExposeHostFile(path string) error {
	ctx := k.rootContext()
	if f, err := k.vfs.OpenAt(ctx, nil, path, unix.O_PATH, 0); err == nil {
		f.DecRef()
		return nil
	}
	fs, err := hostfs.NewFile(path)
	if err != nil {
		return err
	}
	if err := mountAt(ctx, k.vfs, Mount{Target: path, FS: fs, ReadOnly: true}); err != nil {
		fs.Release()
		return err
	}
	return nil
}

// fileReader reads a vfs.File as an io.ReaderAt.
type fileReader struct{ f *vfs.File }

func (r fileReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.PRead(context.Background(), p, off)
	if err == nil && n < len(p) {
		return n, io.EOF
	}
	return n, err
}

// openExecutable opens path for execution: a regular file the caller may
// execute, as execve(2) requires (EACCES otherwise); read permission is
// not needed. An empty path names dir itself (execveat with
// AT_EMPTY_PATH, fexecve).
func (k *Kernel) openExecutable(ctx *vfs.Context, dir *vfs.File, path string, flags int) (fileReader, int64, error) {
	at := dir
	if path != "" || dir == nil {
		p, err := k.vfs.OpenAt(ctx, dir, path, unix.O_PATH|flags, 0)
		if err != nil {
			return fileReader{}, 0, execError(path, err)
		}
		defer p.DecRef()
		at = p
	}
	f, err := k.vfs.OpenExec(ctx, at)
	if err != nil {
		return fileReader{}, 0, execError(path, err)
	}
	st, err := f.Stat(ctx)
	if err != nil {
		f.DecRef()
		return fileReader{}, 0, execError(path, err)
	}
	return fileReader{f}, int64(st.Size), nil
}

func execError(path string, err error) error {
	errno, ok := err.(unix.Errno)
	if !ok {
		errno = unix.EIO
	}
	return &ExecError{path, errno, err}
}

// guestPages lends files guest frames for MAP_SHARED mappings.
type guestPages struct{ k *Kernel }

// Alloc implements vfs.PageAllocator.
func (g guestPages) Alloc() (uint64, []byte, error) {
	gpa, err := g.k.phys.AllocFrame()
	if err != nil {
		return 0, nil, err
	}
	return gpa, g.k.phys.Frame(gpa), nil
}

// Unref implements vfs.PageAllocator.
func (g guestPages) Unref(gpa uint64) { g.k.phys.DecRef(gpa) }

// Mapped implements vfs.PageAllocator: the file holds one reference,
// each mapping of the page one more.
func (g guestPages) Mapped(gpa uint64) bool { return g.k.phys.Shared(gpa) }

// Pages is where files get the pages their MAP_SHARED mappings map.
func (k *Kernel) Pages() vfs.PageAllocator { return guestPages{k} }
