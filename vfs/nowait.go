package vfs

import (
	"context"
	"errors"
)

// ErrWouldWait is what an operation returns instead of waiting when its
// context says it must not wait (see NoWait): nothing has changed, and the
// caller runs it again where waiting is allowed.
var ErrWouldWait = errors.New("vfs: the operation would have to wait")

type noWaitKey struct{}

// NoWait marks ctx for callers that must never wait: the kernel's exitless
// worker serves many vCPUs and would stall them all.
func NoWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitKey{}, true)
}

// MustNotWait reports whether ctx was marked by NoWait.
func MustNotWait(ctx context.Context) bool {
	v, _ := ctx.Value(noWaitKey{}).(bool)
	return v
}
