package spool

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// Ledger is a producer's record of one series' sealed chunks that its
// cursor has not passed yet, in chunk order (attempt, then sequence), each
// with the producer's payload P: what the producer needs to move its cursor
// past the chunk. The cursor moves (Advance) past the first chunks once
// each is stored or dropped, in order, so that it never passes a chunk the
// store does not hold. The zero Ledger is empty; it is not safe for
// concurrent use.
//
// In JSON a Ledger is an object by chunk name, each value the payload's
// object with "stored": true and "dropped": true added when set; P encodes
// as a JSON object without fields of those names.
type Ledger[P any] struct {
	chunks []Chunk[P] // in order
}

// Chunk is a sealed chunk in a Ledger.
type Chunk[P any] struct {
	Name    string
	Attempt int
	Seq     uint64
	Payload P
	Stored  bool // the store holds it
	Dropped bool // given up on: it does not reach the store
}

// compareChunks orders chunks by attempt, then sequence; the name breaks
// ties (and orders names ParseChunkName does not read).
func compareChunks[P any](a, b Chunk[P]) int {
	return cmp.Or(cmp.Compare(a.Attempt, b.Attempt), cmp.Compare(a.Seq, b.Seq), strings.Compare(a.Name, b.Name))
}

// search returns where the chunk name is, or would be, and whether it is.
func (l *Ledger[P]) search(name string) (int, bool) {
	_, attempt, seq, _ := ParseChunkName(name)
	return slices.BinarySearchFunc(l.chunks, Chunk[P]{Name: name, Attempt: attempt, Seq: seq}, compareChunks[P])
}

// Sealed records the chunk name, sealed with payload p; a chunk of that
// name already recorded is replaced.
func (l *Ledger[P]) Sealed(name string, p P) {
	_, attempt, seq, _ := ParseChunkName(name)
	c := Chunk[P]{Name: name, Attempt: attempt, Seq: seq, Payload: p}
	if i, ok := l.search(name); ok {
		l.chunks[i] = c
	} else {
		l.chunks = slices.Insert(l.chunks, i, c)
	}
}

func (l *Ledger[P]) find(name string) *Chunk[P] {
	if i, ok := l.search(name); ok {
		return &l.chunks[i]
	}
	return nil
}

// Stored marks the chunk name as held by the store, and returns it; false
// when the ledger does not hold it (a chunk the cursor passed, or one it
// never recorded).
func (l *Ledger[P]) Stored(name string) (Chunk[P], bool) {
	c := l.find(name)
	if c == nil {
		return Chunk[P]{}, false
	}
	c.Stored = true
	return *c, true
}

// Drop marks the chunk name as given up on, so that the cursor moves past
// it, and returns it; false when the ledger does not hold it.
func (l *Ledger[P]) Drop(name string) (Chunk[P], bool) {
	c := l.find(name)
	if c == nil {
		return Chunk[P]{}, false
	}
	c.Dropped = true
	return *c, true
}

// Forget removes the chunk name and every later one, as if never sealed
// (their lines are to be written again), and returns their names.
func (l *Ledger[P]) Forget(name string) []string {
	i, ok := l.search(name)
	if !ok {
		return nil
	}
	var names []string
	for _, c := range l.chunks[i:] {
		names = append(names, c.Name)
	}
	l.chunks = slices.Delete(l.chunks, i, len(l.chunks))
	return names
}

// Advance removes the first chunks, in order, while each is stored or
// dropped, handing each to pass, which moves the producer's cursor past
// it; it returns how many it removed.
func (l *Ledger[P]) Advance(pass func(Chunk[P])) int {
	n := 0
	for n < len(l.chunks) && (l.chunks[n].Stored || l.chunks[n].Dropped) {
		pass(l.chunks[n])
		n++
	}
	l.chunks = slices.Delete(l.chunks, 0, n)
	return n
}

// All yields the chunks in order.
func (l *Ledger[P]) All() iter.Seq[Chunk[P]] {
	return func(yield func(Chunk[P]) bool) {
		for _, c := range l.chunks {
			if !yield(c) {
				return
			}
		}
	}
}

// Last returns the last chunk; false when the ledger is empty.
func (l *Ledger[P]) Last() (Chunk[P], bool) {
	if len(l.chunks) == 0 {
		return Chunk[P]{}, false
	}
	return l.chunks[len(l.chunks)-1], true
}

// Len is how many chunks the ledger holds.
func (l Ledger[P]) Len() int { return len(l.chunks) }

// IsZero reports an empty ledger, which a field tagged omitzero leaves
// out of its JSON.
func (l Ledger[P]) IsZero() bool { return len(l.chunks) == 0 }

// MarshalJSON encodes the ledger as an object by chunk name.
func (l Ledger[P]) MarshalJSON() ([]byte, error) {
	m := make(map[string]json.RawMessage, len(l.chunks))
	for _, c := range l.chunks {
		b, err := json.Marshal(c.Payload)
		if err != nil {
			return nil, err
		}
		if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("spool: the payload of chunk %s does not encode as a JSON object", c.Name)
		}
		b = appendFlag(b, "stored", c.Stored)
		b = appendFlag(b, "dropped", c.Dropped)
		m[c.Name] = b
	}
	return json.Marshal(m) // in the order of the names
}

// appendFlag adds "name":true to the object b when set.
func appendFlag(b []byte, name string, set bool) []byte {
	if !set {
		return b
	}
	b = b[:len(b)-1]
	if !bytes.Equal(b, []byte("{")) {
		b = append(b, ',')
	}
	return append(b, `"`+name+`":true}`...)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (l *Ledger[P]) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	l.chunks = l.chunks[:0]
	for name, raw := range m {
		var p P
		var flags struct {
			Stored  bool `json:"stored"`
			Dropped bool `json:"dropped"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("chunk %s: %w", name, err)
		}
		if err := json.Unmarshal(raw, &flags); err != nil {
			return fmt.Errorf("chunk %s: %w", name, err)
		}
		l.Sealed(name, p)
		c := l.find(name)
		c.Stored, c.Dropped = flags.Stored, flags.Dropped
	}
	return nil
}
