package kvmbox_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// shellScripts are run by busybox sh -c in a fresh, empty directory, with
// $BB the path of busybox and $SPAWNS a number of processes to start in
// a loop (smaller under emulation, where each takes far longer). They print no pids or times, so that a native
// run and a sandboxed one print the same.
var shellScripts = []struct{ name, script string }{
	{"pipeline", `echo a b c | tr ' ' '\n' | sort -r | head -2`},
	{"pipeline status", `false | true; echo $?; true | false; echo $?; echo x | grep -q y || echo no match`},
	{"subshell", `( cd /; pwd ); [ "$(pwd)" != / ] && echo cwd kept; x=1; (x=2; exit 3); echo "$? $x"`},
	{"command substitution", "a=$(echo inner | tr a-z A-Z); b=`echo back`; echo \"$a $b $(echo $(echo nested))\"; echo lines $(printf 'x\\ny\\n' | wc -l)"},
	{"redirections", `echo one > f; echo two >> f; cat < f
ls nosuch 2>&1 | tr a-z A-Z
{ echo out; echo err >&2; } > both 2>&1; cat both
echo 0123456789 > rw; printf XY 1<>rw; cat rw; cat <>rw
exec 3>g; echo via3 >&3; exec 3>&-; cat g`},
	{"here documents", `x=world
cat <<EOF
hello $x $((1+2)) $(echo sub)
EOF
cat <<'EOF'
literal $x $(echo no)
EOF
cat <<-EOF
		tabs stripped $x
	EOF
tr a-z A-Z <<EOF | rev
piped $x
EOF`},
	{"trap USR1", `trap 'echo got USR1' USR1; kill -USR1 $$; echo after`},
	{"trap EXIT", `(trap 'echo subshell bye' EXIT; echo subshell); trap 'echo bye $?' EXIT; echo main; exit 4`},
	{"background wait", `sleep 0.1 & wait $!; echo $?; (exit 5) & wait $!; echo $?; true & false & wait; echo all $?`},
	// Whether wait reports "Terminated" depends on whether the shell
	// reaped the job before wait ran, a race natively too.
	{"kill background", `sleep 5 & kill -TERM $!; wait $! 2>/dev/null; echo $?`},
	{"xargs", `printf '1\n2\n3\n' | xargs -n1 echo n`},
	{"find exec", `mkdir -p t/u; echo A > t/a.txt; echo B > t/u/b.txt; echo C > t/c.md
find t -name '*.txt' -exec cat {} \; | sort`},
	{"timeout", `timeout 1 "$BB" sleep 5; echo $?`},
	{"sleep", `sleep 0.05; echo slept`},
	{"exit 3", `echo bye; exit 3`},
	{"false status", `false; echo $?; ! true; echo $?; sh -c 'exit 300'; echo $?`},
	{"kill -KILL self", `echo before; kill -KILL $$; echo never`},
	{"kill -SEGV self", `kill -SEGV $$`},
	{"child killed by SEGV", `sh -c 'kill -SEGV $$'; echo $?`},
	{"read from a pipe", `printf 'x y z\nsecond\n' | { read a b; echo "a=$a b=$b"; read c; echo "c=$c"; }
printf 'one\ntwo\n' | while read l; do echo "got $l"; done`},
	{"while loop spawning", `i=0; while [ $i -lt $SPAWNS ]; do "$BB" true || exit 1; i=$((i+1)); done; echo $i`},
	{"set -e", `set -e; false || echo handled; if false; then :; fi; ( false ) || echo subshell failed; echo one; false; echo never`},
	{"exec", `exec "$BB" echo replaced; echo never`},
	{"shebang script", `printf '#!%s sh\necho "script $# $1"\nexit 5\n' "$BB" > s; chmod +x s; ./s arg; echo $?
printf 'echo no shebang\n' > n; chmod +x n; ./n; echo $?`},
	{"ulimit", `ulimit -n 64; ulimit -n; ulimit -Sn 32; ulimit -n; ulimit -Hn
exec 20>/dev/null && echo fd 20 opened; (exec 40>/dev/null) || echo fd 40 refused $?`},
	{"umask", `umask 027; umask; : > f; mkdir d; stat -c '%a %n' f d; (umask 077; umask); umask`},
	{"cd", `top=$PWD; mkdir -p a/b; cd a/b; echo "${PWD#$top}"; cd ../..; [ "$PWD" = "$top" ] && echo back; cd /dev && pwd; cd nosuch; echo $?`},
	{"pids", `[ $$ -gt 0 ] && echo pid; [ $PPID -ge 0 ] && echo ppid; [ "$(echo $$)" = $$ ] && echo subshell keeps pid
[ "$(sh -c 'echo $PPID')" = $$ ] && echo child of the shell`},
}

// TestShellScriptsMatchLinux runs busybox sh scripts natively and in the
// sandbox, each in a directory of its own, mounted from the host at the
// same path, and compares what they print and how they end.
func TestShellScriptsMatchLinux(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	native, inside := t.TempDir(), t.TempDir()
	sb := newSandbox(t, kvmbox.Config{Mounts: []kvmbox.Mount{{Source: inside, Target: native}}})
	// Start exposes busybox at its host path, where $BB and #! name it.
	spawns := 200
	if kvmtest.Emulated() {
		spawns = 20
	}
	env := append([]string{"BB=" + busybox, "SPAWNS=" + strconv.Itoa(spawns)}, testEnv...)
	for i, c := range shellScripts {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(native, strconv.Itoa(i))
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.Mkdir(filepath.Join(inside, strconv.Itoa(i)), 0o755))
			requireMatchesLinux(t, sb, invocation{Path: busybox, Args: []string{"sh", "-c", c.script}, Dir: dir, Env: env}, 20*time.Second)
		})
	}
}
