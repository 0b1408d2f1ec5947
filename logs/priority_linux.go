package logs

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// commandNice is the niceness of the thread that turns the wrapped
// command's output into records and chunks: the command (and the thread
// that passes its output through) come first when they compete for the
// CPU, and the records are made from the capture behind it. At niceness 19
// the thread still gets about 1.5 % of a busy core (CommandSource.Run goes
// back to normal priority when the capture gets far behind).
const commandNice = 19

// yieldToTheCommand locks the calling goroutine to its thread and lowers
// that thread's priority to commandNice. The goroutine must end without
// unlocking: its thread then ends with it, and no other goroutine runs at
// the lowered priority.
func yieldToTheCommand() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), commandNice)
}
