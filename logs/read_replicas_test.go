package logs

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/spool"
)

// TestReadReplicas: a distributed run's logs, each replica's chunks under
// replicas/<name>/logs/: Read merges them by timestamp and names each
// record's replica, Filter.Replica keeps one replica's, Tail names the
// replica too, and Follow ends only once every replica that logged has ended
// its last attempt.
func TestReadReplicas(t *testing.T) {
	ctx := context.Background()
	run := memblob.OpenBucket(nil)
	defer run.Close()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for r, name := range []string{"a", "b"} {
		var b bytes.Buffer
		for i := range 5 {
			fmt.Fprintf(&b, `{"timestamp":%q,"container":"command","stream":"stdout","value":"%s %d","attempt":1}`+"\n",
				t0.Add(time.Duration(2*i+r)*time.Second).Format(time.RFC3339Nano), name, i)
		}
		key := ReplicasFolder + "/" + name + "/" + Folder + "/" + spool.ChunkName("command", 1, 1)
		if err := run.WriteAll(ctx, key, spool.EncodeChunk(b.Bytes()), nil); err != nil {
			t.Fatal(err)
		}
	}
	read := func(f Filter) string {
		var out bytes.Buffer
		if err := Read(ctx, run, f, func(e *StoredRecord, _ []byte) error {
			fmt.Fprintf(&out, "%s:%s,", e.Replica, e.Value)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got, want := read(Filter{}), "a:a 0,b:b 0,a:a 1,b:b 1,a:a 2,b:b 2,a:a 3,b:b 3,a:a 4,b:b 4,"; got != want {
		t.Errorf("Read = %s, want %s", got, want)
	}
	if got, want := read(Filter{Replica: "b"}), "b:b 0,b:b 1,b:b 2,b:b 3,b:b 4,"; got != want {
		t.Errorf("Read of replica b = %s, want %s", got, want)
	}
	var tail []string
	if err := Tail(ctx, run, Filter{}, 2, func(e *StoredRecord, _ []byte) error {
		tail = append(tail, e.Replica+":"+e.Value)
		return nil
	}); err != nil || fmt.Sprint(tail) != "[a:a 4 b:b 4]" {
		t.Errorf("Tail 2 = %v, %v; want [a:a 4 b:b 4]", tail, err)
	}

	for _, tc := range []struct {
		ended   map[string]bool
		returns bool
	}{
		{map[string]bool{"a": true, "b": true}, true},
		{map[string]bool{"a": true}, false},
	} {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		n := 0
		err := Follow(ctx, run, 10*time.Millisecond, Filter{}, func(_ context.Context, replica string) (int, bool, error) {
			return 1, tc.ended[replica], nil
		}, func(*StoredRecord, []byte) error { n++; return nil })
		returned := ctx.Err() == nil
		cancel()
		if err != nil || n != 10 || returned != tc.returns {
			t.Errorf("Follow with %v ended: %v, %d lines, returned by itself %v; want 10 lines and %v", tc.ended, err, n, returned, tc.returns)
		}
	}
}
