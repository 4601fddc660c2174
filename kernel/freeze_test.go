package kernel

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFreezerWaitsForTasksToLeaveTheGuest: freeze returns only once every
// task in the guest has left it, and a task parks at enter until thaw.
func TestFreezerWaitsForTasksToLeaveTheGuest(t *testing.T) {
	f := newFreezer()
	never := make(chan struct{})
	require.True(t, f.enter(never))
	kicked := make(chan struct{})
	frozen := make(chan bool)
	go func() { frozen <- f.freeze(func() { close(kicked) }) }()
	<-kicked
	select {
	case <-frozen:
		t.Fatal("freeze returned while a task was in the guest")
	default:
	}
	f.leave()
	require.True(t, <-frozen)
	require.True(t, f.isFrozen())
	require.False(t, f.freeze(func() {}), "a second freeze fails")

	entered := make(chan bool)
	go func() { entered <- f.enter(never) }()
	select {
	case <-entered:
		t.Fatal("a task entered the guest while frozen")
	default:
	}
	require.True(t, f.thaw())
	require.True(t, <-entered, "thaw lets the parked task in")
	f.leave()
	require.False(t, f.thaw(), "a second thaw fails")
}

// TestFreezerLetsAnExitingTaskGo: a parked task whose process ends stops
// waiting without entering the guest.
func TestFreezerLetsAnExitingTaskGo(t *testing.T) {
	f := newFreezer()
	require.True(t, f.freeze(func() {}))
	gone := make(chan struct{})
	entered := make(chan bool)
	go func() { entered <- f.enter(gone) }()
	close(gone)
	require.False(t, <-entered)
	require.Equal(t, 0, f.inGuest)
}
