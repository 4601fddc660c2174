package kernel

import (
	"slices"

	"github.com/kvmbox/kvmbox/vfs"
	"golang.org/x/sys/unix"
)

// Creds are a process's identity: its user and group IDs, supplementary
// groups, capabilities and the flags prctl keeps beside them. A Creds is
// never changed once published: a change installs a new one, so fork can
// share it. The sandbox's processes start as root, root inside the sandbox
// only.
type Creds struct {
	UID, EUID, SUID, FSUID uint32
	GID, EGID, SGID, FSGID uint32
	// Groups are the supplementary groups, sorted as Linux keeps them.
	Groups []uint32
	// Capability sets, bit n for capability n. The bounding set limits
	// what an execve by root may gain and what capset may make
	// inheritable.
	CapInheritable, CapPermitted, CapEffective, CapBounding uint64
	// KeepCaps is PR_SET_KEEPCAPS (SECBIT_KEEP_CAPS): permitted
	// capabilities survive the switch away from uid 0.
	KeepCaps bool
	// NoNewPrivs is PR_SET_NO_NEW_PRIVS: inherited, never cleared.
	NoNewPrivs bool
	// Dumpable is PR_GET_DUMPABLE's value (SUID_DUMP_*).
	Dumpable int

	fs *vfs.Credentials // what file-system permission checks use
}

// CapFull is every capability Linux defines (up to CAP_CHECKPOINT_RESTORE).
const CapFull = vfs.CapFull

// Capabilities the credential rules consult.
const (
	capSetGID  = unix.CAP_SETGID
	capSetUID  = unix.CAP_SETUID
	capSetPCap = unix.CAP_SETPCAP
)

// capFSMask are the capabilities that follow the file-system uid between 0
// and another (CAP_FS_MASK).
const capFSMask = 1<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH |
	1<<unix.CAP_FOWNER | 1<<unix.CAP_FSETID | 1<<unix.CAP_LINUX_IMMUTABLE | 1<<unix.CAP_MAC_OVERRIDE | 1<<unix.CAP_MKNOD

// idUnchanged is the -1 that leaves an ID as it is (setreuid, setresuid);
// it is never a valid ID.
const idUnchanged = ^uint32(0)

// Dumpable values (SUID_DUMP_*).
const (
	DumpDisable = 0
	DumpUser    = 1
)

func rootCreds() *Creds {
	c := &Creds{CapPermitted: CapFull, CapEffective: CapFull, CapBounding: CapFull, Dumpable: DumpUser}
	c.fs = c.vfsCreds()
	return c
}

func (c *Creds) vfsCreds() *vfs.Credentials {
	return &vfs.Credentials{UID: c.FSUID, GID: c.FSGID, RealUID: c.UID, RealGID: c.GID, Groups: c.Groups,
		Caps: c.CapEffective, Permitted: c.CapPermitted}
}

// Capable reports whether c has capability cap in its effective set.
func (c *Creds) Capable(cap int) bool { return c.CapEffective&(1<<cap) != 0 }

// Creds returns the process's current credentials.
func (tg *ThreadGroup) Creds() *Creds {
	tg.fs.mu.Lock()
	defer tg.fs.mu.Unlock()
	return tg.fs.creds
}

// changeCreds applies change to a copy of the credentials and installs the
// copy unless change fails. It applies what Linux does on every change:
// capabilities follow the uids (cap_task_fix_setuid), and a new effective
// or file-system ID makes the process undumpable and clears its parent
// death signal (commit_creds).
func (tg *ThreadGroup) changeCreds(change func(n *Creds) error) error {
	tg.fs.mu.Lock()
	old := tg.fs.creds
	n := *old
	if err := change(&n); err != nil {
		tg.fs.mu.Unlock()
		return err
	}
	n.fixCaps(old)
	reset := n.EUID != old.EUID || n.EGID != old.EGID || n.FSUID != old.FSUID || n.FSGID != old.FSGID ||
		n.CapPermitted&^old.CapPermitted != 0
	if reset {
		// fs.suid_dumpable is 0 unless an administrator changed it.
		n.Dumpable = DumpDisable
	}
	n.fs = n.vfsCreds()
	tg.fs.creds = &n
	tg.fs.mu.Unlock()
	if reset {
		tg.SetParentDeathSignal(0)
	}
	return nil
}

// fixCaps adjusts capabilities after a uid change, as cap_task_fix_setuid
// does for a process without SECBIT_NO_SETUID_FIXUP.
func (n *Creds) fixCaps(old *Creds) {
	oldRoot := old.UID == 0 || old.EUID == 0 || old.SUID == 0
	newRoot := n.UID == 0 || n.EUID == 0 || n.SUID == 0
	if oldRoot && !newRoot {
		if !n.KeepCaps {
			n.CapPermitted = 0
		}
		n.CapEffective = 0
	}
	if old.EUID == 0 && n.EUID != 0 {
		n.CapEffective = 0
	}
	if old.EUID != 0 && n.EUID == 0 {
		n.CapEffective = n.CapPermitted
	}
	switch {
	case old.FSUID == 0 && n.FSUID != 0:
		n.CapEffective &^= capFSMask
	case old.FSUID != 0 && n.FSUID == 0:
		n.CapEffective |= n.CapPermitted & capFSMask
	}
}

// execCreds gives the credentials a new program runs with: saved IDs take
// the effective ones, root's capabilities are recomputed as for a program
// without file capabilities, and PR_SET_KEEPCAPS ends.
func (tg *ThreadGroup) execCreds() {
	tg.fs.mu.Lock()
	defer tg.fs.mu.Unlock()
	n := *tg.fs.creds
	n.SUID, n.FSUID = n.EUID, n.EUID
	n.SGID, n.FSGID = n.EGID, n.EGID
	n.CapPermitted = 0
	if n.EUID == 0 || n.UID == 0 {
		// A program without file capabilities run by root: its
		// inheritable and bounding sets (pI & fI | fP & bset, fI and
		// fP full).
		n.CapPermitted = n.CapInheritable | n.CapBounding
	}
	n.CapEffective = 0
	if n.EUID == 0 {
		n.CapEffective = n.CapPermitted
	}
	n.KeepCaps = false
	n.Dumpable = DumpUser
	if n.EUID != n.UID || n.EGID != n.GID {
		n.Dumpable = DumpDisable
	}
	n.fs = n.vfsCreds()
	tg.fs.creds = &n
}

// SetUID implements setuid(2).
func (tg *ThreadGroup) SetUID(uid uint32) error {
	if uid == idUnchanged {
		return unix.EINVAL
	}
	return tg.changeCreds(func(n *Creds) error {
		switch {
		case n.Capable(capSetUID):
			n.UID, n.SUID = uid, uid
		case uid != n.UID && uid != n.SUID:
			return unix.EPERM
		}
		n.EUID, n.FSUID = uid, uid
		return nil
	})
}

// SetGID implements setgid(2).
func (tg *ThreadGroup) SetGID(gid uint32) error {
	if gid == idUnchanged {
		return unix.EINVAL
	}
	return tg.changeCreds(func(n *Creds) error {
		switch {
		case n.Capable(capSetGID):
			n.GID, n.SGID = gid, gid
		case gid != n.GID && gid != n.SGID:
			return unix.EPERM
		}
		n.EGID, n.FSGID = gid, gid
		return nil
	})
}

// setre is setreuid and setregid over one kind of ID: r, e and s are the
// real, effective and saved IDs, cap the capability that allows anything.
func setre(real, eff uint32, r, e, s *uint32, capable bool) error {
	oldR, oldE, oldS := *r, *e, *s
	if real != idUnchanged {
		if real != oldR && real != oldE && !capable {
			return unix.EPERM
		}
		*r = real
	}
	if eff != idUnchanged {
		if eff != oldR && eff != oldE && eff != oldS && !capable {
			return unix.EPERM
		}
		*e = eff
	}
	if real != idUnchanged || eff != idUnchanged && eff != oldR {
		*s = *e
	}
	return nil
}

// SetREUID implements setreuid(2); -1 leaves an ID as it is.
func (tg *ThreadGroup) SetREUID(ruid, euid uint32) error {
	return tg.changeCreds(func(n *Creds) error {
		if err := setre(ruid, euid, &n.UID, &n.EUID, &n.SUID, n.Capable(capSetUID)); err != nil {
			return err
		}
		n.FSUID = n.EUID
		return nil
	})
}

// SetREGID implements setregid(2).
func (tg *ThreadGroup) SetREGID(rgid, egid uint32) error {
	return tg.changeCreds(func(n *Creds) error {
		if err := setre(rgid, egid, &n.GID, &n.EGID, &n.SGID, n.Capable(capSetGID)); err != nil {
			return err
		}
		n.FSGID = n.EGID
		return nil
	})
}

// setres is setresuid and setresgid over one kind of ID.
func setres(want [3]uint32, ids [3]*uint32, capable bool) error {
	old := [3]uint32{*ids[0], *ids[1], *ids[2]}
	for _, id := range want {
		if id != idUnchanged && !slices.Contains(old[:], id) && !capable {
			return unix.EPERM
		}
	}
	for i, id := range want {
		if id != idUnchanged {
			*ids[i] = id
		}
	}
	return nil
}

// SetRESUID implements setresuid(2).
func (tg *ThreadGroup) SetRESUID(ruid, euid, suid uint32) error {
	return tg.changeCreds(func(n *Creds) error {
		if err := setres([3]uint32{ruid, euid, suid}, [3]*uint32{&n.UID, &n.EUID, &n.SUID}, n.Capable(capSetUID)); err != nil {
			return err
		}
		n.FSUID = n.EUID
		return nil
	})
}

// SetRESGID implements setresgid(2).
func (tg *ThreadGroup) SetRESGID(rgid, egid, sgid uint32) error {
	return tg.changeCreds(func(n *Creds) error {
		if err := setres([3]uint32{rgid, egid, sgid}, [3]*uint32{&n.GID, &n.EGID, &n.SGID}, n.Capable(capSetGID)); err != nil {
			return err
		}
		n.FSGID = n.EGID
		return nil
	})
}

// SetFSUID implements setfsuid(2): it returns the old file-system uid
// whether or not the change was allowed.
func (tg *ThreadGroup) SetFSUID(uid uint32) uint32 {
	var old uint32
	tg.changeCreds(func(n *Creds) error {
		old = n.FSUID
		if uid == idUnchanged || uid == n.FSUID ||
			uid != n.UID && uid != n.EUID && uid != n.SUID && !n.Capable(capSetUID) {
			return unix.EPERM
		}
		n.FSUID = uid
		return nil
	})
	return old
}

// SetFSGID implements setfsgid(2).
func (tg *ThreadGroup) SetFSGID(gid uint32) uint32 {
	var old uint32
	tg.changeCreds(func(n *Creds) error {
		old = n.FSGID
		if gid == idUnchanged || gid == n.FSGID ||
			gid != n.GID && gid != n.EGID && gid != n.SGID && !n.Capable(capSetGID) {
			return unix.EPERM
		}
		n.FSGID = gid
		return nil
	})
	return old
}

// NGroupsMax bounds the supplementary groups (NGROUPS_MAX).
const NGroupsMax = 65536

// SetGroups implements setgroups(2).
func (tg *ThreadGroup) SetGroups(groups []uint32) error {
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	return tg.changeCreds(func(n *Creds) error {
		switch {
		case !n.Capable(capSetGID):
			return unix.EPERM
		case len(groups) > NGroupsMax, slices.Contains(groups, idUnchanged):
			return unix.EINVAL
		}
		n.Groups = sorted
		return nil
	})
}

// SetCaps implements capset(2) for the calling process: the new permitted
// set may only shrink, the effective set must lie within it, and the
// inheritable set within the old inheritable and permitted sets unless
// the process has CAP_SETPCAP, and always within the old inheritable and
// bounding sets.
func (tg *ThreadGroup) SetCaps(eff, perm, inh uint64) error {
	eff, perm, inh = eff&CapFull, perm&CapFull, inh&CapFull
	return tg.changeCreds(func(n *Creds) error {
		if !n.Capable(capSetPCap) && inh&^(n.CapInheritable|n.CapPermitted) != 0 ||
			inh&^(n.CapInheritable|n.CapBounding) != 0 ||
			perm&^n.CapPermitted != 0 || eff&^perm != 0 {
			return unix.EPERM
		}
		n.CapEffective, n.CapPermitted, n.CapInheritable = eff, perm, inh
		return nil
	})
}

// SetKeepCaps implements PR_SET_KEEPCAPS.
func (tg *ThreadGroup) SetKeepCaps(on bool) {
	tg.setFlag(func(n *Creds) { n.KeepCaps = on })
}

// SetNoNewPrivs implements PR_SET_NO_NEW_PRIVS.
func (tg *ThreadGroup) SetNoNewPrivs() {
	tg.setFlag(func(n *Creds) { n.NoNewPrivs = true })
}

// SetDumpable implements PR_SET_DUMPABLE (DumpDisable or DumpUser).
func (tg *ThreadGroup) SetDumpable(v int) {
	tg.setFlag(func(n *Creds) { n.Dumpable = v })
}

// setFlag changes a prctl flag kept with the credentials; the IDs and
// capabilities stay as they are.
func (tg *ThreadGroup) setFlag(set func(n *Creds)) {
	tg.fs.mu.Lock()
	defer tg.fs.mu.Unlock()
	n := *tg.fs.creds
	set(&n)
	tg.fs.creds = &n
}

// MaySignal checks that tg may send sig to target, as
// check_kill_permission does for a signal from user space: a real or
// effective uid matching the target's real or saved uid, CAP_KILL, or
// SIGCONT within the sender's session.
func (tg *ThreadGroup) MaySignal(target *ThreadGroup, sig int) error {
	if tg == target {
		return nil
	}
	c, tc := tg.Creds(), target.Creds()
	switch {
	case c.EUID == tc.SUID, c.EUID == tc.UID, c.UID == tc.SUID, c.UID == tc.UID, c.Capable(unix.CAP_KILL):
		return nil
	case sig == int(unix.SIGCONT) && tg.Session() == target.Session():
		return nil
	}
	return unix.EPERM
}

// User is the identity a program started from outside the sandbox runs as.
type User struct {
	UID, GID uint32
	// Groups are the supplementary groups.
	Groups []uint32
	// NoNewPrivs starts the program with PR_SET_NO_NEW_PRIVS set.
	NoNewPrivs bool
	// Caps, when set, are the program's capability sets in place of
	// those its UID gives.
	Caps *CapSets
}

// CapSets are a process's capability sets, bit n for capability n.
type CapSets struct {
	Effective, Permitted, Inheritable, Bounding uint64
}

// creds gives u's credentials: every ID set to u's, and u's capability
// sets, or else those of a program that root started as that user without
// file capabilities (all of them for uid 0, none otherwise). A nil User is
// root.
func (u *User) creds() *Creds {
	c := rootCreds()
	if u == nil {
		return c
	}
	c.UID, c.EUID, c.SUID, c.FSUID = u.UID, u.UID, u.UID, u.UID
	c.GID, c.EGID, c.SGID, c.FSGID = u.GID, u.GID, u.GID, u.GID
	c.Groups = slices.Clone(u.Groups)
	slices.Sort(c.Groups)
	c.Groups = slices.Compact(c.Groups)
	if u.UID != 0 {
		c.CapPermitted, c.CapEffective = 0, 0
	}
	if cs := u.Caps; cs != nil {
		c.CapEffective, c.CapPermitted = cs.Effective&CapFull, cs.Permitted&CapFull
		c.CapInheritable, c.CapBounding = cs.Inheritable&CapFull, cs.Bounding&CapFull
	}
	c.NoNewPrivs = u.NoNewPrivs
	c.fs = c.vfsCreds()
	return c
}
