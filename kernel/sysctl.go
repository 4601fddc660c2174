package kernel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kvmbox/kvmbox/netstack"
	"github.com/kvmbox/kvmbox/vfs/inotify"
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"golang.org/x/sys/unix"
)

// Values of the sandbox's sysctls, as Linux 6.x has them on x86-64.
const (
	// PIDMaxLimit is PID_MAX_LIMIT, kernel.pid_max's default and bound.
	PIDMaxLimit = 1 << 22
	// MaxUTSLen is the longest host or domain name (__NEW_UTS_LEN).
	MaxUTSLen = 64

	defaultNrOpen      = 1 << 20
	defaultPipeMaxSize = pipe.DefaultMaxSize
	defaultFileMax     = 1 << 20
	defaultMmapMinAddr = 65536
)

// Sysctl holds a sandbox's tunables, those of /proc/sys: each sandbox
// has its own, and changing them never touches the host. They are safe
// for concurrent use.
type Sysctl struct {
	nrOpen           atomic.Int32
	fileMax          atomic.Uint64
	pipeMaxSize      atomic.Uint32
	pidMax           atomic.Int32
	overcommitMemory atomic.Int32
	mmapMinAddr      atomic.Uint64
	// inotify holds the inotify limits (fs/inotify/max_*) and counts.
	inotify *inotify.Limits

	utsMu      sync.Mutex
	hostname   string
	domainname string
}

func newSysctl(hostname string) *Sysctl {
	s := &Sysctl{hostname: truncateUTS(hostname), domainname: "(none)", inotify: inotify.NewLimits()}
	s.nrOpen.Store(defaultNrOpen)
	s.fileMax.Store(defaultFileMax)
	s.pipeMaxSize.Store(defaultPipeMaxSize)
	s.pidMax.Store(PIDMaxLimit)
	s.mmapMinAddr.Store(defaultMmapMinAddr)
	return s
}

func truncateUTS(s string) string {
	return s[:min(len(s), MaxUTSLen)]
}

// Sysctl returns the sandbox's tunables.
func (k *Kernel) Sysctl() *Sysctl { return k.sysctl }

// NrOpen is fs.nr_open: the most file descriptors RLIMIT_NOFILE may allow.
func (s *Sysctl) NrOpen() int { return int(s.nrOpen.Load()) }

// FileMax is fs.file-max.
func (s *Sysctl) FileMax() uint64 { return s.fileMax.Load() }

// PipeMaxSize is fs.pipe-max-size: the largest pipe capacity an
// unprivileged F_SETPIPE_SZ may ask for, in bytes.
func (s *Sysctl) PipeMaxSize() int { return int(s.pipeMaxSize.Load()) }

// PIDMax is kernel.pid_max.
func (s *Sysctl) PIDMax() int { return int(s.pidMax.Load()) }

// OvercommitMemory is vm.overcommit_memory (0, 1 or 2).
func (s *Sysctl) OvercommitMemory() int { return int(s.overcommitMemory.Load()) }

// Inotify returns the inotify limits and the counts they bound.
func (s *Sysctl) Inotify() *inotify.Limits { return s.inotify }

// MmapMinAddr is vm.mmap_min_addr.
func (s *Sysctl) MmapMinAddr() uint64 { return s.mmapMinAddr.Load() }

// Hostname is the UTS node name (uname, kernel.hostname).
func (s *Sysctl) Hostname() string {
	s.utsMu.Lock()
	defer s.utsMu.Unlock()
	return s.hostname
}

// Domainname is the NIS domain name (uname, kernel.domainname).
func (s *Sysctl) Domainname() string {
	s.utsMu.Lock()
	defer s.utsMu.Unlock()
	return s.domainname
}

// SetHostname sets the node name, cut to MaxUTSLen bytes.
func (s *Sysctl) SetHostname(name string) {
	s.utsMu.Lock()
	defer s.utsMu.Unlock()
	s.hostname = truncateUTS(name)
}

// SetDomainname sets the domain name, cut to MaxUTSLen bytes.
func (s *Sysctl) SetDomainname(name string) {
	s.utsMu.Lock()
	defer s.utsMu.Unlock()
	s.domainname = truncateUTS(name)
}

// procSysctls is /proc/sys's view of a Sysctl: procfs has parsed and
// validated each value as Linux does.
type procSysctls struct{ k *Kernel }

func (p procSysctls) Num(path string) uint64 {
	s := p.k.sysctl
	switch path {
	case "fs/nr_open":
		return uint64(s.NrOpen())
	case "fs/file-max":
		return s.FileMax()
	case "fs/pipe-max-size":
		return uint64(s.PipeMaxSize())
	case "kernel/pid_max":
		return uint64(s.PIDMax())
	case "kernel/ngroups_max":
		return NGroupsMax
	case "vm/overcommit_memory":
		return uint64(s.OvercommitMemory())
	case "vm/mmap_min_addr":
		return s.MmapMinAddr()
	case "fs/inotify/max_queued_events":
		return uint64(s.inotify.MaxQueuedEvents.Load())
	case "fs/inotify/max_user_instances":
		return uint64(s.inotify.MaxUserInstances.Load())
	case "fs/inotify/max_user_watches":
		return uint64(s.inotify.MaxUserWatches.Load())
	}
	return 0
}

func (p procSysctls) SetNum(ctx context.Context, path string, v uint64) error {
	s := p.k.sysctl
	switch path {
	case "fs/nr_open":
		s.nrOpen.Store(int32(v))
	case "fs/file-max":
		s.fileMax.Store(v)
	case "fs/pipe-max-size":
		s.pipeMaxSize.Store(uint32(v))
	case "kernel/pid_max":
		s.pidMax.Store(int32(v))
	case "vm/overcommit_memory":
		s.overcommitMemory.Store(int32(v))
	case "fs/inotify/max_queued_events":
		s.inotify.MaxQueuedEvents.Store(int32(v))
	case "fs/inotify/max_user_instances":
		s.inotify.MaxUserInstances.Store(int32(v))
	case "fs/inotify/max_user_watches":
		s.inotify.MaxUserWatches.Store(int32(v))
	case "vm/mmap_min_addr":
		// mmap_min_addr_handler wants CAP_SYS_RAWIO on top of the file's
		// permissions.
		if !callerCapable(ctx, unix.CAP_SYS_RAWIO) {
			return unix.EPERM
		}
		s.mmapMinAddr.Store(v)
	default:
		return unix.EACCES
	}
	return nil
}

func (p procSysctls) String(path string) string {
	switch path {
	case "kernel/hostname":
		return p.k.sysctl.Hostname()
	case "kernel/domainname":
		return p.k.sysctl.Domainname()
	case "net/ipv4/ping_group_range":
		return fmt.Sprintf("%d\t%d", netstack.PingGroupLow, netstack.PingGroupHigh)
	}
	return ""
}

func (p procSysctls) SetString(_ context.Context, path string, v string) error {
	switch path {
	case "kernel/hostname":
		p.k.sysctl.SetHostname(v)
	case "kernel/domainname":
		p.k.sysctl.SetDomainname(v)
	default:
		return unix.EACCES
	}
	return nil
}

// callerCapable reports whether the task whose context ctx is has
// capability c in its effective set.
func callerCapable(ctx context.Context, c int) bool {
	t := taskFrom(ctx)
	return t != nil && t.tg.Creds().Capable(c)
}
