// Package preempt owns watching the cloud's notice that the machine is about
// to be taken back: EC2's Spot interruption notice and rebalance
// recommendation (IMDSv2), GCE's preempted flag (metadata server, a hanging
// GET) and Azure's Scheduled Events (Preempt).
//
// Detect finds the cloud the way the clouds' SDKs do, from the machine's
// DMI strings under /sys/class/dmi/id and the SDKs' endpoint overrides, and
// touches no network: off a cloud there is nothing to watch. A Watcher
// polls its cloud's metadata service and calls back once per notice, with
// the time the machine goes when the cloud says it. What to do then (sync
// at once, signal the job) is the caller's.
package preempt
