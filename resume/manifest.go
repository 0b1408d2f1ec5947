package resume

import (
	"encoding/hex"
	"fmt"
	"maps"
)

// Entry is what the store holds for one file.
type Entry struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime"`           // Unix nanoseconds of the local file when uploaded
	Inode   uint64 `json:"inode,omitempty"` // 0 when unknown (e.g. restored on another machine)
	SHA256  Digest `json:"sha256,omitzero"`
	// Key is the object's key under outputs/ when it is not the file's
	// path: a replica's copy of a path that a lower replica holds
	// (<path>.replica-<name>, docs/distributed.md). "" is the path.
	Key string `json:"key,omitempty"`
}

// ObjectKey is the key, under outputs/, of the object the entry records for
// the file at rel.
func (e Entry) ObjectKey(rel string) string {
	if e.Key != "" {
		return e.Key
	}
	return rel
}

// SameFile tells whether a local file with this size, mtime and inode is the
// one the entry records. An inode of 0 on either side is not compared.
func (e Entry) SameFile(size, modTime int64, inode uint64) bool {
	if e.Size != size || e.ModTime != modTime {
		return false
	}
	return e.Inode == 0 || inode == 0 || e.Inode == inode
}

// Digest is a SHA-256, kept as its 32 bytes (a run of a million files holds
// a million of them) and written in JSON as 64 hex digits. The zero Digest
// means the hash is not known.
type Digest [32]byte

// ParseDigest reads a SHA-256 written in hex; "" is the zero Digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if s == "" {
		return d, nil
	}
	if len(s) != 2*len(d) {
		return d, fmt.Errorf("sha256 %q: not 64 hex digits", s)
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("sha256 %q: %w", s, err)
	}
	return d, nil
}

// IsZero tells whether the hash is unknown.
func (d Digest) IsZero() bool { return d == Digest{} }

// String returns the hash in hex, or "" when it is unknown.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return hex.EncodeToString(d[:])
}

// MarshalText writes the hash in hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a hash written in hex.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Manifest is the record of what the store holds for a run's outputs: for
// each file, the size, modification time and inode it had when it was
// uploaded, and the SHA-256 of the bytes that were uploaded. The sync engine
// decides what to upload by comparing the folder with it; Keeper checkpoints
// it so a restarted collector uploads nothing twice.
//
// It maps a file's slash-separated path, relative to the outputs folder,
// to its entry. The entries are pointers, which keeps a manifest of
// 1,000,000 files within about 160 MiB (see BenchmarkManifestMemory), and
// they are never changed once in a manifest: a new upload puts a new entry in
// place, so that copies of the map can share them. It is not safe for
// concurrent use.
type Manifest map[string]*Entry

// Clone returns a copy that can be saved while the original changes. The
// entries are shared: they are never changed in place.
func (m Manifest) Clone() Manifest { return maps.Clone(m) }
