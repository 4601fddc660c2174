package kernel

// The range of nice values (setpriority clamps to it).
const (
	MinNice = -20
	MaxNice = 19
)

// Nice returns t's nice value (getpriority, /proc/PID/stat). It is kept
// and reported; the host threads that run the guest are not
// rescheduled by it.
func (t *Task) Nice() int {
	t.tg.mu.Lock()
	defer t.tg.mu.Unlock()
	return t.nice
}

// SetNice sets t's nice value, which the caller has checked and clamped.
func (t *Task) SetNice(n int) {
	t.tg.mu.Lock()
	t.nice = n
	t.tg.mu.Unlock()
}

// Threads returns tg's live threads.
func (tg *ThreadGroup) Threads() []*Task {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := make([]*Task, 0, len(tg.tasks))
	for _, t := range tg.tasks {
		out = append(out, t)
	}
	return out
}

// leaderNice is the nice value of the thread-group leader, which
// /proc/PID/stat shows; 0 once it is gone.
func (tg *ThreadGroup) leaderNice() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if t := tg.tasks[tg.pid]; t != nil {
		return t.nice
	}
	return 0
}
