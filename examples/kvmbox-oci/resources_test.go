package main

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

// Docker's update sends every resource, zero when not asked for: update
// takes zero as unchanged, as runc's does, and so applies the pids limit
// alone.
func TestUpdateTakesZeroAsUnchanged(t *testing.T) {
	const docker = `{"memory":{"limit":0,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0,"swappiness":0},
		"cpu":{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":""},
		"pids":{"limit":32},"blockIO":{"weight":0}}`
	var r specs.LinuxResources
	require.NoError(t, json.Unmarshal([]byte(docker), &r))
	var asIs plan
	require.ErrorContains(t, asIs.addResources(&r), "linux.resources.memory.kernel", "create refuses a kernel memory limit, even 0")
	dropUnchanged(&r)
	var asked plan
	require.NoError(t, asked.addResources(&r))
	require.Equal(t, 32, asked.sandbox.MaxTasks)
	require.Zero(t, asked.sandbox.Memory)
	require.Nil(t, r.Memory.Kernel)
	require.Nil(t, r.CPU.Quota)

	r = specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: new(int64(50000))}}
	dropUnchanged(&r)
	require.ErrorContains(t, asked.addResources(&r), "linux.resources.cpu.quota", "a quota asked for is refused")
}
