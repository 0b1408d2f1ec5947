package resume

import (
	"context"
	"encoding/json"
	"fmt"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// EndedKey is the object, under the run's prefix, that says which attempt
// of the run last ended: written once the attempt's final sync is over, so
// everything that attempt stored is in the store when it appears. `collector
// logs --follow` stops there, as `kubectl logs -f` does when the container
// ends.
const EndedKey = ".collector/ended.json"

type ended struct {
	Attempt int `json:"attempt"`
}

// MarkEnded records that attempt of the run (rooted at run) has ended.
func MarkEnded(ctx context.Context, run *blob.Bucket, attempt int) error {
	data, err := json.Marshal(ended{Attempt: attempt})
	if err != nil {
		return err
	}
	if err := run.WriteAll(ctx, EndedKey, data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("mark attempt %d ended: %w", attempt, err)
	}
	return nil
}

// LastEnded returns the last attempt of the run that ended, or of one of
// its replicas (replica not ""); ok is false while none has.
func LastEnded(ctx context.Context, run *blob.Bucket, replica string) (attempt int, ok bool, err error) {
	data, err := run.ReadAll(ctx, ReplicaPrefix(replica)+EndedKey)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var e ended
	if err := json.Unmarshal(data, &e); err != nil {
		return 0, false, fmt.Errorf("%s: %w", EndedKey, err)
	}
	return e.Attempt, true, nil
}
