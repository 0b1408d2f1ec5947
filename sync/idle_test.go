package sync

import (
	"runtime/metrics"
	"testing"
)

// forcedCollections counts the garbage collections the process was asked for.
func forcedCollections() uint64 {
	m := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

var sink []byte

// After passes that uploaded little (a file changed every second), a
// sidecar does not pay a whole collection of its heap for each; after a
// burst of uploads it hands the memory back at once (issue 8, item 10).
func TestIdleCollectsAfterBurstsNotAfterEachPass(t *testing.T) {
	burst := func() {
		sink = make([]byte, 64<<20)
		sink = nil
		idle()
	}
	burst() // counts from here, whatever the tests before this one allocated
	before := forcedCollections()
	for range 20 {
		sink = make([]byte, 16<<10) // a small pass's garbage
		idle()
	}
	if got := forcedCollections() - before; got != 0 {
		t.Fatalf("20 small passes forced %d collections, want 0", got)
	}
	burst() // of uploads
	if got := forcedCollections() - before; got != 1 {
		t.Fatalf("a burst of 64 MiB forced %d collections, want 1", got)
	}
}
