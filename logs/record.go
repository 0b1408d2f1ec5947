package logs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// timeLayout is RFC 3339 with all nine digits of the nanoseconds, so that
// the timestamps of a chunk sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// StoredRecord is a Record as it is stored and read back: a line of a
// chunk, in JSON. The field names are Polyaxon's V1Log (timestamp,
// container, stream, value, node, pod) plus the collector's own.
type StoredRecord struct {
	Timestamp time.Time `json:"timestamp"`
	Container string    `json:"container"`
	Stream    string    `json:"stream"`
	// Value is the line without its newline. A line that is not valid
	// UTF-8 has each invalid byte shown as U+FFFD here, and its exact
	// bytes in Bytes.
	Value   string `json:"value"`
	Node    string `json:"node,omitempty"`
	Pod     string `json:"pod,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Continued marks a value not followed by a newline: a piece of a line
	// longer than the line limit (the next record of the stream continues
	// it), or the end of a stream that ended without one.
	Continued bool `json:"continued,omitempty"`
	// Bytes is the line's exact bytes (base64), only when Value had to
	// replace invalid UTF-8.
	Bytes []byte `json:"bytes,omitempty"`
	// Dropped, on a record the collector wrote itself, counts the lines
	// of the wrapped command it dropped before this one because the spool
	// was full.
	Dropped int64 `json:"dropped,omitempty"`
	// Replica is the replica of a distributed run whose chunk held the
	// record, set by Read; a chunk's records do not hold it.
	Replica string `json:"replica,omitempty"`
}

// Line is the record's line as the source had it, without its newline.
func (e *StoredRecord) Line() []byte {
	if e.Bytes != nil {
		return e.Bytes
	}
	return []byte(e.Value)
}

// ParseStoredRecord decodes one line of a chunk.
func ParseStoredRecord(line []byte) (StoredRecord, error) {
	var e StoredRecord
	if err := json.Unmarshal(line, &e); err != nil {
		return e, fmt.Errorf("log record: %w", err)
	}
	return e, nil
}

// recordMeta is what the collector adds to every record of a run.
type recordMeta struct {
	node, pod string
	attempt   int
}

// appendChunkLine appends r to a chunk's bytes b as one JSON line (with
// its newline). It is written by hand: encoding/json would replace invalid
// UTF-8 silently, and this runs for every line.
func appendChunkLine(b []byte, r *Record, m *recordMeta, ts *stampCache) []byte {
	b = append(b, `{"timestamp":"`...)
	b = ts.append(b, r.Time)
	b = append(b, `","container":`...)
	b, _ = appendString(b, r.Container)
	b = append(b, `,"stream":`...)
	b, _ = appendString(b, r.Stream)
	b = append(b, `,"value":`...)
	var valid bool
	b, valid = appendString(b, r.Value)
	if m.node != "" {
		b = append(b, `,"node":`...)
		b, _ = appendString(b, m.node)
	}
	if m.pod != "" {
		b = append(b, `,"pod":`...)
		b, _ = appendString(b, m.pod)
	}
	if m.attempt > 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(m.attempt), 10)
	}
	if r.Continued {
		b = append(b, `,"continued":true`...)
	}
	if !valid {
		b = append(b, `,"bytes":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Value)
		b = append(b, '"')
	}
	if r.Dropped > 0 {
		b = append(b, `,"dropped":`...)
		b = strconv.AppendInt(b, r.Dropped, 10)
	}
	return append(b, "}\n"...)
}

// stampCache keeps the last timestamp formatted: lines read together
// share one.
type stampCache struct {
	t time.Time
	s []byte
}

func (c *stampCache) append(b []byte, t time.Time) []byte {
	if c.s == nil || !t.Equal(c.t) {
		c.s = t.UTC().AppendFormat(c.s[:0], timeLayout)
		c.t = t
	}
	return append(b, c.s...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. It reports whether s was valid
// UTF-8; each invalid byte is written as U+FFFD.
func appendString[T string | []byte](b []byte, s T) ([]byte, bool) {
	valid := true
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			valid = false
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"'), valid
}
