package sync

import (
	"context"

	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// ownsObject reports whether the object of rel is still the version this
// Syncer stored, as its manifest records it: in a folder shared with other
// collectors (the replicas of a distributed run, Options.Shared), another
// may have stored the same path since, and that version is not this one's
// to delete. The object's sha256 metadata is compared with the manifest's
// hash; an object gone, or one whose hash either side does not know, is
// taken as this Syncer's. The answer costs one request per deletion.
//
// An object that names the replica that stored it (a replica's Syncer,
// shared.go) is this one's when it names this replica. When it names a
// lower one, that replica took the path and moved this one's copy aside,
// to <path>.replica-<name>: that copy is deleted instead.
func (s *Syncer) ownsObject(ctx context.Context, rel string) (bool, error) {
	s.mu.Lock()
	e := s.entries[rel]
	s.mu.Unlock()
	sh := s.up.shared
	if e == nil || e.SHA256 == (resume.Digest{}) && sh == nil {
		return true, nil
	}
	attrs, err := s.up.target.Attributes(ctx, rel)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if owner := stores.ReplicaOf(attrs); sh != nil && owner != "" {
		if owner == sh.replica {
			return true, nil
		}
		if owner < sh.replica {
			aside := resume.ReplicaCopyKey(rel, sh.replica)
			if err := s.bucket.Delete(ctx, aside); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return false, err
			}
		}
		s.log.Info("not deleting an output another replica stored since: the path is the other's", "key", rel, "replica", owner)
		return false, nil
	}
	if e.SHA256 == (resume.Digest{}) {
		return true, nil
	}
	stored, err := resume.ParseDigest(attrs.Metadata[stores.HashMetadataKey])
	if err != nil || stored == (resume.Digest{}) || stored == e.SHA256 {
		return true, nil
	}
	s.log.Warn("not deleting an output another collector stored since: the store holds its version, not this one's",
		"key", rel, "sha256", attrs.Metadata[stores.HashMetadataKey])
	return false, nil
}
