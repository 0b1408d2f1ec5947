//go:build !unix

package sync

import "io/fs"

func deviceOf(fs.FileInfo) uint64 { return 0 }
