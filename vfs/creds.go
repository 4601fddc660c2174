package vfs

import (
	"context"
	"slices"

	"golang.org/x/sys/unix"
)

// Access bits for permission checks, as in access(2).
const (
	mayExec  = unix.X_OK
	mayWrite = unix.W_OK
	mayRead  = unix.R_OK
)

// Credentials are the identity a task acts with on files.
type Credentials struct {
	// UID and GID are the file-system IDs (fsuid, fsgid): they own new
	// files and are checked against file modes. UID 0 bypasses
	// permission checks as CAP_DAC_OVERRIDE and CAP_FOWNER do.
	UID, GID uint32
	// RealUID and RealGID are used by access(2) without AT_EACCESS.
	RealUID, RealGID uint32
	// Groups are the supplementary groups.
	Groups []uint32
}

// RootCredentials returns the credentials of uid 0.
func RootCredentials() *Credentials {
	return &Credentials{}
}

func (c *Credentials) inGroup(gid uint32) bool {
	return c.GID == gid || slices.Contains(c.Groups, gid)
}

func (c *Credentials) isOwner(st *unix.Statx_t) bool {
	return c.UID == 0 || c.UID == st.Uid
}

// permission checks the access bits want (mayRead|mayWrite|mayExec)
// against the file's mode, as generic_permission does.
func (c *Credentials) permission(st *unix.Statx_t, want uint32) error {
	mode := uint32(st.Mode)
	if c.UID == 0 {
		if want&mayExec == 0 || mode&unix.S_IFMT == unix.S_IFDIR || mode&0o111 != 0 {
			return nil
		}
		return unix.EACCES
	}
	var bits uint32
	switch {
	case c.UID == st.Uid:
		bits = mode >> 6
	case c.inGroup(st.Gid):
		bits = mode >> 3
	default:
		bits = mode
	}
	if bits&7&want != want {
		return unix.EACCES
	}
	return nil
}

// Context is what a path operation needs from the calling task: a
// cancellation context, credentials, root and working directory, and the
// umask.
type Context struct {
	context.Context
	Creds *Credentials
	// Root is where absolute paths start and ".." stops.
	Root VirtualDentry
	// Cwd is where relative paths start when no directory file is given.
	Cwd   VirtualDentry
	Umask uint32
}
