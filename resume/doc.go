// Package resume owns the collector's checkpointed state: its format, saving
// it atomically to a local file and to <run>/.collector/ in the store after
// each pass, and loading it back on restart.
//
// The state is versioned JSON. A missing local file is a fresh start; a
// corrupt one is an error naming the path, never a silent reset.
package resume
