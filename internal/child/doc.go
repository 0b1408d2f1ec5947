// Package child owns the wrapped command of wrapper mode (collector -- CMD ...):
// starting it, passing on SIGTERM and SIGINT, and turning its end into an
// exit code (128+signal when killed). Its stdout and stderr go to the
// collector's own unchanged (kubectl logs and docker logs keep working)
// through an Output each, which also hands what it read to a Capture, where
// log collection reads it line by line at its own pace: memory first, then a
// spill file on disk, so that collecting never slows the command down.
//
// It also owns where the collector stands in the scheduler while the command
// runs: its threads run SCHED_BATCH (Command.Behind), so that waking up
// never takes a CPU from the command, which keeps the normal policy; the
// thread that makes the command's lines into records runs SCHED_IDLE
// (LowestPriorityThread).
package child
