package kernel

import (
	"sync"

	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// FDTable maps a process's file descriptors to open file descriptions.
// Closing a descriptor releases the record locks its process holds on the
// file, as Linux does.
type FDTable struct {
	owner *ThreadGroup // the process, owner of its POSIX record locks
	mu    sync.Mutex
	files []fdEntry
	limit int // RLIMIT_NOFILE's soft limit: descriptors are below it
}

type fdEntry struct {
	file    *vfs.File
	cloexec bool
}

// NewFDTable returns an empty table of owner's with the given descriptor
// limit.
func NewFDTable(owner *ThreadGroup, limit int) *FDTable {
	return &FDTable{owner: owner, limit: limit}
}

// Limit is the descriptor limit: new descriptors are below it.
func (t *FDTable) Limit() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.limit
}

// SetLimit changes the descriptor limit (setrlimit(RLIMIT_NOFILE)).
// Descriptors already open at or above it stay open.
func (t *FDTable) SetLimit(limit int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.limit = limit
}

// drop releases what closing a descriptor of f releases, then the
// descriptor's reference.
func (t *FDTable) drop(f *vfs.File) {
	f.ReleaseLocks(t.owner)
	f.FlushDirNotify(t.owner)
	f.DecRef()
}

// Get returns the file at fd with a reference the caller must drop, or EBADF.
func (t *FDTable) Get(fd int32) (*vfs.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd < 0 || int(fd) >= len(t.files) || t.files[fd].file == nil {
		return nil, unix.EBADF
	}
	f := t.files[fd].file
	f.IncRef()
	return f, nil
}

// Install puts f at the lowest free descriptor >= min and takes over the
// caller's reference. EMFILE when the limit is reached.
func (t *FDTable) Install(f *vfs.File, min int32, cloexec bool) (int32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for fd := int(min); fd < t.limit; fd++ {
		if fd >= len(t.files) {
			t.files = append(t.files, make([]fdEntry, fd+1-len(t.files))...)
		}
		if t.files[fd].file == nil {
			t.files[fd] = fdEntry{file: f, cloexec: cloexec}
			return int32(fd), nil
		}
	}
	return -1, unix.EMFILE
}

// InstallAt puts f at fd, closing what was there (dup2/dup3), and takes
// over the caller's reference.
func (t *FDTable) InstallAt(fd int32, f *vfs.File, cloexec bool) error {
	t.mu.Lock()
	if fd < 0 || int(fd) >= t.limit {
		t.mu.Unlock()
		return unix.EBADF
	}
	if int(fd) >= len(t.files) {
		t.files = append(t.files, make([]fdEntry, int(fd)+1-len(t.files))...)
	}
	old := t.files[fd].file
	t.files[fd] = fdEntry{file: f, cloexec: cloexec}
	t.mu.Unlock()
	if old != nil {
		t.drop(old)
	}
	return nil
}

// Close removes fd. EBADF if it is not open.
func (t *FDTable) Close(fd int32) error {
	t.mu.Lock()
	if fd < 0 || int(fd) >= len(t.files) || t.files[fd].file == nil {
		t.mu.Unlock()
		return unix.EBADF
	}
	f := t.files[fd].file
	t.files[fd] = fdEntry{}
	t.mu.Unlock()
	t.drop(f)
	return nil
}

// CloseOnExec reports the close-on-exec flag of fd.
func (t *FDTable) CloseOnExec(fd int32) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd < 0 || int(fd) >= len(t.files) || t.files[fd].file == nil {
		return false, unix.EBADF
	}
	return t.files[fd].cloexec, nil
}

// SetCloseOnExec sets the close-on-exec flag of fd.
func (t *FDTable) SetCloseOnExec(fd int32, on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd < 0 || int(fd) >= len(t.files) || t.files[fd].file == nil {
		return unix.EBADF
	}
	t.files[fd].cloexec = on
	return nil
}

// Len is one more than the highest descriptor the table has had room
// for: every open descriptor is below it.
func (t *FDTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.files)
}

// CloseAll drops every descriptor (the process exits).
func (t *FDTable) CloseAll() {
	t.mu.Lock()
	files := t.files
	t.files = nil
	t.mu.Unlock()
	for _, e := range files {
		if e.file != nil {
			t.drop(e.file)
		}
	}
}

// each calls fn for every open descriptor, in order, with the table locked.
func (t *FDTable) each(fn func(fd int32, f *vfs.File, cloexec bool)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for fd, e := range t.files {
		if e.file != nil {
			fn(int32(fd), e.file, e.cloexec)
		}
	}
}

// Fork returns a copy of the table for a child process: the same open
// file descriptions, shared (offsets and status flags too), as fork(2).
func (t *FDTable) Fork(owner *ThreadGroup) *FDTable {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &FDTable{owner: owner, limit: t.limit, files: make([]fdEntry, len(t.files))}
	for i, e := range t.files {
		if e.file != nil {
			e.file.IncRef()
			c.files[i] = e
		}
	}
	return c
}

// CloseOnExecAll closes the descriptors marked close-on-exec (execve).
func (t *FDTable) CloseOnExecAll() {
	t.mu.Lock()
	var closing []*vfs.File
	for i, e := range t.files {
		if e.file != nil && e.cloexec {
			closing = append(closing, e.file)
			t.files[i] = fdEntry{}
		}
	}
	t.mu.Unlock()
	for _, f := range closing {
		t.drop(f)
	}
}
