package resume

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsidecar/collector/stores"
)

// FuzzLoad: any bytes as the snapshot and the journal beside it: Load never
// panics, and an error names the file it could not read.
func FuzzLoad(f *testing.F) {
	snap, _ := os.ReadFile("testdata/state-v1/state.json")
	f.Add(snap, []byte{})
	f.Add([]byte(`{"version":2,"run":"r","attempt":1,"seq":1,"outputs":{"a":{"size":1,"mtime":2}}}`),
		journalOf(fuzzRecords([]byte{0, 1, 2, 0x83, 4, 5, 2, 2, 9})))
	f.Add([]byte(`{"version":2,"run":"r","attempt":1}`), []byte("00000000 {}\n"))
	f.Fuzz(func(t *testing.T, snapshot, journal []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		os.WriteFile(path, snapshot, 0o600)
		os.WriteFile(journalPath(path), journal, 0o600)
		st, err := Load(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), journalPath(path)) {
				t.Fatalf("the error names no file: %v", err)
			}
			return
		}
		if st.Version < 1 || st.Version > Version || st.Outputs == nil {
			t.Fatalf("loaded version %d, outputs %v", st.Version, st.Outputs)
		}
		// What Load read, saved and loaded again, is the same state.
		if err := Save(path, st); err != nil {
			t.Fatal(err)
		}
		again, err := Load(path)
		if err != nil {
			t.Fatalf("a saved state does not load: %v", err)
		}
		if a, b := stateJSON(t, st), stateJSON(t, again); a != b {
			t.Fatalf("loaded %s\nsaved and loaded again %s", a, b)
		}
	})
}

// FuzzJournalCut: a journal of records cut anywhere (a write a crash
// interrupted) loads as the snapshot and the records written whole before
// the cut; a byte changed in a line before the last two is an error naming
// the journal.
func FuzzJournalCut(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0x83, 4, 5, 2, 2, 9, 1, 1, 0, 3, 0, 7}, uint16(40), uint16(3), byte(1))
	f.Add([]byte{2, 0, 1, 2, 1, 1, 3, 2, 2}, uint16(0xffff), uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, ops []byte, cut, at uint16, xor byte) {
		recs := fuzzRecords(ops)
		journal := journalOf(recs)
		n := int(cut) % (len(journal) + 1)
		journal = journal[:n]
		whole := bytes.Count(journal, []byte{'\n'}) // records written whole

		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := Save(path, baseState()); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(journalPath(path), journal, 0o600)
		st, err := Load(path)
		if err != nil {
			t.Fatalf("journal of %d records cut at %d: %v", len(recs), n, err)
		}
		if got, want := stateJSON(t, st), stateJSON(t, applied(recs[:whole])); got != want {
			t.Fatalf("journal cut at %d (%d records whole) loads\n%s\nwant\n%s", n, whole, got, want)
		}

		if xor == 0 || len(journal) == 0 {
			return
		}
		i := int(at) % len(journal)
		bad := bytes.Clone(journal)
		bad[i] ^= xor
		os.WriteFile(journalPath(path), bad, 0o600)
		st, err = Load(path)
		if err == nil {
			// Only the last line may be taken for a torn write, or the
			// last two where the newline between them changed.
			line := bytes.Count(journal[:i], []byte{'\n'})
			if journal[i] == '\n' {
				line++
			}
			if line < whole-1 {
				t.Fatalf("byte %d of line %d changed (of %d): loaded, want an error", i, line+1, whole)
			}
			got := stateJSON(t, st)
			for k := whole; k >= 0; k-- {
				if got == stateJSON(t, applied(recs[:k])) {
					return
				}
			}
			t.Fatalf("byte %d changed: loaded a state that no prefix of the records makes:\n%s", i, got)
		}
		if !strings.Contains(err.Error(), journalPath(path)) {
			t.Fatalf("the error names no journal: %v", err)
		}
	})
}

// fuzzRecords makes journal records of ops, three bytes a change: what
// changes (an output put or deleted, an upload's progress set or ended, a
// section saved), which one, and a value. A change whose first byte has its
// high bit set goes in the record before.
func fuzzRecords(ops []byte) []*record {
	var recs []*record
	for i := 0; i+3 <= len(ops) && len(recs) < 200; i += 3 {
		op, which, v := ops[i], ops[i+1], ops[i+2]
		if op&0x80 == 0 || len(recs) == 0 {
			recs = append(recs, &record{Seq: uint64(len(recs) + 1)})
		}
		r := recs[len(recs)-1]
		switch op % 5 {
		case 0:
			r.setOutput(fmt.Sprintf("dir/f%d", which%8), &Entry{Size: int64(v), ModTime: int64(i), Inode: uint64(which)})
		case 1:
			r.setOutput(fmt.Sprintf("dir/f%d", which%8), nil)
		case 2:
			r.setUpload(fmt.Sprintf("u%d", which%4), &stores.Progress{Key: "k", Size: int64(v), PartSize: 5 << 20, ID: "id"})
		case 3:
			r.setUpload(fmt.Sprintf("u%d", which%4), nil)
		case 4:
			r.setSection(fmt.Sprintf("s%d", which%3), json.RawMessage(fmt.Sprintf(`{"n":%d}`, v)))
		}
	}
	return recs
}

func journalOf(recs []*record) []byte {
	var b []byte
	for _, r := range recs {
		var err error
		if b, err = appendRecord(b, r); err != nil {
			panic(err)
		}
	}
	return b
}

func baseState() *State {
	return &State{Version: Version, Run: "run-1", Attempt: 1, Outputs: Manifest{"kept": {Size: 3, ModTime: 4}}}
}

// applied is the base state with recs applied.
func applied(recs []*record) *State {
	st := baseState()
	for _, r := range recs {
		r.apply(st)
	}
	return st
}

func stateJSON(t *testing.T, st *State) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := writeState(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
