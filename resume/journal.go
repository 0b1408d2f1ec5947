package resume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"strconv"

	"github.com/mlsidecar/collector/stores"
)

// The run's state is a snapshot (a whole State) followed by a journal: one
// record per checkpoint, holding only what changed since the record before
// it. Locally the journal is one file beside the snapshot, appended to; in
// the store it is a series of small immutable objects (see journal_store.go).
// A checkpoint costs what changed, not what exists; a new snapshot replaces
// the journal once it has grown past a fraction of the snapshot (compactAt).
//
// A record is one line: the CRC-32C of its JSON in 8 hex digits, a space, the
// JSON, a newline. A last line cut short or failing its checksum is a write
// that a crash interrupted, and is ignored; anywhere else it is corruption,
// an error naming the file.

// record is one journal record: the changes of one checkpoint.
type record struct {
	// Seq numbers the records of one journal: each is one more than the
	// record before it. A snapshot's State.Seq is the last record it holds.
	Seq uint64 `json:"seq"`
	// Outputs are the manifest's changes: the new entry, or null for a file
	// deleted from the store.
	Outputs Manifest `json:"outputs,omitempty"`
	// Uploads are the large uploads' progress: the new progress, or null for
	// an upload that finished or was dropped.
	Uploads map[string]*stores.Progress `json:"uploads,omitempty"`
	// Sections are the components' sections saved since the record before.
	Sections map[string]json.RawMessage `json:"sections,omitempty"`
}

func (r *record) empty() bool {
	return len(r.Outputs) == 0 && len(r.Uploads) == 0 && len(r.Sections) == 0
}

// durable tells whether the record must reach the disk before its write
// returns. Progress alone need not: a part lost with the machine is listed
// again from the store (stores.Journal), and an fsync per part would slow
// the upload down.
func (r *record) durable() bool {
	return len(r.Outputs) > 0 || len(r.Sections) > 0
}

// setOutput records the entry the store now holds for rel (nil: deleted).
func (r *record) setOutput(rel string, e *Entry) {
	if r.Outputs == nil {
		r.Outputs = Manifest{}
	}
	r.Outputs[rel] = e
}

// setUpload records an upload's progress (nil: the upload is over).
func (r *record) setUpload(key string, p *stores.Progress) {
	if r.Uploads == nil {
		r.Uploads = map[string]*stores.Progress{}
	}
	r.Uploads[key] = p
}

// setSection records a section's value.
func (r *record) setSection(name string, v json.RawMessage) {
	if r.Sections == nil {
		r.Sections = map[string]json.RawMessage{}
	}
	r.Sections[name] = v
}

// apply changes st as the record says.
func (r *record) apply(st *State) {
	if st.Outputs == nil {
		st.Outputs = Manifest{}
	}
	for rel, e := range r.Outputs {
		if e == nil {
			delete(st.Outputs, rel)
		} else {
			st.Outputs[rel] = e
		}
	}
	for key, p := range r.Uploads {
		if p == nil {
			delete(st.Uploads, key)
			continue
		}
		if st.Uploads == nil {
			st.Uploads = map[string]stores.Progress{}
		}
		st.Uploads[key] = *p
	}
	if len(r.Sections) > 0 {
		if st.Sections == nil {
			st.Sections = map[string]json.RawMessage{}
		}
		maps.Copy(st.Sections, r.Sections)
	}
	st.Seq = r.Seq
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendJournalLine appends r to b as a journal line: its checksum, a space,
// its JSON, a newline.
func appendJournalLine(b []byte, r *record) ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode a state record: %w", err)
	}
	var sum [8]byte
	crc := strconv.AppendUint(sum[:0], uint64(crc32.Checksum(data, castagnoli)), 16)
	for range 8 - len(crc) {
		b = append(b, '0')
	}
	b = append(b, crc...)
	b = append(b, ' ')
	b = append(b, data...)
	return append(b, '\n'), nil
}

// errTorn says a line is not a whole record.
var errTorn = errors.New("not a whole record (cut short, or its checksum does not match)")

// decodeRecord reads one journal line, without its newline.
func decodeRecord(line []byte) (*record, error) {
	if len(line) < 10 || line[8] != ' ' {
		return nil, errTorn
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil || uint32(want) != crc32.Checksum(line[9:], castagnoli) {
		return nil, errTorn
	}
	var r record
	if err := json.Unmarshal(line[9:], &r); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return &r, nil
}

// readRecords calls fn for each record of data, journal lines in order. When
// tail is set, data ends the journal, and a last line that is not a whole
// record (a write a crash interrupted) is ignored; any other bad line is an
// error naming name and the line.
func readRecords(data []byte, name string, tail bool, fn func(*record) error) error {
	for n := 1; len(data) > 0; n++ {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		r, err := decodeRecord(line)
		if err == nil && i < 0 {
			err = errTorn // no newline: the write stopped before its end
		}
		if err != nil {
			if tail && len(data) == 0 {
				return nil
			}
			return fmt.Errorf("journal %s: line %d: %w", name, n, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// compactAt is the journal's size at which a snapshot replaces it: a quarter
// of the snapshot, so that the snapshots written cost at most four times the
// records themselves (O(changes), not O(files)); at least 16 KiB, so that a
// small state is not written whole at every change; at most 4 MiB, so that a
// restart reads little beside the snapshot.
func compactAt(snapshot int64) int64 { return min(max(snapshot/4, 16<<10), 4<<20) }
