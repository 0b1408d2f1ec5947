//go:build !linux

package child

// background keeps the scheduling policy: only Linux sets it per thread.
func background() {}

func foreground() {}

// LowestPriorityThread keeps the thread's priority: only Linux sets it per
// thread.
func LowestPriorityThread() {}
