package resume

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MarshalJSON writes the manifest as a JSON object with sorted keys, as
// encoding/json would, without reflection: a snapshot of a 100,000-file run's
// state is written while it syncs, and reflection made that the main cost.
func (m Manifest) MarshalJSON() ([]byte, error) { return m.appendJSON(nil), nil }

// appendJSON appends the manifest as MarshalJSON writes it. Nil entries (a
// deletion, in a journal record) are written as null.
func (m Manifest) appendJSON(b []byte) []byte {
	if b == nil {
		b = make([]byte, 0, len(m)*(len(`"":{"size":,"mtime":,"inode":,"sha256":""},`)+128)+2)
	}
	b = append(b, '{')
	for i, k := range m.sortedKeys() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntry(b, k, m[k])
	}
	return append(b, '}')
}

// writeJSON writes the manifest as appendJSON encodes it, an entry at a
// time: a snapshot of a large manifest never sits in memory whole.
func (m Manifest) writeJSON(w io.Writer) error {
	buf := make([]byte, 0, 32<<10)
	buf = append(buf, '{')
	for i, k := range m.sortedKeys() {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendEntry(buf, k, m[k])
		if len(buf) >= 16<<10 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, '}')
	_, err := w.Write(buf)
	return err
}

func (m Manifest) sortedKeys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendEntry appends "key":entry.
func appendEntry(b []byte, k string, e *Entry) []byte {
	b = appendString(b, k)
	b = append(b, ':')
	if e == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"size":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	b = append(b, `,"mtime":`...)
	b = strconv.AppendInt(b, e.ModTime, 10)
	if e.Inode != 0 {
		b = append(b, `,"inode":`...)
		b = strconv.AppendUint(b, e.Inode, 10)
	}
	if !e.SHA256.IsZero() {
		b = append(b, `,"sha256":"`...)
		b = hex.AppendEncode(b, e.SHA256[:])
		b = append(b, '"')
	}
	if e.Key != "" {
		b = append(b, `,"key":`...)
		b = appendString(b, e.Key)
	}
	return append(b, '}')
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
