// Package sync owns getting the outputs folder into the store: scanning the
// folder, deciding from the manifest what is new, changed or deleted, and
// uploading with a bounded pool of workers inside a fixed memory budget.
//
// A file is uploaded only once it has settled (not modified for
// Config.Settle), except in the final pass at shutdown, which takes files as
// they are. An upload whose file changes while it is read is abandoned before
// the store commits it, so the store never shows a torn object; the file stays
// pending and goes in a later pass. A failed upload is never recorded as done.
//
// The package shadows the standard library's sync; import that one as stdsync.
package sync
