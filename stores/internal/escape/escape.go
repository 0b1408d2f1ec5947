// Package escape repeats gocloud's key and metadata escaping for the
// resumable uploaders, which talk to the SDK below *blob.Bucket: an object
// they write must have the key and metadata that gocloud's driver would give
// it, so that the bucket reads it back under the same name.
package escape

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The drivers of gocloud.dev/blob (v0.47.0) escape keys and metadata before
// they reach the store, and unescape them when they read. Objects written
// here through the SDKs must land under the names the *blob.Bucket reads, so
// these functions repeat the drivers' escaping; gocloud's escape package is
// internal. A test checks them against the drivers.

// S3Key is s3blob's escapeKey.
func S3Key(key string) string {
	return hexEscape(key, func(r []rune, i int) bool {
		c := r[i]
		switch {
		case c < 32:
			return true
		case i > 1 && c == '/' && r[i-1] == '.' && r[i-2] == '.':
			return true
		}
		return false
	})
}

// S3Metadata is s3blob's metadata escaping.
func S3Metadata(md map[string]string) map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		k = hexEscape(url.PathEscape(k), func(r []rune, i int) bool {
			c := r[i]
			return c == '@' || c == ':' || c == '='
		})
		out[k] = url.PathEscape(v)
	}
	return out
}

// GCSKey is gcsblob's escapeKey.
func GCSKey(key string) string {
	return hexEscape(key, func(r []rune, i int) bool {
		c := r[i]
		switch {
		case c == '\n' || c == '\r':
			return true
		case i > 1 && c == '/' && r[i-1] == '.' && r[i-2] == '.':
			return true
		}
		return false
	})
}

// AzureKey is azureblob's escapeKey for a full key.
func AzureKey(key string) string {
	return hexEscape(key, func(r []rune, i int) bool {
		c := r[i]
		switch {
		case c == '\\':
			return true
		case c < 32 || c == '"' || c == '#' || c == '%' || c == '?' || c == 127:
			return true
		case i == len(r)-1 && c == '/':
			return true
		case i > 1 && c == '/' && r[i-1] == '.' && r[i-2] == '.':
			return true
		}
		return false
	})
}

// AzureMetadata is azureblob's metadata escaping: keys must be C#
// identifiers.
func AzureMetadata(md map[string]string) (map[string]*string, error) {
	out := make(map[string]*string, len(md))
	for k, v := range md {
		e := hexEscape(k, func(r []rune, i int) bool {
			c := r[i]
			switch {
			case i == 0 && c >= '0' && c <= '9':
				return true
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
				return false
			}
			return true
		})
		if _, ok := out[e]; ok {
			return nil, fmt.Errorf("duplicate metadata keys after escaping: %q => %q", k, e)
		}
		ev := url.PathEscape(v)
		out[e] = &ev
	}
	return out, nil
}

// FileKey is fileblob's escapeKey: the path of key relative to the bucket's
// folder.
func FileKey(key string) string {
	s := hexEscape(key, func(r []rune, i int) bool {
		c := r[i]
		switch {
		case c < 32:
			return true
		case os.PathSeparator != '/' && c == os.PathSeparator:
			return true
		case i > 1 && c == '/' && r[i-1] == '.' && r[i-2] == '.':
			return true
		case i > 0 && c == '/' && r[i-1] == '/':
			return true
		case c == '/' && i == len(r)-1:
			return true
		case os.PathSeparator == '\\' && strings.ContainsRune(`><:"|?*`, c):
			return true
		}
		return false
	})
	if os.PathSeparator != '/' {
		s = strings.ReplaceAll(s, "/", string(os.PathSeparator))
	}
	return s
}

// hexEscape is gocloud.dev/internal/escape.HexEscape (Apache License 2.0):
// the runes for which shouldEscape is true, and the start of any text that
// reads as an escape, become "__0x<hex>__".
func hexEscape(s string, shouldEscape func(r []rune, i int) bool) string {
	runes := []rune(s)
	var b strings.Builder
	escaped := false
	for i, r := range runes {
		if shouldEscape(runes, i) || isEscapeSequence(runes, i) {
			if !escaped {
				b.Grow(len(s) + 13)
				b.WriteString(string(runes[:i]))
				escaped = true
			}
			fmt.Fprintf(&b, "__%#x__", r)
		} else if escaped {
			b.WriteRune(r)
		}
	}
	if !escaped {
		return s
	}
	return b.String()
}

// isEscapeSequence tells whether r[i:] starts with "__0x<hex>__".
func isEscapeSequence(r []rune, i int) bool {
	const lead = "__0x"
	for _, c := range lead {
		if i >= len(r) || r[i] != c {
			return false
		}
		i++
	}
	start := i
	for i < len(r) && r[i] != '_' {
		i++
	}
	if i+1 >= len(r) || r[i+1] != '_' {
		return false
	}
	_, err := strconv.ParseInt(string(r[start:i]), 16, 32)
	return err == nil
}
