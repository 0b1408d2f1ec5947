package resume

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/stores"
)

// A replica of a distributed run stores a path that a lower replica holds
// as <path>.replica-<name> (the sync engine's rule, docs/distributed.md);
// its manifest entry then records that key (Entry.Key), and its own restore
// brings the copy back to the path. A lower replica may also have taken a
// path after this replica's last sync, moving its copy aside: the restore of
// a replica's own files (RestoreOptions.Replica) looks at each path it
// downloads under its own name once, and takes the copy when another
// replica's object is there.

// ReplicaCopyKey is the key, under outputs/, of replica's copy of rel when
// a lower replica keeps rel.
func ReplicaCopyKey(rel, replica string) string { return rel + ".replica-" + replica }

// ownCopy returns the item to restore for it, one of replica's own files:
// it, or the replica's copy when the object at the path is another
// replica's and the copy is there. A file already in place as the state
// records it costs no request.
func (r *restorer) ownCopy(ctx context.Context, it restoreItem, replica string) (restoreItem, error) {
	if replica == "" || it.key != OutputsPrefix+it.rel {
		return it, nil
	}
	if k, ok := r.known[it.rel]; ok {
		if fi, err := os.Lstat(filepath.Join(r.dir, filepath.FromSlash(it.rel))); err == nil && fi.Mode().IsRegular() && k.SameFile(fi.Size(), fi.ModTime().UnixNano(), InodeOf(fi)) {
			return it, nil
		}
	}
	attrs, err := r.attrs(ctx, it.key)
	if err != nil {
		return it, err
	}
	if owner := stores.ReplicaOf(attrs); owner == "" || owner == replica {
		return it, nil
	}
	aside := OutputsPrefix + ReplicaCopyKey(it.rel, replica)
	copied, err := r.attrs(ctx, aside)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return it, nil // the store holds no copy of this replica's: the path's object is what there is
	}
	if err != nil {
		return it, err
	}
	r.log.Info("another replica took this output's path: restoring this replica's copy", "path", it.rel, "key", aside)
	return restoreItem{key: aside, rel: it.rel, size: copied.Size}, nil
}

// objectKey is the key an entry restored from it records: "" when it is
// the path's own.
func (it restoreItem) objectKey() string {
	if k := strings.TrimPrefix(it.key, OutputsPrefix); k != it.rel {
		return k
	}
	return ""
}
