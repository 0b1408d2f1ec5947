package resume

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestMarshalJSONMatchesEncodingJSON: the fast encoder writes what
// encoding/json writes for the same map, and reads back the same.
func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	m := Manifest{
		"b/model.pt":            {Size: 3 << 30, ModTime: 1763900000123456789, Inode: 42, SHA256: "ab12"},
		"a/empty":               {Size: 0, ModTime: -1},
		"données/résumé ü.txt":  {Size: 9, ModTime: 7, SHA256: "ff"},
		"quote\"back\\slash\tx": {Size: 1, ModTime: 2, Inode: 3},
		"<html>&":               {Size: 1, ModTime: 2},
	}
	got, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(map[string]Entry(m))
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
