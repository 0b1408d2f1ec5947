package stores

import (
	"errors"
	"fmt"
)

// Limits are what a store accepts of one object, as its backend declares
// them (Driver.Limits). A zero field is no limit.
type Limits struct {
	// MaxParts is the most parts (blocks) one multipart upload may have.
	MaxParts int64
	// MinPartSize and MaxPartSize bound every part but the last.
	MinPartSize, MaxPartSize int64
	// PartMultiple divides every part but the last (GCS: 256 KiB).
	PartMultiple int64
	// MaxObjectSize is the largest object the store takes.
	MaxObjectSize int64
}

// ErrTooLarge says a file is larger than the store takes. Retrying does not
// help.
var ErrTooLarge = errors.New("larger than the store's maximum object size")

// PartSize returns the part size for an object of size bytes: atLeast (the
// --part-size setting) or the store's smallest part if that is larger, grown
// to a whole number of MiB where the store's parts would otherwise be too
// many. It can exceed MaxPartSize only for an object over MaxObjectSize,
// which CheckSize refuses. A PartMultiple that atLeast is not a multiple of
// is the caller's to refuse (as the collector's settings do at start).
func (l Limits) PartSize(size, atLeast int64) int64 {
	ps := max(atLeast, l.MinPartSize, 1)
	if l.MaxParts > 0 && size > ps*l.MaxParts {
		const mib = 1 << 20
		ps = (size + l.MaxParts - 1) / l.MaxParts
		ps = (ps + mib - 1) / mib * mib
	}
	return ps
}

// CheckSize refuses an object larger than the store takes, with an error
// that wraps ErrTooLarge.
func (l Limits) CheckSize(size int64) error {
	if l.MaxObjectSize > 0 && size > l.MaxObjectSize {
		return fmt.Errorf("%d bytes is %w (%d bytes)", size, ErrTooLarge, l.MaxObjectSize)
	}
	return nil
}

// Fits tells whether an upload of an object of size bytes in parts of
// partSize is within the limits: a saved upload in flight can then be
// continued with its own part size.
func (l Limits) Fits(size, partSize int64) bool {
	switch {
	case partSize <= 0:
		return false
	case l.MinPartSize > 0 && partSize < l.MinPartSize && size > partSize:
		return false
	case l.MaxPartSize > 0 && partSize > l.MaxPartSize:
		return false
	case l.PartMultiple > 0 && partSize%l.PartMultiple != 0 && size > partSize:
		return false
	case l.MaxParts > 0 && (size+partSize-1)/partSize > l.MaxParts:
		return false
	}
	return l.CheckSize(size) == nil
}
