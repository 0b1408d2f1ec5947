package stores

import "gocloud.dev/blob"

// ObjectChecksum is a checksum a store keeps for the whole of an object:
// the CRC32 of all its bytes, with the IEEE polynomial or, when Castagnoli
// is set, the Castagnoli one (CRC32C).
type ObjectChecksum struct {
	CRC32      uint32
	Castagnoli bool
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
