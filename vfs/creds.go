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

// CapFull is every capability Linux defines (up to CAP_LAST_CAP).
const CapFull = uint64(1)<<(unix.CAP_LAST_CAP+1) - 1

// Credentials are the identity a task acts with on files.
type Credentials struct {
	// UID and GID are the file-system IDs (fsuid, fsgid): they own new
	// files and are checked against file modes.
	UID, GID uint32
	// RealUID and RealGID are used by access(2) without AT_EACCESS.
	RealUID, RealGID uint32
	// Groups are the supplementary groups.
	Groups []uint32
	// Caps is the effective capability set, bit n for capability n:
	// CAP_DAC_OVERRIDE, CAP_FOWNER and the others bypass the checks they
	// do on Linux, whatever the uid.
	Caps uint64
	// Permitted is the permitted capability set: access(2) for real uid 0
	// checks with it, as Linux does.
	Permitted uint64
}

// RootCredentials returns the credentials of uid 0 with every capability.
func RootCredentials() *Credentials {
	return &Credentials{Caps: CapFull, Permitted: CapFull}
}

// Capable reports whether c has capability cap (CAP_*) in its effective set.
func (c *Credentials) Capable(cap int) bool { return c.Caps&(1<<cap) != 0 }

func (c *Credentials) inGroup(gid uint32) bool {
	return c.GID == gid || slices.Contains(c.Groups, gid)
}

// inGroupOrCapable reports whether c may keep a set-group-ID bit on a file
// of group gid (in_group_or_capable).
func (c *Credentials) inGroupOrCapable(gid uint32) bool {
	return c.inGroup(gid) || c.Capable(unix.CAP_FSETID)
}

// isOwner reports whether c owns the file or may act as its owner
// (inode_owner_or_capable).
func (c *Credentials) isOwner(st *unix.Statx_t) bool {
	return c.UID == st.Uid || c.Capable(unix.CAP_FOWNER)
}

// permission checks the access bits want (mayRead|mayWrite|mayExec)
// against the file's mode, as generic_permission does: the mode first,
// then CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. No capability makes a
// file without any execute bit executable.
func (c *Credentials) permission(st *unix.Statx_t, want uint32) error {
	mode := uint32(st.Mode)
	var bits uint32
	switch {
	case c.UID == st.Uid:
		bits = mode >> 6
	case c.inGroup(st.Gid):
		bits = mode >> 3
	default:
		bits = mode
	}
	if bits&7&want == want {
		return nil
	}
	if mode&unix.S_IFMT == unix.S_IFDIR {
		if want&mayWrite == 0 && c.Capable(unix.CAP_DAC_READ_SEARCH) || c.Capable(unix.CAP_DAC_OVERRIDE) {
			return nil
		}
		return unix.EACCES
	}
	if (want&mayExec == 0 || mode&0o111 != 0) && c.Capable(unix.CAP_DAC_OVERRIDE) {
		return nil
	}
	if want == mayRead && c.Capable(unix.CAP_DAC_READ_SEARCH) {
		return nil
	}
	return unix.EACCES
}

// CredentialsKey is the context.Value key under which a task's context
// carries its *Credentials, for the file operations that get a plain
// context.Context (a write clears set-ID bits unless the writer has
// CAP_FSETID).
type CredentialsKey struct{}

// CredentialsFrom returns the credentials ctx carries, or nil.
func CredentialsFrom(ctx context.Context) *Credentials {
	if c, ok := ctx.(*Context); ok {
		return c.Creds
	}
	c, _ := ctx.Value(CredentialsKey{}).(*Credentials)
	return c
}

// KillSetIDOnWrite returns the mode a write by the caller of ctx leaves a
// regular file of mode and group gid with (file_remove_privs): without
// CAP_FSETID it loses set-user-ID, and set-group-ID when group execute is
// set or the caller is not in the group.
func KillSetIDOnWrite(ctx context.Context, mode, gid uint32) uint32 {
	c := CredentialsFrom(ctx)
	if c != nil && c.Capable(unix.CAP_FSETID) {
		return mode
	}
	mode &^= unix.S_ISUID
	if mode&unix.S_IXGRP != 0 || c != nil && !c.inGroup(gid) {
		mode &^= unix.S_ISGID
	}
	return mode
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
