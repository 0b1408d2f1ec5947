// Package sync owns getting the outputs folder into the store, and the
// manifest of what the store holds of it. It scans the folder (file system
// events bring a pass forward), decides from the manifest what is new,
// changed or deleted, and uploads with bounded workers inside a memory
// budget. It tells the run's Checkpointer each change of the manifest, and
// hands it a copy when a snapshot is due.
//
// Contract: a file goes up once settled (but for the final pass and Rush,
// which take files as they are); an upload whose file changes while read is
// abandoned before the store commits it; a failed upload is never recorded
// as done; only what this attempt saw is deleted.
//
// The package shadows the standard library's sync; import that one as stdsync.
package sync
