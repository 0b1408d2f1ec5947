package resume

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkManifestMemory builds the manifest of a run of 1,000,000 files, as
// the sync engine holds it, with paths as a training job writes them
// (checkpoints/epoch-012/shard-03456.safetensors: 45 bytes), and reports the
// heap it takes: the goal is under 200 MiB.
//
//	go test -run '^$' -bench ManifestMemory -benchtime 1x ./resume
func BenchmarkManifestMemory(b *testing.B) {
	const files = 1_000_000
	for range b.N {
		before := heapInUse()
		m := make(Manifest)
		for i := range files {
			rel := fmt.Sprintf("checkpoints/epoch-%03d/shard-%05d.safetensors", i/10_000, i%10_000)
			m[rel] = &Entry{Size: int64(i) << 10, ModTime: 1763900000123456789 + int64(i), Inode: uint64(i) + 1000,
				SHA256: Digest(sha256.Sum256([]byte(rel)))}
		}
		after := heapInUse()
		runtime.KeepAlive(m)
		b.ReportMetric(float64(after-before)/(1<<20), "MiB/1M-files")
		b.ReportMetric(float64(after-before)/files, "B/file")
	}
}

// heapInUse returns the bytes of live heap objects after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
