package kvmbox_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kvmbox/kvmbox"
	"github.com/kvmbox/kvmbox/internal/kvmtest"
	"github.com/stretchr/testify/require"
)

// inNetns is inv as run natively in a network namespace of its own
// with lo up and ping sockets open to every group: the network a sandbox
// has. Making one takes root.
func inNetns(t *testing.T, inv invocation) invocation {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root, which a network namespace takes")
		}
		t.Skip("a network namespace takes root")
	}
	unshare := kvmtest.RequireTool(t, "unshare")
	kvmtest.RequireTool(t, "ip")
	n := inv
	n.Path = unshare
	n.Args = append([]string{"-n", "/bin/sh", "-c", `ip link set lo up && echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range && exec "$@"`, "sh", inv.Path}, inv.Args...)
	return n
}

// requireMatchesNetns runs inv natively in a network namespace with
// only lo and in sb, and requires the same outcome.
func requireMatchesNetns(t *testing.T, sb *kvmbox.Sandbox, inv invocation) {
	t.Helper()
	timeout := kvmtest.Slowed(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	native := inNetns(t, inv)
	want := native.native(t, ctx)
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, _ := inv.sandboxed(t, sb, ctx)
	require.NoError(t, ctx.Err(), "%s %q did not finish in the sandbox: %+v", inv.Path, inv.Args, got)
	require.Equal(t, want, got, "%s %q", inv.Path, inv.Args)
}

// TestNetworkConfigurationMatchesLinux runs netconf.c natively in a
// network namespace holding only lo and in the sandbox, with glibc and
// musl: NETLINK_ROUTE sockets and their dumps, getifaddrs, if_nameindex,
// getaddrinfo with AI_ADDRCONFIG, the interface and queue ioctls, and
// TCP_INFO, /proc/net and ping sockets, through both ways a system call
// reaches the kernel.
func TestNetworkConfigurationMatchesLinux(t *testing.T) {
	for _, exitPath := range []bool{false, true} {
		sb := newSandbox(t, kvmbox.Config{ExitPathOnly: exitPath})
		for _, tc := range bothLibcs {
			t.Run(fmt.Sprintf("exitpath=%v/%s", exitPath, tc), func(t *testing.T) {
				requireMatchesNetns(t, sb, invocation{Path: kvmtest.Guest(t, tc, "netconf.c")})
			})
		}
	}
}

// TestIPCommandMatchesLinux runs Debian's ip (iproute2), which reads
// links, addresses and routes over netlink with strict checking, and
// busybox's ifconfig, which reads them with ioctls and /proc/net/dev.
func TestIPCommandMatchesLinux(t *testing.T) {
	requireHostPrograms(t, "/usr/sbin/ip", "/bin/busybox")
	sb := newSandbox(t, kvmbox.Config{HostUserland: true})
	for _, args := range [][]string{
		{"/usr/sbin/ip", "addr"},
		{"/usr/sbin/ip", "link"},
		{"/usr/sbin/ip", "-o", "addr", "show", "dev", "lo"},
		{"/usr/sbin/ip", "-4", "addr", "show", "scope", "host"},
		{"/usr/sbin/ip", "link", "show", "lo"},
		{"/usr/sbin/ip", "link", "show", "eth9"},
		{"/usr/sbin/ip", "route"},
		{"/usr/sbin/ip", "-6", "route"},
		{"/usr/sbin/ip", "route", "show", "table", "all"},
		{"/usr/sbin/ip", "route", "show", "table", "local"},
		{"/usr/sbin/ip", "-d", "-j", "addr"},
		{"/bin/busybox", "ifconfig"},
		{"/bin/busybox", "ifconfig", "lo"},
		{"/bin/busybox", "ip", "addr"},
		{"/bin/busybox", "ip", "route"},
		{"/usr/bin/python3", "-c", netstatScript},
		{"/bin/cat", "/proc/sys/net/ipv4/ping_group_range"},
	} {
		name := strings.Join(args, " ")
		if args[0] == "/usr/bin/python3" {
			name = "busybox netstat"
		}
		t.Run(name, func(t *testing.T) {
			requireMatchesNetns(t, sb, invocation{Path: args[0], Args: args[1:], Env: userlandEnv})
		})
	}
}

// netstatScript opens TCP and UDP sockets on fixed ports and lists them
// with busybox netstat, which reads /proc/net, sorted: Linux lists them
// in hash order.
const netstatScript = `
import socket, subprocess
l = socket.socket()
l.bind(("127.0.0.1", 7777))
l.listen(5)
c = socket.socket()
c.bind(("127.0.0.1", 7780))
c.connect(("127.0.0.1", 7777))
a, _ = l.accept()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 7778))
l6 = socket.socket(socket.AF_INET6)
l6.bind(("::1", 7779))
l6.listen(1)
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u6.bind(("::", 7781))
for args in (["-ant"], ["-anu"], ["-lnt"], ["-rn"]):
    out = subprocess.run(["/bin/busybox", "netstat"] + args, capture_output=True, text=True).stdout
    lines = out.splitlines()
    print("\n".join(lines[:2] + sorted(lines[2:])))
`
