package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestRetry checks how often a pass tries an operation, by the kind of its
// error: a failure that may pass is tried uploadAttempts times, an answer
// that trying again will not change is tried once.
func TestRetry(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 1},
		{"broken connection", errors.New("read: connection reset by peer"), uploadAttempts},
		{"refused by the store", fmt.Errorf("upload %q: %w", "a.txt", stores.ErrRefused), 1},
		{"not found", gcerrNotFound(t), 1},
		{"canceled", context.Canceled, 1},
		{"file changed", errChanged, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tries := 0
				err := retry(t.Context(), uploadAttempts, func() error {
					tries++
					return tt.err
				})
				if !errors.Is(err, tt.err) {
					t.Errorf("retry returned %v, want %v", err, tt.err)
				}
				if tries != tt.want {
					t.Errorf("tried %d times, want %d", tries, tt.want)
				}
			})
		})
	}
}

// gcerrNotFound is the error gocloud gives for a missing object.
func gcerrNotFound(t *testing.T) error {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	_, err := b.ReadAll(context.Background(), "missing")
	if gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("reading a missing object gave %v", err)
	}
	return err
}

// TestRefusalIsTriedOnce uploads to a key S3 refuses (400 KeyTooLongError:
// a key over 1,024 bytes) and checks that the pass asks the store once.
func TestRefusalIsTriedOnce(t *testing.T) {
	f := storetest.S3(t)
	target := f.OpenStore(t).Target("run/outputs/")
	key := strings.Repeat("k", 1100)
	ctx := context.Background()
	tries := 0
	err := retry(ctx, uploadAttempts, func() error {
		tries++
		return target.Upload(ctx, key, strings.NewReader("x"), stores.Sums{}, 0, 0)
	})
	if !errors.Is(err, stores.ErrRefused) {
		t.Fatalf("got %v, want an error that matches stores.ErrRefused", err)
	}
	if tries != 1 {
		t.Errorf("tried %d times, want 1", tries)
	}
}
