package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/spool"
)

// TestReadManyChunks: two sources of 40 chunks each, their lines
// interleaved in time: Read gives every line once, by timestamp, while it
// requests each source's next chunks ahead; an error of fn ends it with
// that error, and a chunk that is not gzip is an error naming it.
func TestReadManyChunks(t *testing.T) {
	ctx := context.Background()
	run := memblob.OpenBucket(nil)
	defer run.Close()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var want bytes.Buffer
	for seq := 1; seq <= 40; seq++ {
		for s, source := range []string{"app", "command"} {
			var b bytes.Buffer
			for i := range 3 {
				n := (seq*3+i)*2 + s
				fmt.Fprintf(&b, `{"timestamp":%q,"container":%q,"stream":"stdout","value":"%d","attempt":1}`+"\n",
					t0.Add(time.Duration(n)*time.Millisecond).Format(time.RFC3339Nano), source, n)
			}
			if err := run.WriteAll(ctx, Folder+"/"+spool.ChunkName(source, 1, uint64(seq)), spool.EncodeChunk(b.Bytes()), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for n := 6; n < 6+240; n++ {
		fmt.Fprintf(&want, "%d,", n)
	}
	var got bytes.Buffer
	if err := Read(ctx, run, Filter{}, func(e *StoredRecord, _ []byte) error {
		fmt.Fprintf(&got, "%s,", e.Value)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("Read =\n%s\nwant\n%s", got.String(), want.String())
	}

	enough := errors.New("enough")
	n := 0
	err := Read(ctx, run, Filter{}, func(*StoredRecord, []byte) error {
		if n++; n == 50 {
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) || n != 50 {
		t.Errorf("fn's error at line %d: Read returned %v; want it, at line 50", n, err)
	}

	bad := Folder + "/" + spool.ChunkName("app", 1, 20)
	if err := run.WriteAll(ctx, bad, []byte("not gzip"), nil); err != nil {
		t.Fatal(err)
	}
	err = Read(ctx, run, Filter{}, func(*StoredRecord, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("a chunk that is not gzip: Read returned %v; want an error naming %s", err, bad)
	}
}
