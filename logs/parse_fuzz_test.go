package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The parsers of what a container runtime writes: the CRI and Docker
// json-file lines of a file source, and the runtime timestamp of the
// Kubernetes and Docker sources' streams. The seed corpora are in
// testdata/fuzz/<target>/; `make fuzz` runs each target for a while.

// FuzzParseCRI: a line parseCRI takes, written again as the runtime writes
// it, parses to the same time, stream, text and partial flag.
func FuzzParseCRI(f *testing.F) {
	f.Add([]byte("2016-10-06T00:17:09.669794202Z stdout F text"))
	f.Add([]byte("2016-10-06T00:17:09.669794202Z stderr P part: one"))
	f.Add([]byte("2026-12-01T04:00:01Z stdout F"))
	f.Add([]byte("2026-12-01T04:00:01+02:00 stdout F:x tagged"))
	f.Fuzz(func(t *testing.T, line []byte) {
		p, ok := parseCRI(line)
		if !ok {
			if detectFormat(line) == formatCRI {
				t.Fatalf("detectFormat says cri for %q, which parseCRI refuses", line)
			}
			return
		}
		if p.stream != "stdout" && p.stream != "stderr" {
			t.Fatalf("stream %q", p.stream)
		}
		tag := "F"
		if p.partial {
			tag = "P"
		}
		again := fmt.Appendf(nil, "%s %s %s %s", p.time.Format(time.RFC3339Nano), p.stream, tag, p.text)
		q, ok := parseCRI(again)
		if !ok {
			t.Fatalf("%q parsed; written again as %q it does not", line, again)
		}
		if !q.time.Equal(p.time) || q.stream != p.stream || !bytes.Equal(q.text, p.text) || q.partial != p.partial {
			t.Fatalf("%q parsed to %+v; written again as %q, to %+v", line, p, again, q)
		}
	})
}

// FuzzParseDocker: a line parseDocker takes, encoded again as Docker's
// json-file driver writes it, parses to the same record; a line it refuses
// is not one detectFormat calls docker.
func FuzzParseDocker(f *testing.F) {
	f.Add([]byte(`{"log":"epoch 1 loss 0.91\n","stream":"stdout","time":"2026-12-01T04:00:00.000000001Z"}`))
	f.Add([]byte(`{"log":"a line docker split at 16k, ","stream":"stdout","time":"2026-12-01T04:00:00.12345679Z"}`))
	f.Add([]byte(`{"log":"tab\there \u00e9\n","stream":"stderr","time":"2026-12-01T04:00:02.5Z"}`))
	f.Add([]byte(`{"log":"x\n","stream":"stdout"}`))
	f.Add([]byte(`{"log":null,"stream":"stdout"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		p, ok := parseDocker(line)
		if !ok {
			if detectFormat(line) == formatDocker {
				t.Fatalf("detectFormat says docker for %q, which parseDocker refuses", line)
			}
			return
		}
		if detectFormat(line) != formatDocker {
			t.Fatalf("parseDocker takes %q, detectFormat says %s", line, detectFormat(line))
		}
		log := string(p.text)
		if !p.partial {
			log += "\n"
		}
		again, err := json.Marshal(dockerLine{Log: &log, Stream: p.stream, Time: p.time})
		if err != nil {
			return // a time JSON cannot hold (a year past 9999): nothing to compare
		}
		q, ok := parseDocker(again)
		if !ok {
			t.Fatalf("%q parsed; encoded again as %s it does not", line, again)
		}
		if !q.time.Equal(p.time) || q.stream != p.stream || !bytes.Equal(q.text, p.text) || q.partial != p.partial {
			t.Fatalf("%q parsed to %+v; encoded again as %s, to %+v", line, p, again, q)
		}
	})
}

// FuzzCutTimestamp: a message cutTimestamp splits, written again with the
// time in RFC 3339 (as the runtime stamps it), splits the same way.
func FuzzCutTimestamp(f *testing.F) {
	f.Add([]byte("2026-12-01T04:00:00.123456789Z text\n"))
	f.Add([]byte("2026-12-01T04:00:00Z \n"))
	f.Add([]byte("2026-12-01T06:00:00.5+02:00 with an offset"))
	f.Add([]byte("unable to retrieve container logs for containerd://abc"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ts, rest, ok := cutTimestamp(msg)
		if !ok {
			if !bytes.Equal(rest, msg) {
				t.Fatalf("refused %q but cut it to %q", msg, rest)
			}
			return
		}
		if ts.Location() != time.UTC {
			t.Fatalf("%q: time %v is not in UTC", msg, ts)
		}
		if !bytes.HasSuffix(msg, rest) {
			t.Fatalf("%q: the rest %q is not its end", msg, rest)
		}
		again := append([]byte(ts.Format(time.RFC3339Nano)+" "), rest...)
		ts2, rest2, ok := cutTimestamp(again)
		if !ok || !ts2.Equal(ts) || !bytes.Equal(rest2, rest) {
			t.Fatalf("%q cut to %v %q; written again as %q: %v %q %v", msg, ts, rest, again, ts2, rest2, ok)
		}
	})
}

// FuzzStampedReader: a runtime-stamped stream read to its end gives one
// record per line, its text without the stamp, in order; read again from
// the position saved after any record (the runtime asked for the messages
// since that position's second), it gives the lines after that record,
// each once.
func FuzzStampedReader(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), []byte{0, 0, 1}, uint8(1))
	f.Add([]byte("same second\nsame second too\n\nnext\n"), []byte{0, 0, 0, 9}, uint8(2))
	f.Add([]byte("x\ny"), []byte{3, 3}, uint8(0))
	f.Fuzz(func(t *testing.T, text, steps []byte, cut uint8) {
		// The runtime's log: one message a line of text, stamped in
		// order; each step moves the clock on by 0 to 255 ms.
		lines := strings.Split(string(text), "\n")
		if len(lines) > 64 {
			lines = lines[:64]
		}
		base := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
		at := base
		stamps := make([]time.Time, len(lines))
		for i := range lines {
			if i < len(steps) {
				at = at.Add(time.Duration(steps[i]) * time.Millisecond)
			}
			stamps[i] = at
		}
		stream := func(since time.Time) []byte {
			var b bytes.Buffer
			for i, l := range lines {
				if stamps[i].Before(since) {
					continue
				}
				b.WriteString(stamps[i].Format(time.RFC3339Nano) + " " + l + "\n")
			}
			return b.Bytes()
		}
		read := func(c *stampedCursor, stopAfter int) ([]string, Position) {
			var got []string
			var pos Position
			c.session()
			_, err := newStampedReader(false).copy(bytes.NewReader(stream(c.since())), c, Record{}, endLine,
				func(r Record, p Position) error {
					if stopAfter >= 0 && len(got) == stopAfter {
						return errRemoteStop
					}
					if r.Continued {
						t.Fatalf("record %q continued", r.Value)
					}
					got = append(got, r.Time.Format(time.RFC3339Nano)+" "+string(r.Value))
					pos = p
					return nil
				})
			if err != nil && !errors.Is(err, errRemoteStop) {
				t.Fatal(err)
			}
			return got, pos
		}
		var want []string
		for i, l := range lines {
			want = append(want, stamps[i].Format(time.RFC3339Nano)+" "+l)
		}
		got, _ := read(newStampedCursor(stampedPosition{}), -1)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		n := int(cut) % (len(lines) + 1)
		first, pos := read(newStampedCursor(stampedPosition{}), n)
		p, err := parseStampedPosition(pos)
		if err != nil {
			t.Fatalf("position %s: %v", pos, err)
		}
		rest, _ := read(newStampedCursor(p), -1)
		if all := append(first, rest...); strings.Join(all, "\n") != strings.Join(want, "\n") {
			t.Fatalf("read %d, then from %s:\n%s\nwant:\n%s", n, pos, strings.Join(all, "\n"), strings.Join(want, "\n"))
		}
	})
}
