package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/spool"
	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
	"github.com/mlsidecar/collector/sync"
)

// memSection is a resume.Section in memory.
type memSection struct {
	mu  stdsync.Mutex
	raw []byte
}

func (s *memSection) Load(v any) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw == nil {
		return false, nil
	}
	return true, json.Unmarshal(s.raw, v)
}

func (s *memSection) Save(_ context.Context, v any) error {
	raw, err := json.Marshal(v)
	s.mu.Lock()
	s.raw = raw
	s.mu.Unlock()
	return err
}

// numbered emits n numbered lines, each with a position that counts them,
// from the position it is given.
type numbered struct {
	name  string
	n     int
	pause time.Duration // after every 100 lines
}

func (s *numbered) Name() string { return s.name }

func (s *numbered) Run(ctx context.Context, from Position, emit func(Record, Position) error) error {
	i := 0
	if from != nil {
		json.Unmarshal(from, &i)
	}
	for ; i < s.n; i++ {
		r := Record{Time: time.Now(), Container: s.name, Stream: "stdout", Value: []byte(fmt.Sprintf("line %d", i))}
		if err := emit(r, Position(fmt.Sprint(i+1))); err != nil {
			return err
		}
		if s.pause > 0 && i%100 == 99 {
			time.Sleep(s.pause) // a source that writes in bursts (on a synctest bubble's clock)
		}
	}
	return nil
}

func testSpool(t *testing.T, dir string, b *blob.Bucket) *spool.Spool {
	t.Helper()
	cfg := sync.DefaultConfig()
	sp, err := spool.New(spool.Config{Dir: dir, Uploader: sync.NewFileUploader(cfg, stores.Target{Bucket: b}, sync.NewBudget(cfg.MemoryBudget)),
		Interval: 50 * time.Millisecond, GiveUp: cfg.ShutdownTimeout})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.ChunkSize = 4 << 10
	cfg.ChunkAge = 200 * time.Millisecond
	cfg.Poll = 20 * time.Millisecond
	return cfg
}

// runOnce runs a collector over sources until they are done, and the
// spool until it emptied.
func runOnce(t *testing.T, cfg Config, dir string, b *blob.Bucket, sec spool.Section, attempt int, sources ...Source) *Collector {
	t.Helper()
	sp := testSpool(t, dir, b)
	c, err := New(cfg, sp, sources, Options{Section: sec, Attempt: attempt, Pod: "pod-1"})
	if err != nil {
		t.Fatal(err)
	}
	stop, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- sp.Run(stop, context.Background()) }()
	if err := c.Run(stop, context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c
}

// lines reads the run's logs back as "container/stream value" strings.
func lines(t *testing.T, b *blob.Bucket, f Filter) []string {
	t.Helper()
	var out []string
	err := Read(context.Background(), b, f, func(e *StoredRecord, _ []byte) error {
		out = append(out, e.Container+"/"+e.Stream+" "+string(e.Line()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	for k := range storetest.Objects(t, b, "") {
		out = append(out, k)
	}
	return out
}

// Every line reaches the store once, in order, in several chunks named by
// source, attempt and sequence; the cursor ends past the last line.
func TestLinesReachTheStoreInOrder(t *testing.T) {
	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	sec := &memSection{}
	runOnce(t, testConfig(), dir, b, sec, 1, &numbered{name: "app", n: 5000}, &numbered{name: "side", n: 10})
	got := lines(t, b, Filter{Container: "app"})
	if len(got) != 5000 {
		t.Fatalf("read back %d lines of app, want 5000", len(got))
	}
	for i, l := range got {
		if want := fmt.Sprintf("app/stdout line %d", i); l != want {
			t.Fatalf("line %d = %q, want %q", i, l, want)
		}
	}
	if n := len(lines(t, b, Filter{})); n != 5010 {
		t.Errorf("read back %d lines in all, want 5010", n)
	}
	ks := keys(t, b)
	if len(ks) < 3 {
		t.Errorf("chunks in the store: %v; want several (4 KiB chunks)", ks)
	}
	for _, k := range ks {
		if !strings.HasPrefix(k, "logs/app.000001.") && !strings.HasPrefix(k, "logs/side.000001.") {
			t.Errorf("chunk %q is not named <source>.<attempt>.<sequence>", k)
		}
	}
	var st sectionState
	sec.Load(&st)
	if got := string(st.Sources["app"].Cursor); got != "5000" {
		t.Errorf("app's cursor = %s, want 5000", got)
	}
	if n := st.Sources["app"].Chunks.Len(); n != 0 {
		t.Errorf("chunks left in the section: %d", n)
	}
	// A second run of the same run reads nothing again.
	runOnce(t, testConfig(), dir, b, sec, 2, &numbered{name: "app", n: 5000})
	if n := len(lines(t, b, Filter{Container: "app"})); n != 5000 {
		t.Errorf("after a second attempt: %d lines, want 5000", n)
	}
}

// previousSection is the section a collector of the previous version wrote
// (before the chunks were a spool.Ledger): app's chunk 2 sealed and in the
// spool, its chunk 3 stored before it; the command's chunk 2 dropped from
// a full spool behind its chunk 1.
const previousSection = `{"version":1,"sources":{"app":{"cursor":100,"attempt":1,"next":4,"chunks":{"app.000001.00000002.jsonl.gz":{"end":200,"lines":100},"app.000001.00000003.jsonl.gz":{"end":300,"lines":100,"stored":true}}},"command":{"attempt":1,"next":3,"chunks":{"command.000001.00000001.jsonl.gz":{"end":50,"lines":50},"command.000001.00000002.jsonl.gz":{"end":80,"lines":27,"noted":3,"dropped":true}}}}}`

// A section written by the previous version reads, and writes back the
// same bytes (a rollback reads it); a collector resuming from it moves the
// cursor once a chunk sealed before the restart is stored, and reads each
// line once.
func TestResumeFromAPreviousSection(t *testing.T) {
	var st sectionState
	if err := json.Unmarshal([]byte(previousSection), &st); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(&st); string(b) != previousSection {
		t.Fatalf("written back:\n got %s\nwant %s", b, previousSection)
	}

	dir, b := t.TempDir(), memblob.OpenBucket(nil)
	chunk := func(source string, from, to int) []byte {
		var records []byte
		for i := from; i < to; i++ {
			r := Record{Time: time.Now(), Container: source, Stream: "stdout", Value: []byte(fmt.Sprintf("line %d", i))}
			records = appendChunkLine(records, &r, &recordMeta{pod: "pod-1", attempt: 1}, &stampCache{})
		}
		return spool.EncodeChunk(records)
	}
	// In the store: app's chunks 1 and 3. In the spool: app's chunk 2 and
	// the command's chunk 1.
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		from, to int
	}{{"app.000001.00000001.jsonl.gz", 0, 100}, {"app.000001.00000003.jsonl.gz", 200, 300}} {
		if err := b.WriteAll(ctx, Folder+"/"+c.name, chunk("app", c.from, c.to), nil); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, Folder), 0o755)
	os.WriteFile(filepath.Join(dir, Folder, "app.000001.00000002.jsonl.gz"), chunk("app", 100, 200), 0o644)
	os.WriteFile(filepath.Join(dir, Folder, "command.000001.00000001.jsonl.gz"), chunk("command", 0, 50), 0o644)

	sec := &memSection{raw: []byte(previousSection)}
	command := func() *unpaced {
		return &unpaced{numbered: numbered{name: "command", n: 80}, done: make(chan struct{})}
	}
	cursors := func() (app, command string, chunks int) {
		var st sectionState
		sec.Load(&st)
		return string(st.Sources["app"].Cursor), string(st.Sources["command"].Cursor), st.Sources["app"].Chunks.Len() + st.Sources["command"].Chunks.Len()
	}
	// Nothing new to read: only the chunks sealed before the restart move
	// the cursors.
	runOnce(t, testConfig(), dir, b, sec, 2, &numbered{name: "app", n: 300}, command())
	if app, cmd, n := cursors(); app != "300" || cmd != "80" || n != 0 {
		t.Errorf("cursors app %s, command %s, %d chunks left; want 300, 80 (past the dropped chunk), none", app, cmd, n)
	}
	runOnce(t, testConfig(), dir, b, sec, 3, &numbered{name: "app", n: 400}, command())
	got := lines(t, b, Filter{Container: "app"})
	for i, l := range got {
		if want := fmt.Sprintf("app/stdout line %d", i); l != want {
			t.Fatalf("line %d = %q, want %q", i, l, want)
		}
	}
	if len(got) != 400 {
		t.Errorf("%d lines of app in the store, want 400, each once", len(got))
	}
	if app, _, n := cursors(); app != "400" || n != 0 {
		t.Errorf("app's cursor %s, %d chunks left; want 400, none", app, n)
	}
	if n := len(lines(t, b, Filter{Container: "command"})); n != 50 {
		t.Errorf("%d lines of the command in the store, want the 50 of its chunk in the spool", n)
	}
}

// The records are the contract's JSON: RFC 3339 timestamps with
// nanoseconds, the labels, invalid UTF-8 kept (escaped), long lines marked.
func TestRecordFormat(t *testing.T) {
	r := Record{Time: time.Date(2026, 12, 1, 4, 5, 6, 7000, time.UTC), Container: "main", Stream: "stderr",
		Value: []byte("a \"quoted\"\ttab \xff\xfe end é"), Continued: true}
	line := appendChunkLine(nil, &r, &recordMeta{node: "n1", pod: "p1", attempt: 3}, &stampCache{})
	want := `{"timestamp":"2026-12-01T04:05:06.000007000Z","container":"main","stream":"stderr","value":"a \"quoted\"\ttab \ufffd\ufffd end é","node":"n1","pod":"p1","attempt":3,"continued":true,"bytes":"YSAicXVvdGVkIgl0YWIg//4gZW5kIMOp"}` + "\n"
	if string(line) != want {
		t.Fatalf("record:\n got %s\nwant %s", line, want)
	}
	e, err := ParseStoredRecord(line[:len(line)-1])
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Line()) != string(r.Value) || !e.Continued || e.Attempt != 3 || !e.Timestamp.Equal(r.Time) {
		t.Errorf("read back %+v", e)
	}
}

// A store outage fills the spool: a paced source waits (no loss), the
// wrapped command's oldest unsent lines are dropped and counted in a
// record, and everything else reaches the store once it is back.
func TestFullSpool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		inner := memblob.OpenBucket(nil)
		b, faulty := storetest.NewFaulty(inner, 1)
		faulty.SetFailureRate(1)
		cfg := testConfig()
		cfg.ChunkSize = 1 << 10
		cfg.SpoolLimit = 8 << 10
		cfg.ChunkAge = time.Hour
		sp := testSpool(t, dir, b)
		cmd := &unpaced{numbered: numbered{name: "command", n: 20000}, done: make(chan struct{})}
		file := &numbered{name: "file", n: 20000}
		c, err := New(cfg, sp, []Source{cmd, file}, Options{Section: &memSection{}})
		if err != nil {
			t.Fatal(err)
		}
		stop, end := context.WithCancel(context.Background())
		spoolDone := make(chan error, 1)
		go func() { spoolDone <- sp.Run(stop, context.Background()) }()
		done := make(chan error, 1)
		go func() { done <- c.Run(stop, context.Background()) }()
		// The outage lasts until the command has printed everything: a chunk
		// dropped while its upload is in flight could reach the store after
		// all, and be counted twice.
		<-cmd.done
		synctest.Wait() // the paced source waits for room, the uploads for their next try
		// Over the limit by at most each source's open chunk: its size, and
		// the records compressed at once (64 KiB, a few KiB compressed).
		if used := c.Spooled(); used > int64(cfg.SpoolLimit)+2*(int64(cfg.ChunkSize)+8<<10) {
			t.Errorf("spool holds %d bytes during the outage, limit %d", used, cfg.SpoolLimit)
		}
		faulty.SetFailureRate(0)
		end()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := <-spoolDone; err != nil {
			t.Fatal(err)
		}
		if got := lines(t, inner, Filter{Container: "file"}); len(got) != 20000 || got[19999] != "file/stdout line 19999" {
			t.Errorf("paced source: %d lines in the store, want all 20000", len(got))
		}
		kept, dropped, last := commandLines(t, inner)
		if dropped == 0 {
			t.Error("no record of dropped lines")
		}
		if _, total := c.Totals(); total != dropped {
			t.Errorf("Totals counts %d dropped lines, the records %d", total, dropped)
		}
		if kept+dropped != 20000 || last != 19999 {
			t.Errorf("command: %d lines kept + %d dropped, last %d; want 20000 in all, the newest kept", kept, dropped, last)
		}
	})
}

// TestFullDisk: the spool's disk refuses the first chunks of each source
// (ENOSPC: they are written to /dev/full), and writing is tried again after
// a pause that grows, with jitter, at each failure in a row. The collector
// does not stop: a paced source reads its lost lines again, each stored
// once, in order; the wrapped command is never blocked, what it loses is
// counted, in the records and in Totals, and the rest is stored. The
// command prints until its lines reach the store again, however long the
// pauses were. Each source warns once, at its first failure, saying when it
// tries again.
func TestFullDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, b := t.TempDir(), memblob.OpenBucket(nil)
		cfg := testConfig()
		cfg.ChunkAge = time.Hour
		sp := testSpool(t, dir, b)
		cmd := &printing{stop: make(chan struct{})}
		file := &numbered{name: "file", n: 20000}
		var logged bytes.Buffer
		c, err := New(cfg, sp, []Source{cmd, file}, Options{Section: &memSection{}, Attempt: 1,
			Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		// The next two chunks of each source go to a full disk.
		for _, name := range []string{"command", "file"} {
			ss := c.source(name)
			for seq := ss.Next; seq < ss.Next+2; seq++ {
				if err := os.Symlink("/dev/full", c.prod.OpenPath(spool.ChunkName(name, ss.Attempt, seq))); err != nil {
					t.Fatal(err)
				}
			}
		}
		stop, end := context.WithCancel(context.Background())
		spoolDone := make(chan error, 1)
		go func() { spoolDone <- sp.Run(stop, context.Background()) }()
		done := make(chan error, 1)
		go func() { done <- c.Run(stop, context.Background()) }()
		start := time.Now()
		for kept, _, _ := commandLines(t, b); kept == 0; kept, _, _ = commandLines(t, b) {
			if time.Since(start) > 10*time.Minute {
				t.Fatal("no line of the command reached the store in 10 minutes")
			}
			time.Sleep(time.Second) // on the bubble's clock
		}
		close(cmd.stop)
		end()
		if err := <-done; err != nil {
			t.Fatalf("the collector stopped on a full disk: %v", err)
		}
		if err := <-spoolDone; err != nil {
			t.Fatal(err)
		}
		got := lines(t, b, Filter{Container: "file"})
		for i, line := range got {
			if want := fmt.Sprintf("file/stdout line %d", i); line != want {
				t.Fatalf("paced source: line %d is %q, want %q (of %d lines)", i, line, want, len(got))
			}
		}
		if len(got) != 20000 {
			t.Errorf("paced source: %d lines in the store, want all 20000, each once", len(got))
		}
		kept, dropped, last := commandLines(t, b)
		_, total := c.Totals()
		t.Logf("command: %d lines printed, %d kept, %d dropped (Totals: %d)", cmd.printed, kept, dropped, total)
		if dropped == 0 || kept+dropped != int64(cmd.printed) || total != dropped || last != cmd.printed-1 {
			t.Errorf("command: %d kept + %d dropped (Totals %d), last %d; want the %d printed in all, some dropped, the newest kept", kept, dropped, total, last, cmd.printed)
		}
		for _, source := range []string{"command", "file"} {
			var warnings, retries int
			for _, l := range strings.Split(logged.String(), "\n") {
				if strings.Contains(l, "cannot write log chunks to the spool") && strings.Contains(l, "source="+source+" ") {
					retries += strings.Count(l, " retry_in=")
					warnings += strings.Count(l, "level=WARN")
				}
			}
			if warnings != 1 || retries != 2 {
				t.Errorf("%s: %d warnings, %d lines with retry_in; want one warning, at the first of its 2 failures, and retry_in in both:\n%s", source, warnings, retries, logged.String())
			}
		}
	})
}

// printing is the wrapped command printing numbered lines, 100 every 25 ms
// (on the bubble's clock), until stop is closed; printed counts them.
type printing struct {
	stop    chan struct{}
	printed int
}

func (*printing) Name() string { return "command" }
func (*printing) Unpaced()     {}

func (s *printing) Run(ctx context.Context, from Position, emit func(Record, Position) error) error {
	for {
		select {
		case <-s.stop:
			return nil
		default:
		}
		for range 100 {
			r := Record{Time: time.Now(), Container: "command", Stream: "stdout", Value: []byte(fmt.Sprintf("line %d", s.printed))}
			if err := emit(r, Position(fmt.Sprint(s.printed+1))); err != nil {
				return err
			}
			s.printed++
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// commandLines reads back the "command" source's numbered lines: how many
// were kept, how many the records of dropped lines count, and the last
// line's number; kept lines must come in order.
func commandLines(t *testing.T, b *blob.Bucket) (kept, dropped int64, last int) {
	t.Helper()
	last = -1
	err := Read(context.Background(), b, Filter{Container: "command"}, func(e *StoredRecord, _ []byte) error {
		if e.Dropped > 0 {
			dropped += e.Dropped
			return nil
		}
		kept++
		var n int
		fmt.Sscanf(e.Value, "line %d", &n)
		if n <= last {
			t.Errorf("line %d after line %d", n, last)
		}
		last = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return kept, dropped, last
}

type unpaced struct {
	numbered
	done chan struct{} // closed when Run returns
}

func (*unpaced) Unpaced() {}

func (s *unpaced) Run(ctx context.Context, from Position, emit func(Record, Position) error) error {
	defer close(s.done)
	return s.numbered.Run(ctx, from, emit)
}

// BenchmarkCommandLines: the wrapped command's lines of 100 bytes, from
// the Output through the capture and the collector into gzip chunks in the
// spool. The command's blocks are written all at once (what the collector
// has not read waits in the capture's spill file), and the figure is the
// time until the collector has written the last line.
func BenchmarkCommandLines(b *testing.B) {
	line := []byte(fmt.Sprintf("%08d %s\n", 0, strings.Repeat("x", 90)))
	block := bytes.Repeat(line, 256<<10/len(line))
	perBlock := bytes.Count(block, []byte("\n"))
	dir := b.TempDir()
	sp, err := spool.New(spool.Config{Dir: dir, Uploader: sync.NewFileUploader(sync.DefaultConfig(), stores.Target{Bucket: memblob.OpenBucket(nil)}, sync.NewBudget(64<<20)),
		Interval: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	capture := child.NewCapture(child.CaptureConfig{SpillPath: filepath.Join(dir, "capture.spill"), SpillLimit: 1 << 40})
	stdout, stderr := capture.Output("stdout", io.Discard), capture.Output("stderr", io.Discard)
	cfg := DefaultConfig()
	cfg.ChunkAge = 10 * time.Second
	c, err := New(cfg, sp, []Source{NewCommandSource("command", capture)}, Options{Section: &memSection{}})
	if err != nil {
		b.Fatal(err)
	}
	stop, end := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(stop, context.Background()) }()
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stdout.Write(block)
	}
	stdout.Close()
	stderr.Close()
	end()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBlock), "ns/line")
	b.ReportMetric(float64(capture.Dropped()), "dropped")
}

// Follow prints what is in the store, then the chunks that land while it
// runs, each line once.
func TestFollow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, b := t.TempDir(), memblob.OpenBucket(nil)
		sec := &memSection{}
		runOnce(t, testConfig(), dir, b, sec, 1, &numbered{name: "app", n: 1000})
		ctx, cancel := context.WithCancel(context.Background())
		var got []string
		// printed[n] is closed once Follow has printed n lines.
		printed := map[int]chan struct{}{1000: make(chan struct{}), 3000: make(chan struct{})}
		waitPrinted := func(n int) {
			t.Helper()
			select {
			case <-printed[n]:
			case <-time.After(10 * time.Second):
				t.Fatalf("Follow printed fewer than %d lines in 10 s", n)
			}
		}
		done := make(chan error, 1)
		go func() {
			done <- Follow(ctx, b, 20*time.Millisecond, Filter{}, nil, func(e *StoredRecord, _ []byte) error {
				got = append(got, e.Value)
				if c := printed[len(got)]; c != nil {
					close(c)
				}
				return nil
			})
		}()
		waitPrinted(1000)
		// A second attempt adds lines while Follow runs.
		runOnce(t, testConfig(), dir, b, sec, 2, &numbered{name: "app", n: 3000})
		waitPrinted(3000)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(got) != 3000 {
			t.Fatalf("followed %d lines, want 3000", len(got))
		}
		// Each once; in order within what was there at start (the chunks that
		// land later may land out of order).
		seen := map[string]bool{}
		for i, v := range got {
			if seen[v] {
				t.Fatalf("%q printed twice", v)
			}
			seen[v] = true
			if want := fmt.Sprintf("line %d", i); i < 1000 && v != want {
				t.Fatalf("line %d = %q, want %q", i, v, want)
			}
		}
	})
}

// slow emits a numbered line every 10 ms, n of them.
type slow struct{ numbered }

func (s *slow) Run(ctx context.Context, from Position, emit func(Record, Position) error) error {
	for i := 0; i < s.n; i++ {
		time.Sleep(10 * time.Millisecond) // a source that writes slowly (on a synctest bubble's clock)
		if err := emit(Record{Time: time.Now(), Container: s.name, Stream: "stdout", Value: []byte(fmt.Sprint(i))}, Position(fmt.Sprint(i+1))); err != nil {
			return err
		}
	}
	return nil
}

// While the run goes on, the state is put in the store after cursors
// moved, at most once a chunk age, so that a new pod resumes from recent
// cursors.
func TestCheckpointsAfterCursorsMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, b := t.TempDir(), memblob.OpenBucket(nil)
		sp := testSpool(t, dir, b)
		var checkpoints atomic.Int64
		cfg := testConfig()
		cfg.ChunkAge = 100 * time.Millisecond
		c, err := New(cfg, sp, []Source{&slow{numbered{name: "app", n: 100}}}, Options{Section: &memSection{},
			Checkpoint: func(context.Context) error { checkpoints.Add(1); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		stop, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- sp.Run(stop, context.Background()) }()
		if err := c.Run(stop, context.Background()); err != nil {
			t.Fatal(err)
		}
		<-done
		if n := checkpoints.Load(); n < 1 || n > 12 {
			t.Errorf("%d checkpoints in about 1 s with a 100 ms chunk age; want a few, at most one per age", n)
		}
	})
}

// TestFollowEndsWhenTheRunEnded: Follow returns once the attempt that
// ended is the last that logged, and goes on while a later attempt logs.
func TestFollowEndsWhenTheRunEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, b := t.TempDir(), memblob.OpenBucket(nil)
		sec := &memSection{}
		runOnce(t, testConfig(), dir, b, sec, 1, &numbered{name: "app", n: 100})
		runOnce(t, testConfig(), dir, b, sec, 2, &numbered{name: "app", n: 200})
		for _, tc := range []struct {
			ok      bool
			attempt int
			returns bool
		}{
			{ok: true, attempt: 2, returns: true},  // the last attempt ended
			{ok: true, attempt: 1, returns: false}, // attempt 2 still running
			{ok: false, returns: false},            // nothing ended yet
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			n := 0
			err := Follow(ctx, b, 20*time.Millisecond, Filter{}, func(context.Context, string) (int, bool, error) { return tc.attempt, tc.ok, nil },
				func(*StoredRecord, []byte) error { n++; return nil })
			returned := ctx.Err() == nil
			cancel()
			if err != nil || n != 200 || returned != tc.returns {
				t.Errorf("ended attempt %d (%v): err %v, %d lines, returned by itself %v; want 200 lines and %v", tc.attempt, tc.ok, err, n, returned, tc.returns)
			}
		}
	})
}
