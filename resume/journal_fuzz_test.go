package resume

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

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
			// last two where the newline between them changed; a change
			// that leaves a record as it was (the case of a checksum's
			// hex digit) is no change.
			got := stateJSON(t, st)
			line := bytes.Count(journal[:i], []byte{'\n'})
			if journal[i] == '\n' {
				line++
			}
			if line < whole-1 && got != stateJSON(t, applied(recs[:whole])) {
				t.Fatalf("byte %d of line %d changed (of %d): loaded another state, want an error", i, line+1, whole)
			}
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
		if b, err = appendJournalLine(b, r); err != nil {
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

// FuzzStoreJournal: the state in the store, a snapshot and the journal's
// objects of records after it, with the last object cut anywhere (a put the
// store took in part is not one it keeps, but a reader must not trust one):
// it reads as the snapshot and the records written whole; a byte changed in
// an object before the last is an error naming that object.
func FuzzStoreJournal(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0x83, 4, 5, 2, 2, 9, 1, 1, 0, 3, 0, 7}, []byte{2, 1}, uint16(30), uint16(5), byte(4))
	f.Fuzz(func(t *testing.T, ops, sizes []byte, cut, at uint16, xor byte) {
		recs := fuzzRecords(ops)
		if len(recs) == 0 {
			return
		}
		// The records in objects of 1 to 4 records, as saveStore and
		// mergeStore put them.
		var objs []journalObject
		for i, n := 0, 0; i < len(recs); n++ {
			size := 1
			if n < len(sizes) {
				size = 1 + int(sizes[n])%4
			}
			end := min(i+size, len(recs))
			objs = append(objs, journalObject{first: uint64(i + 1), last: uint64(end), data: journalOf(recs[i:end])})
			i = end
		}
		last := &objs[len(objs)-1]
		last.data = last.data[:int(cut)%(len(last.data)+1)]
		whole := int(last.first) - 1 + bytes.Count(last.data, []byte{'\n'})

		ctx := context.Background()
		put := func(objs []journalObject) *blob.Bucket {
			b := memblob.OpenBucket(nil)
			var snap bytes.Buffer
			if _, err := writeState(&snap, baseState()); err != nil {
				t.Fatal(err)
			}
			if err := b.WriteAll(ctx, StateKey, snap.Bytes(), nil); err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if err := b.WriteAll(ctx, o.key(), o.data, nil); err != nil {
					t.Fatal(err)
				}
			}
			return b
		}
		st, err := readStoreState(ctx, put(objs), "run-1")
		if err != nil {
			t.Fatalf("%d records in %d objects, the last cut to %d bytes: %v", len(recs), len(objs), len(last.data), err)
		}
		if got, want := stateJSON(t, st), stateJSON(t, applied(recs[:whole])); got != want {
			t.Fatalf("%d records in %d objects, the last cut to %d bytes (%d whole): read\n%s\nwant\n%s", len(recs), len(objs), len(last.data), whole, got, want)
		}

		if xor == 0 || len(objs) < 2 {
			return
		}
		i := int(at) % (len(objs) - 1)
		bad := slices.Clone(objs)
		bad[i].data = bytes.Clone(bad[i].data)
		bad[i].data[int(at)%len(bad[i].data)] ^= xor
		st, err = readStoreState(ctx, put(bad), "run-1")
		if err == nil && stateJSON(t, st) == stateJSON(t, applied(recs[:whole])) {
			return // a change that leaves the records as they were (a checksum digit's case)
		}
		if err == nil || !strings.Contains(err.Error(), bad[i].key()) {
			t.Fatalf("a byte of %s changed: %v, want an error naming it", bad[i].key(), err)
		}
	})
}
