package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kvmbox/kvmbox/kernel/loader"
	"github.com/kvmbox/kvmbox/kvm"
	"github.com/kvmbox/kvmbox/mm"
	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// maxInterpreters bounds #! scripts that name other scripts, as Linux's
// BINPRM_MAX_RECURSION does.
const maxInterpreters = 4

// addrNoRandomize is personality(2)'s ADDR_NO_RANDOMIZE, which
// golang.org/x/sys/unix does not define.
const addrNoRandomize = 0x0040000

// maxShebang is how much of a #! line Linux reads (BINPRM_BUF_SIZE).
const maxShebang = 256

// program is an executable loaded into a new address space.
type program struct {
	as   *mm.AddressSpace
	img  *loader.Image
	path string // the executable's path, as exec named it
	exe  string // its absolute path (/proc/self/exe)
	argv []string
}

// ExecError is why a program could not be loaded: Errno is what execve
// returns for it.
type ExecError struct {
	Path  string
	Errno unix.Errno
	Err   error
}

func (e *ExecError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }

func (e *ExecError) Unwrap() error { return e.Err }

// load opens path (relative to dir, or ctx's working directory when dir is
// nil) and loads it into a new address space, following #! lines. An ELF
// interpreter is looked up in ctx too. stackLimit is RLIMIT_STACK's soft
// limit; noRandomize is personality(ADDR_NO_RANDOMIZE).
func (k *Kernel) load(ctx *vfs.Context, dir *vfs.File, path string, argv, envv []string, flags int, stackLimit uint64, noRandomize bool) (*program, error) {
	for depth := 0; ; depth++ {
		exe, size, err := k.openExecutable(ctx, dir, path, flags)
		if err != nil {
			return nil, err
		}
		var head [maxShebang]byte
		n, _ := exe.f.PRead(ctx, head[:], 0)
		if n >= 2 && head[0] == '#' && head[1] == '!' {
			exe.f.DecRef()
			if depth+1 >= maxInterpreters {
				return nil, &ExecError{path, unix.ELOOP, unix.ELOOP}
			}
			interp, arg, ok := parseShebang(head[2:n])
			if !ok {
				return nil, &ExecError{path, unix.ENOEXEC, errors.New("empty #! line")}
			}
			next := []string{interp}
			if arg != "" {
				next = append(next, arg)
			}
			next = append(next, path)
			if len(argv) > 1 {
				next = append(next, argv[1:]...)
			}
			argv, path, dir, flags = next, interp, nil, 0
			continue
		}
		p, err := k.loadELF(ctx, exe, size, path, argv, envv, stackLimit, noRandomize)
		if err == nil {
			p.exe = k.pathOf(ctx, exe.f, path)
		}
		exe.f.DecRef()
		return p, err
	}
}

// parseShebang splits a #! line into the interpreter and its one optional
// argument (the rest of the line, trimmed), as Linux does.
func parseShebang(line []byte) (interp, arg string, ok bool) {
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.Trim(line, " \t")
	if len(line) == 0 {
		return "", "", false
	}
	i := bytes.IndexAny(line, " \t")
	if i < 0 {
		return string(line), "", true
	}
	return string(line[:i]), string(bytes.Trim(line[i:], " \t")), true
}

func (k *Kernel) loadELF(ctx *vfs.Context, exe fileReader, size int64, path string, argv, envv []string, stackLimit uint64, noRandomize bool) (*program, error) {
	as, err := mm.NewAddressSpace(k.phys, mm.Options{
		UserTop:    UserTop,
		MmapBase:   UserTop,
		Limit:      k.cfg.MemoryLimit,
		SharedPML4: []mm.PML4Entry{{Index: kvm.KernelPML4Index, Value: k.vm.KernelPML4Entry()}},
	})
	if err != nil {
		return nil, &ExecError{path, unix.ENOMEM, err}
	}
	f := k.Features()
	stack, gap := stackSizes(stackLimit, k.cfg.MemoryLimit)
	img, err := loader.Load(as, k.loaderFile(ctx, exe), size, loader.Options{
		Argv: argv, Envv: envv, ExecFn: path, Random: k.cfg.Random,
		UserTop: UserTop, StackSize: stack, StackLimit: gap,
		HWCap: uint64(f.CPUID1EDX), ClockTicks: 100,
		MapVDSO: func(base uint64) (uint64, uint64, error) { return k.mapVDSO(as, base) },
		// Linux opens the interpreter as it opens an executable: a
		// regular file with an execute bit, no #! line followed.
		OpenInterpreter: func(interp string) (loader.Interpreter, error) {
			f, size, err := k.openExecutable(ctx, nil, interp, 0)
			if err != nil {
				return loader.Interpreter{}, err
			}
			return loader.Interpreter{File: k.loaderFile(ctx, f), Size: size, Name: k.pathOf(ctx, f.f, interp), Close: f.f.DecRef}, nil
		},
		Name:        k.pathOf(ctx, exe.f, path),
		NoRandomize: noRandomize,
	})
	if err == nil {
		k.NoteFileCopy(img.CopiedBytes)
		err = as.SetMmapBase(img.MmapBase)
	}
	if err != nil {
		as.Release()
		return nil, &ExecError{path, loadErrno(err), err}
	}
	return &program{as: as, img: img, path: path, argv: argv}, nil
}

// pathOf is f's absolute path in the sandbox, as /proc shows it, or
// opened (the path it was opened by) where it has none.
func (k *Kernel) pathOf(ctx *vfs.Context, f *vfs.File, opened string) string {
	if vd, ok := f.VirtualDentry(); ok {
		if abs, ok := k.vfs.PathOf(ctx.Root, vd); ok {
			return abs
		}
	}
	return opened
}

// loaderFile is how the loader reads an executable: from the page cache
// where it can.
func (k *Kernel) loaderFile(ctx *vfs.Context, exe fileReader) io.ReaderAt {
	if c, ok := k.cachedFile(ctx, exe.f); ok {
		return c
	}
	return exe
}

// loadErrno is what execve returns when the loader refuses a file: the
// open's error for an interpreter that could not be opened (ENOENT when it
// is missing), ELIBBAD for one that is not a usable ELF interpreter.
func loadErrno(err error) unix.Errno {
	var errno unix.Errno
	var ee *ExecError
	switch {
	case errors.As(err, &ee):
		return ee.Errno
	case errors.Is(err, loader.ErrBadInterpreter):
		return unix.ELIBBAD
	case errors.Is(err, loader.ErrNotELF), errors.Is(err, loader.ErrWrongArch),
		errors.Is(err, loader.ErrNotExecutable), errors.Is(err, loader.ErrMalformed):
		return unix.ENOEXEC
	case errors.As(err, &errno):
		return errno
	}
	return unix.ENOMEM
}

// Execve replaces the calling process's program (execve, execveat): the
// other threads end, descriptors marked close-on-exec close, handled
// signals go back to their defaults, POSIX timers go away, credentials
// are those of a program without set-user-ID bits or file capabilities,
// and the thread starts the new program. On error nothing has changed.
func (t *Task) Execve(dir *vfs.File, path string, argv, envv []string, flags int) error {
	tg := t.tg
	stack, _ := tg.Limit(unix.RLIMIT_STACK)
	p, err := tg.k.load(t.FSContext(), dir, path, argv, envv, flags, stack.Cur, t.personality&addrNoRandomize != 0)
	if err != nil {
		var ee *ExecError
		if errors.As(err, &ee) {
			return ee.Errno
		}
		return err
	}
	if !t.killOtherThreads() {
		p.as.Release()
		return unix.EINTR
	}
	old := tg.mm
	tg.mu.Lock()
	tg.mm = p.as
	tg.applyLimitsLocked()
	tg.path, tg.argv, tg.envv, tg.image = p.exe, p.argv, envv, p.img
	for sig := 1; sig <= NumSignals; sig++ {
		if h := tg.sigactions[sig].Handler; h != SigIgn {
			tg.sigactions[sig] = SigAction{}
		}
	}
	t.altStackSP, t.altStackSize, t.altStackFlags = 0, 0, 0
	t.robustList, t.clearChildTID = 0, 0
	// comm is the name exec was given, the script's for a #! script.
	if path != "" {
		t.name = commName(path)
	} else {
		t.name = commName(p.exe)
	}
	tg.mu.Unlock()
	tg.k.releaseSpace(old)
	tg.execTimers()
	tg.execCreds()
	tg.fds.CloseOnExecAll()
	tg.releaseVfork()
	if err := t.resetXSave(); err != nil {
		return err
	}
	if err := t.SetFSBase(0); err != nil {
		return err
	}
	t.setRegs = &kvm.Regs{RIP: p.img.Entry, RSP: p.img.Stack, RFLAGS: kvm.UserRFLAGS}
	return nil
}

// Personality is the calling thread's personality(2) value.
func (t *Task) Personality() uint32 { return t.personality }

// SetPersonality sets it, as personality(2) does; ADDR_NO_RANDOMIZE then
// places the programs the thread executes without randomisation.
func (t *Task) SetPersonality(p uint32) { t.personality = p }

// killOtherThreads ends every other thread of the process and waits for
// them, then gives the caller the process's id as its thread id, as
// execve does. It fails if the process is exiting.
func (t *Task) killOtherThreads() bool {
	tg := t.tg
	tg.mu.Lock()
	for _, o := range tg.tasks {
		if o != t {
			o.mustExit = true
			o.interruptLocked()
		}
	}
	tg.mu.Unlock()
	for {
		tg.mu.Lock()
		alone := len(tg.tasks) == 1
		exiting := tg.exiting
		tg.mu.Unlock()
		if exiting {
			return false
		}
		if alone {
			break
		}
		// Threads leave within a kick's reach of their next exit; exec
		// is rare enough to poll for it.
		time.Sleep(100 * time.Microsecond)
	}
	if t.tid != tg.pid {
		k := tg.k
		tg.mu.Lock()
		delete(tg.tasks, t.tid)
		k.mu.Lock()
		delete(k.tasks, t.tid)
		t.tid = tg.pid
		k.tasks[t.tid] = t
		k.mu.Unlock()
		tg.tasks[t.tid] = t
		tg.mu.Unlock()
	}
	return true
}
