package kernel

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/kvmbox/kvmbox/vfs"
)

func TestCredentialsFollowLinuxRules(t *testing.T) {
	tg, _ := newSignalTestProcess()
	c := tg.Creds()
	require.Equal(t, CapFull, c.CapEffective)
	require.Equal(t, uint32(0), c.fs.UID)

	// Root may switch its effective uid away and back, through the saved one.
	require.NoError(t, tg.SetRESUID(idUnchanged, 1000, idUnchanged))
	c = tg.Creds()
	require.Equal(t, [4]uint32{0, 1000, 0, 1000}, [4]uint32{c.UID, c.EUID, c.SUID, c.FSUID})
	require.Zero(t, c.CapEffective, "a non-zero euid has no effective capabilities")
	require.Equal(t, CapFull, c.CapPermitted, "the saved uid 0 keeps them permitted")
	require.Equal(t, uint32(1000), c.fs.UID, "file permission checks use the fsuid")
	require.Equal(t, DumpDisable, c.Dumpable)
	require.NoError(t, tg.SetREUID(idUnchanged, 0))
	require.Equal(t, CapFull, tg.Creds().CapEffective)

	require.NoError(t, tg.SetGroups([]uint32{9, 2}))
	require.Equal(t, []uint32{2, 9}, tg.Creds().Groups)
	require.ErrorIs(t, tg.SetGroups([]uint32{idUnchanged}), unix.EINVAL)

	// setreuid(1000, 1000) drops everything: no way back.
	require.NoError(t, tg.SetREUID(1000, 1000))
	c = tg.Creds()
	require.Equal(t, [3]uint32{1000, 1000, 1000}, [3]uint32{c.UID, c.EUID, c.SUID})
	require.Zero(t, c.CapPermitted)
	require.ErrorIs(t, tg.SetUID(0), unix.EPERM)
	require.ErrorIs(t, tg.SetRESUID(0, idUnchanged, idUnchanged), unix.EPERM)
	require.ErrorIs(t, tg.SetGroups(nil), unix.EPERM)
	require.ErrorIs(t, tg.SetCaps(1, 1, 0), unix.EPERM)
	require.Equal(t, uint32(1000), tg.SetFSUID(0), "setfsuid returns the old value even when refused")
	require.Equal(t, uint32(1000), tg.Creds().FSUID)
	require.ErrorIs(t, tg.SetUID(idUnchanged), unix.EINVAL)
	require.NoError(t, tg.SetUID(1000))
}

func TestKeepCapsAndExec(t *testing.T) {
	tg, _ := newSignalTestProcess()
	tg.SetKeepCaps(true)
	require.NoError(t, tg.SetRESUID(1000, 1000, 1000))
	c := tg.Creds()
	require.Equal(t, CapFull, c.CapPermitted, "PR_SET_KEEPCAPS keeps the permitted set")
	require.Zero(t, c.CapEffective)
	tg.execCreds()
	c = tg.Creds()
	require.Zero(t, c.CapPermitted, "a non-root program starts without capabilities")
	require.False(t, c.KeepCaps, "exec ends PR_SET_KEEPCAPS")
	require.Equal(t, DumpUser, c.Dumpable)

	// capset only drops.
	root, _ := newSignalTestProcess()
	require.NoError(t, root.SetCaps(1<<unix.CAP_CHOWN, 1<<unix.CAP_CHOWN|1<<unix.CAP_KILL, 0))
	require.ErrorIs(t, root.SetCaps(1<<unix.CAP_SETUID, 1<<unix.CAP_SETUID, 0), unix.EPERM)
	require.ErrorIs(t, root.SetCaps(1<<unix.CAP_KILL|1<<unix.CAP_FOWNER, 1<<unix.CAP_KILL, 0), unix.EPERM)
	root.execCreds()
	require.Equal(t, CapFull, root.Creds().CapEffective, "root's program gets every capability back")

	tg.SetNoNewPrivs()
	require.True(t, tg.Creds().NoNewPrivs)
	tg.execCreds()
	require.True(t, tg.Creds().NoNewPrivs, "never cleared")
}

// The file-system view of the credentials carries the capabilities, so a
// dropped one stops bypassing file permissions at once; signals and
// resource limits follow CAP_KILL and CAP_SYS_RESOURCE.
func TestCapabilitiesReachPermissionChecks(t *testing.T) {
	tg, task := newSignalTestProcess()
	require.Equal(t, CapFull, tg.Creds().fs.Caps)
	require.NoError(t, tg.SetCaps(CapFull&^(1<<unix.CAP_DAC_OVERRIDE), CapFull, 0))
	fs := tg.Creds().fs
	require.False(t, fs.Capable(unix.CAP_DAC_OVERRIDE))
	require.True(t, fs.Capable(unix.CAP_DAC_READ_SEARCH))
	require.Equal(t, CapFull, fs.Permitted)
	require.Same(t, fs, vfs.CredentialsFrom(task.Context()), "a write's context carries them too")

	other, _ := newSignalTestProcess()
	require.NoError(t, other.SetRESUID(2000, 2000, 2000))
	require.NoError(t, tg.MaySignal(other, int(unix.SIGTERM)))
	require.NoError(t, tg.SetCaps(0, CapFull, 0))
	require.ErrorIs(t, tg.MaySignal(other, int(unix.SIGTERM)), unix.EPERM)
	require.NoError(t, tg.MaySignal(tg, int(unix.SIGTERM)))

	l, ok := tg.Limit(unix.RLIMIT_NOFILE)
	require.True(t, ok)
	l.Max--
	l.Cur = l.Max
	require.NoError(t, tg.SetLimit(unix.RLIMIT_NOFILE, l))
	l.Max++
	require.ErrorIs(t, tg.SetLimit(unix.RLIMIT_NOFILE, l), unix.EPERM)
}
