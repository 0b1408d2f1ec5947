//go:build !unix

package sync

import "io/fs"

func inodeOf(fs.FileInfo) uint64 { return 0 }

func deviceOf(fs.FileInfo) uint64 { return 0 }
