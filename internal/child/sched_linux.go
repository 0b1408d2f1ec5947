package child

import (
	"os"
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
// still gets a small share of a busy core, more than under SCHED_IDLE.
const idleNice = 19

// background puts the collector behind the job in the scheduler while the
// command runs: every thread of the process at the normal policy runs
// SCHED_BATCH, and so does every thread it starts later (a thread inherits
// its creator's policy). A batch thread gets its fair share of the CPU, but
// it does not preempt the task running where it wakes up: the Go runtime's
// monitor thread alone wakes up many times a second while the collector
// passes a command's output through, and each wake-up would otherwise take
// the CPU from the command writing it. Where the system
// refuses, a thread keeps its policy.
func background() { setEveryThread(schedOther, schedBatch) }

// foreground puts the threads background put behind back at the normal
// policy: with the command gone, the final sync has nothing to yield to.
func foreground() { setEveryThread(schedBatch, schedOther) }

// setEveryThread moves every thread of the process from policy from to
// policy to, where the system allows.
func setEveryThread(from, to uint32) {
	// Threads may start while the policy is being set: go over them again
	// until a pass finds none left to move.
	for range 3 {
		changed := false
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			attr, err := unix.SchedGetAttr(tid, 0)
			if err != nil || attr.Policy != from {
				continue // gone, or at another policy (the records thread's SCHED_IDLE)
			}
			if setPolicy(tid, to) == nil {
				changed = true
			}
		}
		if !changed {
			return
		}
	}
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

// setPolicy sets the scheduling policy of thread tid (0: the caller's),
// at niceness 0.
func setPolicy(tid int, policy uint32) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policy}
	return unix.SchedSetAttr(tid, &attr, 0)
}
