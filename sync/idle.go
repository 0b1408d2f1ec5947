package sync

import (
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// idle hands the memory that passes used back to the system: a sidecar
// spends most of its life waiting, and its RSS should be what it holds then,
// not the peak of its last burst of uploads (the Go runtime returns freed
// memory only slowly by itself). It runs after passes that did work, and
// collects once they have allocated idleGarbage bytes, or an eighth of the
// live heap, since the last time: a collection costs in proportion to the
// live heap (mostly the manifest), so a burst of uploads is handed back at
// once, and a file changed every second only every few dozen passes.
func idle() {
	m := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	allocs, live := m[0].Value.Uint64(), m[1].Value.Uint64()
	last := idleAllocs.Load()
	if allocs-last < max(idleGarbage, live/8) || !idleAllocs.CompareAndSwap(last, allocs) {
		return
	}
	debug.FreeOSMemory()
}

// idleGarbage is what passes allocate, at least, before idle collects.
const idleGarbage = 4 << 20

// idleAllocs is the bytes the process had allocated when idle last collected.
var idleAllocs atomic.Uint64
