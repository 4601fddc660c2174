package kvmbox_test

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// pingTimes are the round-trip times busybox ping prints, which differ
// between runs.
var pingTimes = regexp.MustCompile(`time=[0-9.]+ ms|= [0-9.]+/[0-9.]+/[0-9.]+ ms`)

// TestBusyboxPingRawSocketMatchesLinux runs busybox ping, which sends
// ICMP echo requests on a raw socket (SOCK_RAW, IPPROTO_ICMP) and reads
// the TTL from the IP header of each reply, as root natively in a
// network namespace and in the sandbox, and compares the output but for
// the times; without CAP_NET_RAW the socket is refused in both.
func TestBusyboxPingRawSocketMatchesLinux(t *testing.T) {
	busybox := kvmtest.RequireTool(t, "busybox")
	args := []string{"ping", "-c", "2", "-W", "1", "127.0.0.1"}
	sb := newSandbox(t, kvmbox.Config{})
	normalize := func(o outcome) outcome {
		o.Stdout = pingTimes.ReplaceAllString(o.Stdout, "(time)")
		return o
	}
	want := normalize(inNetns(t, invocation{Path: busybox, Args: args}).native(t, context.Background()))
	require.Equal(t, 0, want.Code, "%+v", want)
	got, _ := runSandboxed(t, sb, context.Background(), busybox, args, "")
	require.Equal(t, want, normalize(got))

	setpriv := kvmtest.RequireTool(t, "setpriv")
	nobody := []string{"--reuid", "65534", "--regid", "65534", "--clear-groups", busybox}
	want = normalize(invocation{Path: setpriv, Args: append(nobody, args...)}.native(t, context.Background()))
	require.NotEqual(t, 0, want.Code, "%+v", want)
	cmd := sb.Command(context.Background(), busybox, args...)
	cmd.UID, cmd.GID = 65534, 65534
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	p, err := cmd.Start()
	require.NoError(t, err)
	state := p.Wait()
	require.Equal(t, want, normalize(outcome{Stdout: out.String(), Stderr: errOut.String(), Code: state.ExitCode()}))
}
