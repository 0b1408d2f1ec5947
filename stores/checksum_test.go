package stores

import (
	"crypto/rand"
	"hash/crc32"
	"testing"
)

// TestCombineCRC32: the CRC32 of two pieces combined is the CRC32 of the
// whole, for both polynomials and any split.
func TestCombineCRC32(t *testing.T) {
	data := make([]byte, 100_000)
	_, _ = rand.Read(data)
	for _, poly := range []uint32{crc32.IEEE, crc32.Castagnoli} {
		table := crc32.MakeTable(poly)
		for _, cut := range []int{0, 1, 7, 4096, 65536, 99_999, 100_000} {
			a, b := data[:cut], data[cut:]
			got := CombineCRC32(poly, crc32.Checksum(a, table), crc32.Checksum(b, table), int64(len(b)))
			if want := crc32.Checksum(data, table); got != want {
				t.Errorf("poly %08x, cut at %d: combined %08x, want %08x", poly, cut, got, want)
			}
		}
	}
}
