package kvmbox_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// TestPageCacheMappingsMatchLinux runs pagecache.c over a writable host
// directory: private mappings copy on write whatever shares their pages
// (other mappings, the file, a forked child), files and programs
// rewritten in place show their new contents to new mappings and execs,
// and shared mappings of a host file agree with its reads and writes and
// reach the host file, which must end as it does natively.
func TestPageCacheMappingsMatchLinux(t *testing.T) {
	for _, tc := range bothLibcs {
		t.Run(string(tc), func(t *testing.T) {
			path := kvmtest.Guest(t, tc, "pagecache.c")
			native := t.TempDir()
			want := runNative(t, path, []string{native}, "")
			dir := t.TempDir()
			sb := newSandbox(t, kvmbox.Config{Mounts: []kvmbox.Mount{{Source: dir, Target: dir}}})
			got, state := runSandboxed(t, sb, context.Background(), path, []string{dir}, "")
			require.Nil(t, state.Crash())
			require.Equal(t, want, got)
			require.NotZero(t, sb.Stats().PageCacheHits, "the second exec of the copied program")
			wantFile, err := os.ReadFile(filepath.Join(native, "shared"))
			require.NoError(t, err)
			gotFile, err := os.ReadFile(filepath.Join(dir, "shared"))
			require.NoError(t, err)
			require.Equal(t, wantFile, gotFile, "the host file written through shared mappings")
		})
	}
}

// TestSecondExecCopiesNothing executes a dynamically linked program again
// and again: after the first time every page of it, of ld.so and of libc
// comes from the page cache, and twenty copies running at once share them.
func TestSecondExecCopiesNothing(t *testing.T) {
	path := kvmtest.Guest(t, kvmtest.GCCDynamic, "pagecache.c")
	sb := dynamicSandbox(t)
	mark := func() {
		t.Helper()
		got, state := runSandboxed(t, sb, context.Background(), path, []string{"mark"}, "")
		require.Nil(t, state.Crash())
		require.Equal(t, "PAGECACHE-MARK-1\n", got.Stdout)
	}
	mark()
	first := sb.Stats()
	require.NotZero(t, first.FileBytesCopied)
	mark()
	second := sb.Stats()
	require.Equal(t, first.FileBytesCopied, second.FileBytesCopied, "bytes copied from files by the second exec")
	require.Greater(t, second.PageCacheHits, first.PageCacheHits)

	libc, err := os.Stat("/lib/x86_64-linux-gnu/libc.so.6")
	require.NoError(t, err)
	const copies = 20
	ctx, cancel := context.WithTimeout(context.Background(), kvmtest.Slowed(60*time.Second))
	defer cancel()
	stdin, hold := io.Pipe()
	out, stdout := io.Pipe()
	cmd := sb.Command(ctx, path, "spawn", "20")
	cmd.Stdin, cmd.Stdout = stdin, stdout
	p, err := cmd.Start()
	require.NoError(t, err)
	lines := bufio.NewScanner(out)
	require.True(t, lines.Scan())
	require.Equal(t, "ready", lines.Text())
	running := sb.Stats()
	t.Logf("%d processes: %d KiB more guest memory; page cache %d KiB; libc %d KiB", copies,
		(running.GuestResidentBytes-second.GuestResidentBytes)>>10, running.PageCacheBytes>>10, libc.Size()>>10)
	require.Equal(t, first.FileBytesCopied, running.FileBytesCopied, "bytes copied from files by %d more execs", copies)
	// Each process has its own stack, heap, page tables and copies of the
	// pages it writes, but libc's code only once.
	require.Less(t, running.GuestResidentBytes-second.GuestResidentBytes, uint64(copies)*uint64(libc.Size())/2,
		"guest memory of %d processes running a program linked with libc", copies)
	hold.Close()
	require.True(t, lines.Scan())
	require.Equal(t, "done", lines.Text())
	go io.Copy(io.Discard, out)
	require.Equal(t, 0, p.Wait().ExitCode())
}

// TestSqliteWALOnAHostMount runs the host's sqlite3 in WAL mode, whose
// shared-memory index is a MAP_SHARED mapping of a host file, on a
// writable mount, session after session as natively, and then reads the
// database natively.
func TestSqliteWALOnAHostMount(t *testing.T) {
	sqlite := kvmtest.RequireTool(t, "sqlite3")
	dir, native := t.TempDir(), t.TempDir()
	var mounts []kvmbox.Mount
	for _, lib := range []string{"/lib", "/lib64", "/usr"} {
		if _, err := os.Stat(lib); err == nil {
			mounts = append(mounts, kvmbox.Mount{Source: lib, Target: lib, ReadOnly: true})
		}
	}
	sb := newSandbox(t, kvmbox.Config{Mounts: append(mounts, kvmbox.Mount{Source: dir, Target: dir})})
	sessions := []string{
		"PRAGMA journal_mode=WAL; create table t(a, b); insert into t values (1, 'one'), (2, 'two');",
		"insert into t select a + 10, b || 'x' from t; select count(*), sum(a) from t;",
		"begin; update t set b = upper(b) where a > 10; commit; select * from t order by a;",
		"PRAGMA wal_checkpoint(TRUNCATE); select group_concat(b) from t;",
	}
	for _, sql := range sessions {
		want := invocation{Path: sqlite, Args: []string{"-batch", "-init", "/dev/null", "db", sql}, Dir: native}.native(t, context.Background())
		got, state := invocation{Path: sqlite, Args: []string{"-batch", "-init", "/dev/null", "db", sql}, Dir: dir}.sandboxed(t, sb, context.Background())
		require.Nil(t, state.Crash())
		require.Equal(t, want, got, sql)
	}
	query := "PRAGMA integrity_check; select * from t order by a;"
	want := invocation{Path: sqlite, Args: []string{filepath.Join(native, "db"), query}}.native(t, context.Background())
	got := invocation{Path: sqlite, Args: []string{filepath.Join(dir, "db"), query}}.native(t, context.Background())
	require.Equal(t, want, got, "the database the sandbox wrote, read natively")
}

// TestHostChangesReachThePageCache changes a program on the host, in
// place, between two execs in a sandbox: the second runs the new bytes.
func TestHostChangesReachThePageCache(t *testing.T) {
	built, err := os.ReadFile(kvmtest.Guest(t, kvmtest.GCC, "pagecache.c"))
	require.NoError(t, err)
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	require.NoError(t, os.WriteFile(prog, built, 0o755))
	sb := newSandbox(t, kvmbox.Config{Mounts: []kvmbox.Mount{{Source: dir, Target: dir, ReadOnly: true}}})
	mark := func(want string) {
		t.Helper()
		got, state := runSandboxed(t, sb, context.Background(), prog, []string{"mark"}, "")
		require.Nil(t, state.Crash())
		require.Equal(t, want+"\n", got.Stdout)
	}
	mark("PAGECACHE-MARK-1")
	copied := sb.Stats().FileBytesCopied
	mark("PAGECACHE-MARK-1")
	require.Equal(t, copied, sb.Stats().FileBytesCopied)

	at := bytes.Index(built, []byte("PAGECACHE-MARK-1"))
	require.Positive(t, at)
	f, err := os.OpenFile(prog, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("2"), int64(at+len("PAGECACHE-MARK-")))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	mark("PAGECACHE-MARK-2")
	require.Greater(t, sb.Stats().FileBytesCopied, copied, "the changed program is read again")
}

// TestPageCacheGivesWayToPrograms fills most of a small sandbox's memory
// with the page cache, by reading a large host file through a private
// mapping, and then runs a program that needs that memory.
func TestPageCacheGivesWayToPrograms(t *testing.T) {
	path := kvmtest.Guest(t, kvmtest.GCC, "pagecache.c")
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte{1}, 40<<20), 0o644))
	sb := newSandbox(t, kvmbox.Config{Memory: 64 << 20, Mounts: []kvmbox.Mount{{Source: dir, Target: dir, ReadOnly: true}}})
	got, state := runSandboxed(t, sb, context.Background(), path, []string{"sum", big}, "")
	require.Nil(t, state.Crash())
	require.Equal(t, "sum 41943040\n", got.Stdout)
	require.GreaterOrEqual(t, sb.Stats().PageCacheBytes, uint64(40<<20), "the file stays cached")

	got, state = runSandboxed(t, sb, context.Background(), path, []string{"alloc", "48"}, "")
	require.Nil(t, state.Crash())
	require.Equal(t, "allocated 48 MiB\n", got.Stdout, got.Stderr)
	require.Less(t, sb.Stats().PageCacheBytes, uint64(40<<20), "the cache gave memory back")
}
