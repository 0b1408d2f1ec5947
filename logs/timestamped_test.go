package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

// errRemoteStop is what a test's emit returns to stop a source, as the
// component does when it stops.
var errRemoteStop = errors.New("test: stop")

// remoteRecorder is the emit of the Kubernetes and Docker source tests: it
// keeps each record as "time|stream|value", "+" appended to a Continued
// one, and the position passed with the last record.
type remoteRecorder struct {
	mu        stdsync.Mutex
	recs      []string
	pos       Position
	stopAfter int           // emit fails once it has this many records (0: never)
	emitted   chan struct{} // closed at the next record (nil: no one waits)
}

func (r *remoteRecorder) emit(rec Record, p Position) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopAfter > 0 && len(r.recs) >= r.stopAfter {
		return errRemoteStop
	}
	if p == nil {
		return errors.New("test: a record without a position")
	}
	s := rec.Time.Format(time.RFC3339Nano) + "|" + rec.Stream + "|" + string(rec.Value)
	if rec.Continued {
		s += "+"
	}
	r.recs = append(r.recs, s)
	r.pos = append(Position(nil), p...)
	if r.emitted != nil {
		close(r.emitted)
		r.emitted = nil
	}
	return nil
}

func (r *remoteRecorder) records() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.recs...)
}

func (r *remoteRecorder) position() Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

// waitFor waits until n records have been emitted.
func (r *remoteRecorder) waitFor(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		have := len(r.recs)
		if r.emitted == nil {
			r.emitted = make(chan struct{})
		}
		next := r.emitted
		r.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-next:
		case <-timeout:
			t.Fatalf("waited 10 s for %d records; have %d:\n%s", n, have, strings.Join(r.records(), "\n"))
		}
	}
}

// runSource runs src in the background; wait returns Run's error.
func runSource(ctx context.Context, src Source, from Position, rec *remoteRecorder) (wait func(t *testing.T) error) {
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, from, rec.emit) }()
	return func(t *testing.T) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatalf("the source did not return within 15 s; records:\n%s", strings.Join(rec.records(), "\n"))
			return nil
		}
	}
}

// sameRecords reports the first difference between got and want.
func sameRecords(t *testing.T, got, want []string) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Fatalf("record %d of %d (want %d):\n got %.200q\nwant %.200q\nall:\n%s", i, len(got), len(want), g, w, strings.Join(trimmed(got), "\n"))
		}
	}
}

func trimmed(recs []string) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%.120s", r)
	}
	return out
}

// stamp is the time of the i-th test line: four lines share each
// timestamp, four timestamps share each second, so that a resume (which
// asks from the second) gets lines it had passed again.
func stamp(i int) time.Time {
	return time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC).Add(time.Duration(i/4) * 250 * time.Millisecond)
}

func TestStampedCursorDropsWhatWasPassed(t *testing.T) {
	at := stamp(0)
	c := newStampedCursor(stampedPosition{Time: at.Add(time.Millisecond), N: 2})
	if got, want := c.since(), at; !got.Equal(want) {
		t.Fatalf("since() = %v, want the second %v", got, want)
	}
	c.session()
	for i, tc := range []struct {
		ts   time.Time
		drop bool
	}{
		{at, true},                        // before the position
		{at.Add(time.Millisecond), true},  // passed: 1 of 2
		{at.Add(time.Millisecond), true},  // passed: 2 of 2
		{at.Add(time.Millisecond), false}, // the third line at that time is new
		{at, false},                       // and everything after it
		{at.Add(2 * time.Millisecond), false},
	} {
		if got := c.passedBefore(tc.ts); got != tc.drop {
			t.Errorf("message %d (%v): passedBefore = %v, want %v", i, tc.ts, got, tc.drop)
		}
	}
}

func TestStampedPositionJSON(t *testing.T) {
	for _, p := range []stampedPosition{
		{},
		{Time: stamp(5).Add(123456789), N: 3},
		{Restarts: 2, Time: stamp(9).In(time.FixedZone("x", 3600)), N: 1, Off: 262113},
		{Restarts: 1},
	} {
		c := newStampedCursor(p)
		got := string(c.position())
		want, _ := json.Marshal(stampedPosition{Restarts: p.Restarts, Time: p.Time, N: p.N, Off: p.Off})
		if got != string(want) {
			t.Errorf("position() = %s, want %s (json.Marshal)", got, want)
		}
		back, err := parseStampedPosition(Position(got))
		if err != nil || back.Restarts != p.Restarts || !back.Time.Equal(p.Time) || back.N != p.N || back.Off != p.Off {
			t.Errorf("%s read back as %+v, %v", got, back, err)
		}
	}
}

func TestParseStampedPosition(t *testing.T) {
	for _, bad := range []string{`{"n":3}`, `{"time":"x"}`, `{"time":"2026-12-01T04:00:00Z","n":-1}`, `[1]`} {
		if _, err := parseStampedPosition(Position(bad)); err == nil || !strings.Contains(err.Error(), "saved position") {
			t.Errorf("position %s: %v, want an error naming the saved position", bad, err)
		}
	}
	p, err := parseStampedPosition(nil)
	if err != nil || !p.Time.IsZero() {
		t.Errorf("nil position: %+v, %v", p, err)
	}
}

// BenchmarkStampedReader reads a Kubernetes-format log (RFC 3339 stamps,
// 100-byte lines) through the cursor: the CPU a Kubernetes or Docker source
// spends per byte, without the network.
func BenchmarkStampedReader(b *testing.B) {
	var log bytes.Buffer
	for i := range 10000 {
		fmt.Fprintf(&log, "%s %-68d\n", stamp(i).Format(time.RFC3339Nano), i)
	}
	r := newStampedReader(false)
	emit := func(Record, Position) error { return nil }
	b.SetBytes(int64(log.Len()))
	for b.Loop() {
		c := newStampedCursor(stampedPosition{})
		c.session()
		if n, err := r.copy(bytes.NewReader(log.Bytes()), c, Record{Stream: "stdout"}, endLine, emit); err != nil || n != 10000 {
			b.Fatal(n, err)
		}
	}
}
