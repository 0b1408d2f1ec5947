package resume

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"unicode/utf8"
)

// FuzzManifestDecode: a manifest decoded from any JSON is encoded as
// encoding/json would encode its map (sorted keys, the same escapes), in one
// piece or streamed, and decodes again to the same manifest.
func FuzzManifestDecode(f *testing.F) {
	f.Add([]byte(`{"a/b.txt":{"size":3,"mtime":1764547200000000000,"inode":12,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}`))
	f.Add([]byte(`{"gone":null,"x<y>&\"z\"":{"size":0,"mtime":-1},"é":{"size":1,"mtime":2}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"a":{"size":1,"mtime":2,"sha256":""}}`))
	f.Add([]byte(`{"a":{"size":1,"mtime":2,"key":"a.replica-w\u00e9<1>"},"b":{"size":1,"mtime":2,"key":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		enc := m.appendJSON(nil)
		if want, _ := json.Marshal(map[string]*Entry(m)); !bytes.Equal(enc, want) {
			t.Fatalf("%s encodes as\n%s\nencoding/json:\n%s", data, enc, want)
		}
		var streamed bytes.Buffer
		if err := m.writeJSON(&streamed); err != nil || !bytes.Equal(streamed.Bytes(), enc) {
			t.Fatalf("streamed %s, %v; want %s", streamed.Bytes(), err, enc)
		}
		var again Manifest
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("%s does not decode: %v", enc, err)
		}
		if !maps.EqualFunc(m, again, func(a, b *Entry) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }) {
			t.Fatalf("%s decoded, encoded as %s, decodes to another manifest", data, enc)
		}
	})
}

// FuzzManifestEntry: an entry under any path the sync engine may record
// (valid UTF-8: the paths JSON can hold) comes back from the encoding as
// it was.
func FuzzManifestEntry(f *testing.F) {
	f.Add("checkpoints/epoch-1.pt", int64(1<<30), int64(1764547200000000000), uint64(7), []byte("0123456789abcdef0123456789abcdef"))
	f.Add("a\"b\\c\n\u2028<&>", int64(-1), int64(0), uint64(0), []byte{})
	f.Fuzz(func(t *testing.T, path string, size, mtime int64, inode uint64, sum []byte) {
		if !utf8.ValidString(path) {
			return
		}
		e := &Entry{Size: size, ModTime: mtime, Inode: inode}
		if len(sum) > 0 && sum[0]%2 == 1 {
			e.Key = path + ".replica-w"
		}
		copy(e.SHA256[:], sum)
		enc := Manifest{path: e}.appendJSON(nil)
		var got Manifest
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if g := got[path]; len(got) != 1 || g == nil || *g != *e {
			t.Fatalf("%q %+v encoded as %s, decodes to %v", path, e, enc, got)
		}
	})
}
