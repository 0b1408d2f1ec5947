package sync

import (
	"context"
	"io"

	"github.com/mlsidecar/collector/stores"
)

// storedObject is what a listing says of an object.
type storedObject struct {
	size int64
	md5  []byte
}

// listUnrecorded lists the target once and keeps, for each file of the scan
// that the manifest does not know, the size and MD5 of the object the store
// holds under its path, if any: objects that a collector killed before its
// checkpoint uploaded, which the pass then records without uploading again.
func (s *Syncer) listUnrecorded(ctx context.Context, files map[string]fileState) error {
	s.mu.Lock()
	want := 0
	for rel := range files {
		if _, ok := s.entries[rel]; !ok {
			want++
		}
	}
	s.mu.Unlock()
	if want == 0 {
		return nil
	}
	found := map[string]storedObject{}
	it := stores.List(s.bucket, nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return stores.Redact(err)
		}
		fs, local := files[obj.Key]
		if !local || obj.IsDir || obj.MD5 == nil || fs.Size != obj.Size {
			continue
		}
		s.mu.Lock()
		_, known := s.entries[obj.Key]
		s.mu.Unlock()
		if !known {
			found[obj.Key] = storedObject{size: obj.Size, md5: obj.MD5}
		}
	}
	s.unrecorded = found
	if len(found) > 0 {
		s.log.Info("found files in the store that the state does not record (a collector was stopped before its checkpoint); each is checked before it is uploaded again", "files", len(found))
	}
	return nil
}
