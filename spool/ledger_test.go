package spool

import (
	"encoding/json"
	"fmt"
	"testing"
)

type payload struct {
	End   int `json:"end"`
	Noted int `json:"noted,omitempty"`
}

func names[P any](l *Ledger[P]) []string {
	var out []string
	for c := range l.All() {
		out = append(out, c.Name)
	}
	return out
}

// Chunks come in chunk order whatever order they are sealed in: attempt,
// then sequence, and an earlier
// version's resource chunk (<seq>-a<attempt>) by its attempt and sequence.
func TestLedgerOrder(t *testing.T) {
	var l Ledger[payload]
	for _, name := range []string{
		ChunkName("app", 2, 1),
		ChunkName("app", 1, 10),
		"000007-a1.jsonl.gz",
		ChunkName("app", 1, 9),
		ChunkName("app", 10, 1),
		ChunkName("app", 1, 2),
	} {
		l.Sealed(name, payload{})
	}
	got := fmt.Sprint(names(&l))
	want := fmt.Sprint([]string{
		ChunkName("app", 1, 2), "000007-a1.jsonl.gz", ChunkName("app", 1, 9), ChunkName("app", 1, 10),
		ChunkName("app", 2, 1), ChunkName("app", 10, 1),
	})
	if got != want {
		t.Errorf("order:\n got %s\nwant %s", got, want)
	}
}

// The cursor passes the first chunks while each is stored or dropped, in
// order, never a chunk the store does not hold.
func TestLedgerAdvance(t *testing.T) {
	var l Ledger[payload]
	for seq := uint64(1); seq <= 4; seq++ {
		l.Sealed(ChunkName("s", 1, seq), payload{End: int(seq) * 10})
	}
	cursor := 0
	pass := func(c Chunk[payload]) { cursor = c.Payload.End }
	if _, ok := l.Stored(ChunkName("s", 1, 2)); !ok {
		t.Fatal("chunk 2 not in the ledger")
	}
	if n := l.Advance(pass); n != 0 || cursor != 0 {
		t.Errorf("chunk 2 stored before chunk 1: passed %d, cursor %d; want none", n, cursor)
	}
	l.Drop(ChunkName("s", 1, 1))
	if n := l.Advance(pass); n != 2 || cursor != 20 {
		t.Errorf("chunk 1 dropped: passed %d, cursor %d; want 2, 20", n, cursor)
	}
	if _, ok := l.Stored(ChunkName("s", 1, 1)); ok {
		t.Error("a chunk behind the cursor is still in the ledger")
	}
	if got := l.Forget(ChunkName("s", 1, 3)); fmt.Sprint(got) != fmt.Sprint([]string{ChunkName("s", 1, 3), ChunkName("s", 1, 4)}) {
		t.Errorf("Forget(3) = %v, want chunks 3 and 4", got)
	}
	if l.Len() != 0 || !l.IsZero() {
		t.Errorf("%d chunks left, want none", l.Len())
	}
}

// The JSON is an object by name: the payload's fields, then "stored" and
// "dropped" when set, as the logs' section has always written it.
func TestLedgerJSON(t *testing.T) {
	var l Ledger[payload]
	l.Sealed(ChunkName("s", 1, 2), payload{End: 20})
	l.Sealed(ChunkName("s", 1, 1), payload{End: 10, Noted: 3})
	l.Sealed(ChunkName("s", 1, 3), payload{End: 30})
	l.Stored(ChunkName("s", 1, 2))
	l.Drop(ChunkName("s", 1, 3))
	l.Stored(ChunkName("s", 1, 3))
	b, err := json.Marshal(struct {
		Chunks Ledger[payload] `json:"chunks,omitzero"`
		Empty  Ledger[payload] `json:"empty,omitzero"`
	}{Chunks: l})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"chunks":{"s.000001.00000001.jsonl.gz":{"end":10,"noted":3},"s.000001.00000002.jsonl.gz":{"end":20,"stored":true},"s.000001.00000003.jsonl.gz":{"end":30,"stored":true,"dropped":true}}}`
	if string(b) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", b, want)
	}
	var back struct {
		Chunks Ledger[payload] `json:"chunks"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(struct {
		Chunks Ledger[payload] `json:"chunks"`
	}{back.Chunks})
	if string(again) != want {
		t.Errorf("read back and written again:\n got %s\nwant %s", again, want)
	}
	if got := fmt.Sprint(names(&back.Chunks)); got != fmt.Sprint(names(&l)) {
		t.Errorf("read back in the order %s", got)
	}

	var flagsOnly Ledger[struct{}]
	flagsOnly.Sealed("x", struct{}{})
	flagsOnly.Stored("x")
	if b, _ := json.Marshal(flagsOnly); string(b) != `{"x":{"stored":true}}` {
		t.Errorf("an empty payload, stored: %s", b)
	}
}
