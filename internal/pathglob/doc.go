// Package pathglob owns the one glob language of the collector's settings:
// which outputs are synced (--include/--exclude) and which are restored
// (restore --include). Paths are slash-separated and relative to the outputs
// folder.
package pathglob
