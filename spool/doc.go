// Package spool owns the chunked series that logs and resources write for
// the store, end to end, on the local disk and up to the store.
//
// A producer (the logs collector, the resource sampler) owns one folder of
// the spool, which is also its folder under the run in the store
// (<run>/logs/). It writes each of its series through a Writer: gzip JSON
// Lines chunks, opened in the spool's hidden .open/ folder, sealed by size
// or age (made durable and renamed into the producer's folder, immutable
// from then on), and named ChunkName(series, attempt, sequence). A sealed
// chunk goes straight to the Uploader the spool is given (the sync engine);
// once the store holds it the producer is told, so that it moves the cursor
// it keeps in its Section of the run's state, and only then does the chunk
// leave the spool. A collector killed in between finds the sealed chunk at
// start and uploads it again under the same name: the same bytes, no
// duplicate. Chunks a kill left open are the producer's to recover
// (SealWholeLines) or discard.
//
// The spool also owns the producers' record of their sealed chunks: a
// Ledger holds the chunks a cursor has not passed, each with what it moves
// the cursor to, and moves the cursor past them in chunk order once each is
// stored or dropped, never past one the store does not hold.
package spool
