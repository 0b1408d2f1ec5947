package resume

import "maps"

// Entry is what the store holds for one file.
type Entry struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime"`           // Unix nanoseconds of the local file when uploaded
	Inode   uint64 `json:"inode,omitempty"` // 0 when unknown (e.g. restored on another machine)
	SHA256  string `json:"sha256,omitempty"`
}

// SameFile tells whether a local file with this size, mtime and inode is the
// one the entry records. An inode of 0 on either side is not compared.
func (e Entry) SameFile(size, modTime int64, inode uint64) bool {
	if e.Size != size || e.ModTime != modTime {
		return false
	}
	return e.Inode == 0 || inode == 0 || e.Inode == inode
}

// Manifest is the record of what the store holds for a run's outputs: for
// each file, the size, modification time and inode it had when it was
// uploaded, and the SHA-256 of the bytes that were uploaded. The sync engine
// decides what to upload by comparing the folder with it; Keeper checkpoints
// it so a restarted collector uploads nothing twice.
//
// It maps a file's slash-separated path, relative to the outputs folder,
// to its entry. It is not safe for concurrent use.
type Manifest map[string]Entry

// Clone returns a copy that can be saved while the original changes.
func (m Manifest) Clone() Manifest { return maps.Clone(m) }
