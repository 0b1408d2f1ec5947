package logs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkAppendRecord: one record of a 100-byte line, as the wrapper
// writes a million of them.
func BenchmarkAppendRecord(b *testing.B) {
	line := []byte(fmt.Sprintf("%08d %s", 0, strings.Repeat("x", 90)))
	meta := recordMeta{node: "gpu-7", pod: "train-0", attempt: 1}
	var stamps stampCache
	r := Record{Time: time.Now(), Container: "command", Stream: "stdout", Value: line}
	buf := make([]byte, 0, 1<<10)
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		buf = appendChunkLine(buf[:0], &r, &meta, &stamps)
	}
}
