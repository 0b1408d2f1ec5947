//go:build !linux

package child

import "os/exec"

// Background keeps the scheduling policy: only Linux sets it per thread.
func Background() bool { return false }

// LowestPriorityThread keeps the thread's priority: only Linux sets it per
// thread.
func LowestPriorityThread() {}

func start(cmd *exec.Cmd) error { return cmd.Start() }
