package resume

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MarshalJSON writes the manifest as a JSON object with sorted keys, as
// encoding/json would, without reflection: the state of a 100,000-file run is
// checkpointed while it syncs, and reflection made that the pass's main cost.
func (m Manifest) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, len(m)*(len(`"":{"size":,"mtime":,"inode":,"sha256":""},`)+96)+2)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		e := m[k]
		b = appendString(b, k)
		b = append(b, `:{"size":`...)
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, `,"mtime":`...)
		b = strconv.AppendInt(b, e.ModTime, 10)
		if e.Inode != 0 {
			b = append(b, `,"inode":`...)
			b = strconv.AppendUint(b, e.Inode, 10)
		}
		if e.SHA256 != "" {
			b = append(b, `,"sha256":`...)
			b = appendString(b, e.SHA256)
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string: as is when nothing in it needs
// escaping, through encoding/json otherwise.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
