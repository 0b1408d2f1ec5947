package stores

import (
	"hash/crc32"

	"gocloud.dev/blob"
)

// ObjectChecksum is a checksum a store keeps for the whole of an object:
// the CRC32 of all its bytes, with the IEEE polynomial or, when Castagnoli
// is set, the Castagnoli one (CRC32C).
type ObjectChecksum struct {
	CRC32      uint32
	Castagnoli bool
}

// Polynomial returns the reflected CRC32 polynomial the checksum is
// computed with, as hash/crc32 names it.
func (c ObjectChecksum) Polynomial() uint32 {
	if c.Castagnoli {
		return crc32.Castagnoli
	}
	return crc32.IEEE
}

// Algorithm returns the checksum's name: "crc32c" or "crc32".
func (c ObjectChecksum) Algorithm() string {
	if c.Castagnoli {
		return "crc32c"
	}
	return "crc32"
}

// checksumKeeper is a Backend whose store keeps whole-object checksums and
// returns them with an object's attributes.
type checksumKeeper interface {
	StoredChecksum(attrs *blob.Attributes) (ObjectChecksum, bool)
}

// StoredChecksum returns the checksum the store keeps for the whole object
// whose attributes are attrs (as Bucket.Attributes returns them), and false
// when it keeps none that covers every byte: S3 keeps one for an object
// uploaded with a full-object CRC32, as the collector uploads them where the
// server takes it; other kinds are not asked yet.
func StoredChecksum(attrs *blob.Attributes) (ObjectChecksum, bool) {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	for _, b := range backends {
		if k, ok := b.(checksumKeeper); ok {
			if sum, ok := k.StoredChecksum(attrs); ok {
				return sum, true
			}
		}
	}
	return ObjectChecksum{}, false
}

// CombineCRC32 returns the CRC32 of a followed by b, from crcA, crcB and
// the length of b, for the reflected polynomial poly (zlib's crc32_combine):
// crcA goes through len(b) zero bytes, by squaring the operator that
// appends one zero bit.
func CombineCRC32(poly, crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA ^ crcB
	}
	var odd, even [32]uint32 // operators for an odd and an even number of zero bits
	odd[0] = poly
	row := uint32(1)
	for i := 1; i < 32; i++ {
		odd[i] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // 2 zero bits
	gf2Square(&odd, &even) // 4 zero bits
	for {
		gf2Square(&even, &odd) // the first round: one zero byte
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := range 32 {
		square[n] = gf2Times(mat, mat[n])
	}
}
