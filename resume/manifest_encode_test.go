package resume

import (
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"testing"
)

// digest returns the SHA-256 of data.
func digest(data []byte) Digest { return Digest(sha256.Sum256(data)) }

// hexDigest reads a SHA-256 in hex, which the test made itself.
func hexDigest(s string) Digest {
	d, err := ParseDigest(s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestMarshalJSONMatchesEncodingJSON: the fast encoder writes what
// encoding/json writes for the same map, and reads back the same.
func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	m := Manifest{
		"b/model.pt":            {Size: 3 << 30, ModTime: 1763900000123456789, Inode: 42, SHA256: digest([]byte("model"))},
		"a/empty":               {Size: 0, ModTime: -1},
		"données/résumé ü.txt":  {Size: 9, ModTime: 7, SHA256: digest(nil)},
		"quote\"back\\slash\tx": {Size: 1, ModTime: 2, Inode: 3},
		"<html>&":               {Size: 1, ModTime: 2},
		"shared/model.pt":       {Size: 4, ModTime: 5, SHA256: digest([]byte("mine")), Key: "shared/model.pt.replica-worker-1"},
		"odd key":               {Size: 4, ModTime: 5, Key: "odd key\".replica-<w>&"},
	}
	got, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(map[string]*Entry(m))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("MarshalJSON:\n got %s\nwant %s", got, want)
	}
	var back Manifest
	if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if got, _ := (Manifest{}).MarshalJSON(); string(got) != "{}" {
		t.Errorf("empty manifest: %s", got)
	}
}

// TestEntryJSONFormat: an entry reads and writes the state's JSON as version
// 1 did, the hash as 64 hex digits, so that old states still load.
func TestEntryJSONFormat(t *testing.T) {
	const old = `{"a.txt":{"size":5,"mtime":7,"inode":9,"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},"b.txt":{"size":0,"mtime":1}}`
	var m Manifest
	if err := json.Unmarshal([]byte(old), &m); err != nil {
		t.Fatal(err)
	}
	if got, want := *m["a.txt"], (Entry{Size: 5, ModTime: 7, Inode: 9, SHA256: digest([]byte("hello"))}); got != want {
		t.Errorf("a.txt = %+v, want %+v", got, want)
	}
	if !m["b.txt"].SHA256.IsZero() {
		t.Errorf("b.txt has a hash %s, want none", m["b.txt"].SHA256)
	}
	if got, _ := m.MarshalJSON(); string(got) != old {
		t.Errorf("written back:\n got %s\nwant %s", got, old)
	}
	if err := json.Unmarshal([]byte(`{"x":{"size":1,"mtime":1,"sha256":"ab12"}}`), &m); err == nil {
		t.Error("a short sha256 was accepted")
	}
}

// TestEntryKey: an entry of a file stored under another key (a replica's
// copy of a shared path) keeps the key, written last; one without writes
// none, as before.
func TestEntryKey(t *testing.T) {
	const diverted = `{"m.pt":{"size":5,"mtime":7,"key":"m.pt.replica-worker-1"},"n.pt":{"size":1,"mtime":1}}`
	var m Manifest
	if err := json.Unmarshal([]byte(diverted), &m); err != nil {
		t.Fatal(err)
	}
	if got := m["m.pt"].ObjectKey("m.pt"); got != "m.pt.replica-worker-1" {
		t.Errorf("m.pt's object key = %q", got)
	}
	if got := m["n.pt"].ObjectKey("n.pt"); got != "n.pt" {
		t.Errorf("n.pt's object key = %q", got)
	}
	if got, _ := m.MarshalJSON(); string(got) != diverted {
		t.Errorf("written back:\n got %s\nwant %s", got, diverted)
	}
}
