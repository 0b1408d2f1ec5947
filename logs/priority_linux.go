package logs

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// schedIdle is Linux's SCHED_IDLE policy: the thread runs only on a CPU
// that nothing else wants, and a CPU running only such threads counts as
// idle where the kernel places a waking thread (the one that passes the
// command's output through, woken by the command's writes).
const schedIdle = 5

// idleNice is the niceness used where SCHED_IDLE is refused: the thread
// still gets about 1.5 % of a busy core.
const idleNice = 19

// yieldToTheCommand locks the calling goroutine to its thread and puts
// that thread behind every other: SCHED_IDLE, or niceness 19. The command
// (and the thread that passes its output through) come first when they
// compete for the CPU, and the records are made from the capture behind
// it. The goroutine must end without unlocking: its thread then ends with
// it, and no other goroutine runs at the lowered priority.
func yieldToTheCommand() {
	runtime.LockOSThread()
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: schedIdle}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), idleNice)
	}
}
