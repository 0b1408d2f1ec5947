package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// TestOpenAhead: the objects come in the order given, whatever order their
// readers open in; a missing object is an error at its turn, the others
// still read; Close after a few leaves nothing open.
func TestOpenAhead(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	var keys []string
	for i := range 30 {
		key := fmt.Sprintf("k%02d", 29-i) // not in listing order
		if i != 7 {
			if err := b.WriteAll(ctx, key, []byte(key), nil); err != nil {
				t.Fatal(err)
			}
		}
		keys = append(keys, key)
	}
	a := OpenAhead(ctx, b, keys, 4)
	for i, want := range keys {
		key, r, err := a.Next()
		if key != want {
			t.Fatalf("object %d: key %q, want %q", i, key, want)
		}
		if i == 7 {
			if gcerrors.Code(err) != gcerrors.NotFound {
				t.Errorf("missing %s: error %v, want NotFound", key, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(data) != key {
			t.Errorf("%s holds %q (%v), want its name", key, data, err)
		}
	}
	if _, _, err := a.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last: %v, want io.EOF", err)
	}
	a.Close()

	a = OpenAhead(ctx, b, keys, 4)
	key, r, err := a.Next()
	if err != nil || key != keys[0] {
		t.Fatalf("first: %q, %v", key, err)
	}
	r.Close()
	a.Close()
	if _, _, err := a.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after Close: %v, want io.EOF", err)
	}
}
