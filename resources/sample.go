package resources

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Field is one measure of a sample, named with its unit (cpu_cores,
// rss_bytes, gpu0_util_percent).
type Field struct {
	Name  string
	Value float64
}

// Sample is one record of the series: what every source measured at Time.
// Gauges are the value at Time; counters are what happened since the
// previous sample of the same attempt (cpu_cores is a rate over that
// interval, read_bytes and cgroup_oom_kills are counts over it).
type Sample struct {
	Time    time.Time
	Attempt int
	// Interval is the time since the previous sample of the attempt (for
	// the first, since the sources read their baseline at start).
	Interval time.Duration
	Fields   []Field
}

// Add appends a field.
func (s *Sample) Add(name string, v float64) { s.Fields = append(s.Fields, Field{name, v}) }

// Value returns the field name and whether the sample has it.
func (s *Sample) Value(name string) (float64, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// appendJSON appends the sample as one JSON object and a newline:
// {"timestamp":…,"attempt":…,"interval_seconds":…, fields in order}.
func (s *Sample) appendJSON(b []byte) []byte {
	b = append(b, `{"timestamp":"`...)
	b = s.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","attempt":`...)
	b = strconv.AppendInt(b, int64(s.Attempt), 10)
	b = append(b, `,"interval_seconds":`...)
	b = appendNumber(b, round(s.Interval.Seconds(), 3))
	for _, f := range s.Fields {
		b = append(b, ',', '"')
		b = append(b, f.Name...) // names are [a-z0-9_]
		b = append(b, '"', ':')
		b = appendNumber(b, f.Value)
	}
	return append(b, '}', '\n')
}

func appendNumber(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, '0')
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// round rounds v to digits decimals.
func round(v float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// parseSample reads back one line of a chunk.
func parseSample(line []byte) (Sample, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Sample{}, err
	}
	var s Sample
	for k, v := range raw {
		switch k {
		case "timestamp":
			var ts string
			if err := json.Unmarshal(v, &ts); err != nil {
				return Sample{}, fmt.Errorf("timestamp: %w", err)
			}
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				return Sample{}, err
			}
			s.Time = t
		case "attempt":
			if err := json.Unmarshal(v, &s.Attempt); err != nil {
				return Sample{}, fmt.Errorf("attempt: %w", err)
			}
		case "interval_seconds":
			var f float64
			if err := json.Unmarshal(v, &f); err != nil {
				return Sample{}, fmt.Errorf("interval_seconds: %w", err)
			}
			s.Interval = time.Duration(f * float64(time.Second))
		default:
			var f float64
			if err := json.Unmarshal(v, &f); err != nil {
				return Sample{}, fmt.Errorf("%s: %w", k, err)
			}
			s.Add(k, f)
		}
	}
	return s, nil
}
