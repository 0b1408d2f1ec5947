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

// TestTail: the last n records that Read gives, for any n, whatever the
// chunk boundaries, from two sources written side by side over two
// attempts.
func TestTail(t *testing.T) {
	ctx := context.Background()
	run := memblob.OpenBucket(nil)
	defer run.Close()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	k := 0
	for attempt := 1; attempt <= 2; attempt++ {
		for seq := range 3 {
			for _, src := range []string{"command", "train"} {
				var b bytes.Buffer
				for i := range 4 + seq {
					stream := "stdout"
					if i%3 == 0 {
						stream = "stderr"
					}
					fmt.Fprintf(&b, `{"timestamp":%q,"container":%q,"stream":%q,"value":"line %d","attempt":%d}`+"\n",
						t0.Add(time.Duration(k)*time.Second).Format(time.RFC3339Nano), src, stream, k, attempt)
					k++
				}
				if err := run.WriteAll(ctx, Folder+"/"+spool.ChunkName(src, attempt, uint64(seq)), spool.EncodeChunk(b.Bytes()), nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, f := range []Filter{{}, {Stream: "stderr"}, {Container: "train"}} {
		var all []string
		if err := Read(ctx, run, f, func(e *StoredRecord, _ []byte) error { all = append(all, e.Value); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 3, 5, 13, len(all), len(all) + 7} {
			var got []string
			if err := Tail(ctx, run, f, n, func(e *StoredRecord, _ []byte) error { got = append(got, e.Value); return nil }); err != nil {
				t.Fatal(err)
			}
			want := all[max(0, len(all)-n):]
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("filter %+v, n %d: got %q; want %q", f, n, got, want)
			}
		}
	}
}
