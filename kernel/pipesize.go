package kernel

import (
	"github.com/kvmbox/kvmbox/vfs/pipe"
	"golang.org/x/sys/unix"
)

// PipeMaxSize returns /proc/sys/fs/pipe-max-size: the largest capacity
// F_SETPIPE_SZ gives a pipe for a process without CAP_SYS_RESOURCE.
func (k *Kernel) PipeMaxSize() int { return int(k.pipeMaxSize.Load()) }

// SetPipeMaxSize sets /proc/sys/fs/pipe-max-size as a write to it does on
// Linux: the value is rounded as a pipe capacity is; one beyond the
// largest capacity is EINVAL.
func (k *Kernel) SetPipeMaxSize(n uint64) error {
	size := pipe.RoundSize(n)
	if size == 0 {
		return unix.EINVAL
	}
	k.pipeMaxSize.Store(int64(size))
	return nil
}
