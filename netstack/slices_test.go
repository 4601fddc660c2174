package netstack

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSlicesReaderReadsInOrderFromAnOffset(t *testing.T) {
	bufs := [][]byte{[]byte("ab"), nil, []byte("cde"), []byte("f")}
	r := newSlicesReader(bufs, 1)
	require.Equal(t, 5, r.Len())
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "bcdef", string(got))
	require.Equal(t, 0, r.Len())
	require.Equal(t, "ab", string(bufs[0]), "the caller's slices are left alone")
	require.Equal(t, 0, newSlicesReader(bufs, 6).Len())
}

func TestSlicesWriterFillsInOrderAndSaysWhenShort(t *testing.T) {
	a, b := make([]byte, 2), make([]byte, 3)
	w := newSlicesWriter(a, nil, b)
	n, err := w.Write([]byte("xyz"))
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = w.Write([]byte("1234"))
	require.ErrorIs(t, err, io.ErrShortWrite)
	require.Equal(t, 2, n)
	require.Equal(t, "xy", string(a))
	require.Equal(t, "z12", string(b))
}

// lendingFiller records how the stack uses a Filler: memory is lent in
// Write and must be given back by Done before the receive waits again
// or returns.
type lendingFiller struct {
	slicesWriter
	lent, lends int
}

func (f *lendingFiller) Write(p []byte) (int, error) {
	if f.lent == 0 {
		f.lends++
	}
	f.lent++
	return f.slicesWriter.Write(p)
}

func (f *lendingFiller) Done() { f.lent = 0 }

func TestInetRecvIntoGivesMemoryBackAfterEachRead(t *testing.T) {
	st := NewStack()
	defer st.Close()
	ctx := context.Background()
	c, a := tcpPair(t, st)

	dst := make([]byte, 8)
	f := &lendingFiller{slicesWriter: *newSlicesWriter(dst[:3], dst[3:])}
	_, err := a.RecvInto(ctx, f, len(dst), RecvOptions{Nonblock: true})
	require.Equal(t, unix.EAGAIN, err)
	require.Zero(t, f.lends, "nothing lent while there is nothing to read")

	_, err = c.Send(ctx, []byte("abcd"), SendOptions{})
	require.NoError(t, err)
	done := make(chan RecvResult, 1)
	go func() {
		r, err := a.RecvInto(ctx, f, len(dst), RecvOptions{WaitAll: true})
		require.NoError(t, err)
		done <- r
	}()
	_, err = c.Send(ctx, []byte("efgh"), SendOptions{})
	require.NoError(t, err)
	r := <-done
	require.Equal(t, 8, r.N)
	require.Equal(t, "abcdefgh", string(dst))
	require.Zero(t, f.lent, "the memory is given back when the receive returns")
	require.GreaterOrEqual(t, f.lends, 1)
}
