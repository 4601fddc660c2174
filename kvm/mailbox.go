package kvm

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Request is a system call a guest posted to its vCPU's mailbox.
type Request struct {
	Nr   uint64
	Args [6]uint64
}

func (c *VCPU) slotWord(off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&c.slot()[off]))
}

// SetPolling tells the guest whether a host worker polls the mailbox, and
// how many pause iterations it may spin waiting before it exits instead.
func (c *VCPU) SetPolling(on bool, spinLimit uint32) {
	atomic.StoreUint32(c.slotWord(slotSpinLimit), max(spinLimit, 1))
	v := uint32(0)
	if on {
		v = 1
	}
	atomic.StoreUint32(c.slotWord(slotPolling), v)
}

// PostMask says, one bit per syscall number below PostableSyscalls, which
// calls the guest posts to the mailbox while a worker polls; the others
// take the exit at once.
type PostMask [PostableSyscalls / 64]uint64

// SetPostMask sets which syscall numbers the guest posts.
func (c *VCPU) SetPostMask(m *PostMask) {
	for i, w := range m {
		atomic.StoreUint64(c.postWord(i), w)
	}
}

// SetPosting sets whether the guest posts syscall nr (below
// PostableSyscalls).
func (c *VCPU) SetPosting(nr uint64, on bool) {
	bit := uint64(1) << (nr % 64)
	if on {
		atomic.OrUint64(c.postWord(int(nr/64)), bit)
	} else {
		atomic.AndUint64(c.postWord(int(nr/64)), ^bit)
	}
}

func (c *VCPU) postWord(i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&c.slot()[slotPostMask+8*i]))
}

// resetMailbox readies a vCPU for its next thread: its last one may have
// been killed with a request posted or completed and not yet collected,
// whose result must not become the next thread's.
func (c *VCPU) resetMailbox() {
	c.SetPolling(false, 1)
	c.SetPostMask(&PostMask{})
	atomic.StoreUint32(c.slotWord(slotMailbox), MailboxIdle)
	atomic.StoreUint32(c.slotWord(slotReturnExit), 0)
}

// Posted reports whether a request waits in the mailbox.
func (c *VCPU) Posted() bool {
	return atomic.LoadUint32(c.slotWord(slotMailbox)) == MailboxPosted
}

// TakeRequest claims a posted request for a worker and copies it out of
// guest memory once. The caller must then Complete or Decline it.
func (c *VCPU) TakeRequest(r *Request) bool {
	if !atomic.CompareAndSwapUint32(c.slotWord(slotMailbox), MailboxPosted, MailboxTaken) {
		return false
	}
	s := c.slot()
	r.Nr = binary.LittleEndian.Uint64(s[slotRequestNr:])
	for i := range r.Args {
		r.Args[i] = binary.LittleEndian.Uint64(s[slotRequestArgs+8*i:])
	}
	return true
}

// Complete publishes the result of a taken request.
func (c *VCPU) Complete(result uint64) {
	binary.LittleEndian.PutUint64(c.slot()[slotResult:], result)
	atomic.StoreUint32(c.slotWord(slotMailbox), MailboxDone)
}

// Decline hands a taken request back: the guest will exit and the vCPU's
// own thread serves it from the registers.
func (c *VCPU) Decline() {
	atomic.StoreUint32(c.slotWord(slotMailbox), MailboxDeclined)
}

// SettleMailbox is called at a syscall exit, with workers kept out. If a
// worker completed the request, it returns the result and true (write it
// to RAX); otherwise the request is withdrawn and the caller serves it from
// the registers. The mailbox is idle afterwards either way.
func (c *VCPU) SettleMailbox() (uint64, bool) {
	state := atomic.SwapUint32(c.slotWord(slotMailbox), MailboxIdle)
	if state != MailboxDone {
		return 0, false
	}
	return binary.LittleEndian.Uint64(c.slot()[slotResult:]), true
}
