//go:build !linux

package logs

// yieldToTheCommand keeps the thread's priority: only Linux sets it per
// thread.
func yieldToTheCommand() {}
