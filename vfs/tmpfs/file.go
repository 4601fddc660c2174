package tmpfs

import (
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

// NewFile returns a tmpfs whose root is a regular file holding data,
// with mode's permission bits: a single in-memory file to mount over a
// path (the sandbox's /etc/resolv.conf).
func NewFile(data []byte, mode uint32) (*FS, error) {
	fs := &FS{}
	fs.root = fs.newInode(&vfs.CreateOptions{Mode: unix.S_IFREG | mode&0o7777})
	if _, err := fs.root.data.write(fs, data, 0); err != nil {
		return nil, err
	}
	return fs, nil
}
