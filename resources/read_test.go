package resources

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/spool"
)

// TestReadSeries: the samples of a run's chunks in the store, by attempt
// then sequence, an earlier version's names read the same; other objects
// in the folder are not chunks; summary.json reads back.
func TestReadSeries(t *testing.T) {
	ctx := context.Background()
	run := memblob.OpenBucket(nil)
	defer run.Close()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	chunk := func(key string, attempt int, values ...int) {
		var b []byte
		for _, v := range values {
			s := Sample{Time: t0.Add(time.Duration(v) * time.Second), Attempt: attempt, Interval: time.Second}
			s.Add("cpu_cores", float64(v))
			b = s.appendJSON(b)
		}
		if err := run.WriteAll(ctx, Folder+"/"+key, spool.EncodeChunk(b), nil); err != nil {
			t.Fatal(err)
		}
	}
	chunk("samples.000002.00000011.jsonl.gz", 2, 7, 8)
	chunk("samples.000002.00000010.jsonl.gz", 2, 5, 6)
	chunk("000001-a1.jsonl.gz", 1, 3, 4)
	chunk("000000-a1.jsonl.gz", 1, 1, 2)
	run.WriteAll(ctx, Folder+"/notes.txt", []byte("not a chunk"), nil)
	var got []string
	err := ReadSeries(ctx, run, "", func(s *Sample) error {
		v, _ := s.Value("cpu_cores")
		got = append(got, fmt.Sprintf("a%d:%v", s.Attempt, v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[a1:1 a1:2 a1:3 a1:4 a2:5 a2:6 a2:7 a2:8]"; fmt.Sprint(got) != want {
		t.Errorf("samples %v; want %s", got, want)
	}

	if _, ok, err := ReadSummary(ctx, run); ok || err != nil {
		t.Errorf("no summary.json: ok %v, err %v; want neither", ok, err)
	}
	var agg Aggregates
	agg.Add(&Sample{Time: t0, Attempt: 1, Interval: time.Second, Fields: []Field{{"cpu_cores", 2}}})
	run.WriteAll(ctx, Folder+"/"+SummaryKey, agg.Summary("r", true, t0).JSON(), nil)
	s, ok, err := ReadSummary(ctx, run)
	if err != nil || !ok || s.Run != "r" || s.CPU.PeakCores != 2 {
		t.Errorf("summary %+v, %v, %v; want run r, peak 2 cores", s, ok, err)
	}
}

// TestReadSeriesOfManyChunks: a long run's chunks, fetched several at a
// time, still come in order; an error of fn ends the reading with it, and
// a cancelled context ends it too.
func TestReadSeriesOfManyChunks(t *testing.T) {
	ctx := context.Background()
	run := memblob.OpenBucket(nil)
	defer run.Close()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var want []string
	for attempt := 1; attempt <= 2; attempt++ {
		for seq := 1; seq <= 30; seq++ {
			var b []byte
			for k := range 3 {
				v := attempt*1000 + seq*10 + k
				s := Sample{Time: t0.Add(time.Duration(v) * time.Second), Attempt: attempt, Interval: time.Second}
				s.Add("cpu_cores", float64(v))
				b = s.appendJSON(b)
				want = append(want, fmt.Sprint(v))
			}
			key := Folder + "/" + spool.ChunkName(Series, attempt, uint64(seq))
			if err := run.WriteAll(ctx, key, spool.EncodeChunk(b), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	if err := ReadSeries(ctx, run, "", func(s *Sample) error {
		v, _ := s.Value("cpu_cores")
		got = append(got, fmt.Sprint(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("samples\n%v\nwant\n%v", got, want)
	}

	stop := errors.New("enough")
	n := 0
	err := ReadSeries(ctx, run, "", func(*Sample) error {
		if n++; n == 40 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 40 {
		t.Errorf("fn's error after %d samples: ReadSeries returned %v; want it, after 40", n, err)
	}

	cctx, cancel := context.WithCancel(ctx)
	n = 0
	err = ReadSeries(cctx, run, "", func(*Sample) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled after 10 samples: ReadSeries returned %v; want context.Canceled", err)
	}
}
