package kvmbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// busyboxNetworkScript has busybox's httpd serve files to its wget and
// two nc pass data both ways, all on 127.0.0.1. It retries each first
// connection until the server listens, and prints no ports, pids or times.
const busyboxNetworkScript = `
mkdir www
echo 'hello from httpd' > www/index.html
"$BB" seq 1 20000 > www/big.txt
"$BB" httpd -f -p 127.0.0.1:8080 -h www &
httpd=$!
i=0
until "$BB" wget -q -O /dev/null http://127.0.0.1:8080/index.html 2>/dev/null; do
	i=$((i+1)); [ $i -lt 200 ] || { echo httpd never answered; break; }
	"$BB" sleep 0.05
done
"$BB" wget -q -O - http://127.0.0.1:8080/index.html
"$BB" wget -q -O - http://127.0.0.1:8080/big.txt | "$BB" md5sum
"$BB" wget -q -O got.txt http://127.0.0.1:8080/big.txt && "$BB" cmp got.txt www/big.txt && echo big.txt whole
"$BB" wget -q -O - http://127.0.0.1:8080/nosuch 2>&1; echo "wget of a missing page: $?"
kill $httpd; wait $httpd 2>/dev/null; echo "httpd ended: $?"

echo from the server | "$BB" nc -l -p 9000 127.0.0.1 > server.got &
server=$!
i=0
until echo from the client | "$BB" nc 127.0.0.1 9000 > client.got 2>/dev/null; do
	i=$((i+1)); [ $i -lt 200 ] || { echo nc never connected; break; }
	"$BB" sleep 0.05
done
wait $server; echo "nc listener ended: $?"
echo "server got: $(cat server.got)"; echo "client got: $(cat client.got)"

# The listener's input, a FIFO in /tmp (the sandbox's tmpfs), stays open
# until the upload is in: busybox nc quits at the end of either direction.
"$BB" seq 1 100000 > upload
fifos=$("$BB" mktemp -d)
"$BB" mkfifo $fifos/hold
"$BB" nc -l -p 9001 127.0.0.1 < $fifos/hold > uploaded &
server=$!
exec 3> $fifos/hold
i=0
until "$BB" nc 127.0.0.1 9001 < upload 2>/dev/null; do
	i=$((i+1)); [ $i -lt 200 ] || { echo nc never connected; break; }
	"$BB" sleep 0.05
done
wait $server; echo "nc listener ended: $?"
exec 3>&-
rm -r $fifos
"$BB" cmp upload uploaded && echo upload whole
`

// TestBusyboxNetworkMatchesLinux runs busybox httpd, wget and nc talking
// to each other over loopback in one sandbox, and natively in a network
// namespace of their own (unshare -n, loopback up; it needs root), and
// compares what the script prints and how it ends.
func TestBusyboxNetworkMatchesLinux(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	unshare := kvmtest.RequireTool(t, "unshare")
	timeout := kvmtest.Slowed(time.Minute)
	env := append([]string{"BB=" + busybox}, testEnv...)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	native := exec.CommandContext(ctx, unshare, "-n", busybox, "sh", "-c",
		`"$BB" ip link set lo up && exec "$BB" sh -c "$0"`, busyboxNetworkScript)
	native.Dir, native.Env = t.TempDir(), env
	var stdout, stderr bytes.Buffer
	native.Stdout, native.Stderr = &stdout, &stderr
	err := native.Run()
	require.NoError(t, ctx.Err(), "the script did not finish natively")
	require.NoError(t, err, "%s", stderr.String())
	want := outcome{Stdout: stdout.String(), Stderr: stderr.String()}
	require.Contains(t, want.Stdout, "upload whole", "the script must work natively")

	work := t.TempDir()
	for _, exitPath := range []bool{false, true} {
		t.Run(fmt.Sprintf("exitpath=%v", exitPath), func(t *testing.T) {
			// A fresh directory, at the same path inside as outside.
			dir := filepath.Join(work, strconv.FormatBool(exitPath))
			require.NoError(t, os.Mkdir(dir, 0o755))
			sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath, Mounts: []kvmbox.Mount{{Source: dir, Target: dir}}})
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			got, _ := invocation{Path: busybox, Args: []string{"sh", "-c", busyboxNetworkScript}, Dir: dir, Env: env}.sandboxed(t, sb, ctx)
			require.NoError(t, ctx.Err(), "the script did not finish in the sandbox: %+v", got)
			require.Equal(t, want, got)
		})
	}
}

// TestTCPBulkMatchesLinux runs tcpbulk.c natively and in the sandbox:
// megabytes through one connection with large and scattered buffers,
// which TCP sends and receives move straight between the stack and guest
// memory, and a receive into memory a fork made copy-on-write.
func TestTCPBulkMatchesLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				requireMatchesLinux(t, sb, invocation{Path: kvmtest.Guest(t, tc, "tcpbulk.c")}, time.Minute)
			})
		}
	}
}
