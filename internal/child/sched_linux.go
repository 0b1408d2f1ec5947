package child

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// Linux's scheduling policies (sched(7)).
const (
	schedOther = 0
	schedBatch = 3
	schedIdle  = 5
)

// idleNice is the niceness used where SCHED_IDLE is refused: the thread
// still gets about 1.5 % of a busy core.
const idleNice = 19

// Background puts the collector behind the job in the scheduler: every
// thread of the process runs SCHED_BATCH from now on, and so does every
// thread it starts later (a thread inherits its creator's policy). A batch
// thread gets its fair share of the CPU, but it does not preempt the task
// running where it wakes up: the Go runtime's monitor thread alone wakes up
// tens of thousands of times a second while the collector passes a command's
// output through, and each wake-up would otherwise take the CPU from the
// command writing it. The wrapped command still starts at the normal policy
// (Command.Run). It returns false where the system refuses (the policy is
// then left as it was).
func Background() bool {
	ok := true
	// Threads may start while the policy is being set: go over them again
	// until a pass finds none left at the normal policy.
	for range 3 {
		changed := false
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return false
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			attr, err := unix.SchedGetAttr(tid, 0)
			if err != nil || attr.Policy != schedOther {
				continue // gone, or already set (the records thread's SCHED_IDLE)
			}
			if err := setPolicy(tid, schedBatch); err != nil {
				ok = false
				continue
			}
			changed = true
		}
		if !changed {
			break
		}
	}
	return ok
}

// LowestPriorityThread locks the calling goroutine to its thread and puts
// that thread behind every other: SCHED_IDLE, or niceness 19 where that is
// refused. A CPU running only such a thread counts as idle where the kernel
// places a waking thread (the command, the thread passing its output
// through). The goroutine must end without unlocking: its thread then ends
// with it, and no other goroutine runs at the lowered priority.
func LowestPriorityThread() {
	runtime.LockOSThread()
	if err := setPolicy(0, schedIdle); err != nil {
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), idleNice)
	}
}

// start starts cmd from a thread of the normal policy: a process inherits
// the policy of the thread that forks it, and the command is the job, not
// part of the collector.
func start(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if attr, err := unix.SchedGetAttr(0, 0); err == nil && attr.Policy == schedBatch {
		if setPolicy(0, schedOther) == nil {
			defer func() { _ = setPolicy(0, schedBatch) }()
		}
	}
	return cmd.Start()
}

// setPolicy sets the scheduling policy of thread tid (0: the caller's),
// at niceness 0.
func setPolicy(tid int, policy uint32) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policy}
	return unix.SchedSetAttr(tid, &attr, 0)
}
