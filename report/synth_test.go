package report

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	stdsync "sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/mlsidecar/collector/resources"
	"github.com/mlsidecar/collector/spool"
)

// synthRun describes a run to write into a file:// store as the collector
// would have: resource chunks, summary.json, log chunks, outputs and the
// attempt records.
type synthRun struct {
	start time.Time
	// attempts are each attempt's length; samples every interval.
	attempts []time.Duration
	interval time.Duration
	gpus     int
	// spikeAt is when attempt 1's CPU peaks at spikeCores for one sample.
	spikeAt    time.Duration
	spikeCores float64
	logLines   int
	outputs    map[string]string
}

// dayRun is 24 hours at 1 s sampling: an attempt of 16 h killed for its
// memory (exit 137), then one of 8 h that succeeds.
func dayRun() synthRun {
	return synthRun{
		start:    time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		attempts: []time.Duration{16 * time.Hour, 8 * time.Hour},
		interval: time.Second,
		gpus:     2,
		spikeAt:  5*time.Hour + 17*time.Second, spikeCores: 15,
		logLines: 5000,
		outputs: map[string]string{
			"model/checkpoint-1000.pt": "weights", "metrics.json": "{}", "a b/<odd> & name.txt": "x",
		},
	}
}

const limitBytes = 8 << 30

// write stores the run under run (rooted at <run>/) and returns how many
// samples it wrote.
func (sr synthRun) write(t testing.TB, run *blob.Bucket) int {
	t.Helper()
	ctx := context.Background()
	var agg resources.Aggregates
	samples := 0
	at := sr.start
	for i, length := range sr.attempts {
		attempt := i + 1
		n := int(length / sr.interval)
		var chunk bytes.Buffer
		seq := 0
		flush := func() {
			if chunk.Len() == 0 {
				return
			}
			put(t, run, resources.Folder+"/"+spool.ChunkName(resources.Series, attempt, uint64(seq)), gz(t, chunk.Bytes()))
			chunk.Reset()
			seq++
		}
		for k := range n {
			ts := at.Add(time.Duration(k) * sr.interval)
			s := resources.Sample{Time: ts, Attempt: attempt, Interval: sr.interval}
			phase := float64(k) / 600
			cores := 2 + math.Sin(phase)
			if attempt == 1 && time.Duration(k)*sr.interval == sr.spikeAt {
				cores = sr.spikeCores
			}
			mem := float64(2<<30) + float64(k)/float64(n)*float64(5<<30)
			s.Add("cpu_seconds", cores*sr.interval.Seconds())
			s.Add("cpu_cores", cores)
			s.Add("rss_bytes", mem*0.9)
			s.Add("cgroup_memory_bytes", mem)
			s.Add("cgroup_memory_limit_bytes", limitBytes)
			s.Add("cgroup_cpu_limit_cores", 12)
			oom := 0.0
			if attempt == 1 && k == n-1 {
				oom = 1
			}
			s.Add("cgroup_oom_kills", oom)
			s.Add("shm_size_bytes", 1<<30)
			s.Add("shm_used_bytes", float64(k%3600)/3600*float64(512<<20))
			for g := range sr.gpus {
				p := "gpu" + strconv.Itoa(g) + "_"
				s.Add(p+"util_percent", math.Round(60+35*math.Sin(phase+float64(g))))
				s.Add(p+"memory_used_bytes", float64(30<<30)+float64(g)*float64(4<<30))
				s.Add(p+"memory_total_bytes", 80<<30)
			}
			agg.Add(&s)
			chunk.Write(sampleLine(&s))
			samples++
			if (k+1)%3600 == 0 {
				flush()
			}
		}
		flush()

		var logs bytes.Buffer
		for k := range sr.logLines {
			ts := at.Add(time.Duration(k) * length / time.Duration(sr.logLines))
			stream, value := "stdout", fmt.Sprintf("step %d loss %.4f", k, 1/float64(k+1))
			switch {
			case k == sr.logLines-3:
				stream, value = "stderr", "Traceback (most recent call last):"
			case k == sr.logLines-2:
				stream, value = "stderr", "RuntimeError: CUDA out of memory <b>"
			case k%7 == 0:
				stream, value = "stderr", fmt.Sprintf("warning: slow step %d", k)
			}
			fmt.Fprintf(&logs, `{"timestamp":%q,"container":"command","stream":%q,"value":%q,"attempt":%d}`+"\n",
				ts.Format(time.RFC3339Nano), stream, value, attempt)
		}
		put(t, run, "logs/"+spool.ChunkName("command", attempt, 0), gz(t, logs.Bytes()))

		code := 0
		if attempt == 1 {
			code = 137
		}
		rec := AttemptRecord{Attempt: attempt, Mode: "wrapper", Started: at, Ended: at.Add(length), ExitCode: &code, NodeCPUs: 16}
		if err := PutAttempt(ctx, run, rec); err != nil {
			t.Fatal(err)
		}
		at = at.Add(length + 10*time.Minute) // the retry starts after a while
	}
	put(t, run, resources.Folder+"/"+resources.SummaryKey, agg.Summary("day", true, at).JSON())
	for k, v := range sr.outputs {
		put(t, run, "outputs/"+k, []byte(v))
	}
	put(t, run, ".collector/ended.json", []byte(fmt.Sprintf(`{"attempt":%d}`, len(sr.attempts))))
	return samples
}

// sampleLine is a sample as the sampler writes it.
func sampleLine(s *resources.Sample) []byte {
	b := []byte(`{"timestamp":"` + s.Time.UTC().Format(time.RFC3339Nano) + `","attempt":` + strconv.Itoa(s.Attempt) +
		`,"interval_seconds":` + strconv.FormatFloat(s.Interval.Seconds(), 'f', -1, 64))
	for _, f := range s.Fields {
		b = append(b, `,"`+f.Name+`":`...)
		b = strconv.AppendFloat(b, f.Value, 'f', -1, 64)
	}
	return append(b, "}\n"...)
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	return spool.EncodeChunk(data)
}

func put(t testing.TB, run *blob.Bucket, key string, data []byte) {
	t.Helper()
	if err := run.WriteAll(context.Background(), key, data, nil); err != nil {
		t.Fatal(err)
	}
}

// day is the synthesised day's report, made once for the tests that read
// it: reading 86,400 samples is the slow part of this package's tests.
var day struct {
	once    stdsync.Once
	rep     *Report
	doc     []byte
	samples int
	took    time.Duration // Collect and Write
	err     error
}

// dayReport returns the report of dayRun, its page, how many samples it
// read and how long Collect and Write took.
func dayReport(t *testing.T) (*Report, []byte, int, time.Duration) {
	t.Helper()
	day.once.Do(func() {
		dir, err := os.MkdirTemp("", "report-day-")
		if err != nil {
			day.err = err
			return
		}
		defer os.RemoveAll(dir)
		b, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true})
		if err != nil {
			day.err = err
			return
		}
		defer b.Close()
		run := blob.PrefixedBucket(b, "day/")
		defer run.Close()
		day.samples = dayRun().write(t, run)
		start := time.Now()
		day.rep, day.err = Collect(context.Background(), run, Options{Run: "day", Store: "file:///tmp/store", RelativeLinks: true, LinkExpiry: time.Hour})
		if day.err != nil {
			return
		}
		var doc bytes.Buffer
		day.err = day.rep.Write(&doc)
		day.doc, day.took = doc.Bytes(), time.Since(start)
	})
	if day.err != nil || day.rep == nil {
		t.Fatalf("the day's report: %v", day.err)
	}
	return day.rep, day.doc, day.samples, day.took
}

// fileStore opens a file:// store in a new folder and returns the run's
// bucket.
func fileStore(t testing.TB, run string) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	r := blob.PrefixedBucket(b, run+"/")
	t.Cleanup(func() { r.Close(); b.Close() })
	return r
}
