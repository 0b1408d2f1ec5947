// Package logs will own log collection: the job's log lines from every
// source a sidecar meets, stored under <run>/logs/ in the store, each line
// exactly once through store outages, kills and retries. It is a component
// of the run (see cmd/collector): started after the restore, stopped within
// its share of the shutdown budget. This file is the design the package is
// built to; the code lands with the log collection issue.
//
// # Sources
//
// Each source is a small type behind one interface and owns a cursor:
//   - the wrapped command's stdout and stderr, read line by line from the
//     stream internal/child offers (passed through to the collector's own
//     streams unchanged, so kubectl logs keeps working; the tap never
//     blocks the child);
//   - files (--logs file:GLOB), plain, CRI or Docker JSON, each known by a
//     fingerprint of its first bytes plus its inode, read across rename and
//     copytruncate rotation, a saved offset trusted only while the bytes
//     before it still match;
//   - the Kubernetes log API (--logs k8s:CONTAINER) with follow=true,
//     timestamps=true and sinceTime on reconnect;
//   - the Docker engine (--logs docker:CONTAINER, docker plugin only).
//
// # Records, spool and chunks
//
// A record is one JSON object per line: timestamp (RFC 3339, nanoseconds),
// container, stream, value, and node, pod and attempt where known. Sources
// append records to an open chunk file in the spool, a folder under the
// state folder (<state>/<run>/spool/logs/). A chunk is sealed when it
// reaches its size or age limit, or at the end of the run, and is then
// immutable: its name (<attempt>-<sequence>.jsonl) never changes and its
// bytes are never rewritten.
//
// Sealed chunks reach <run>/logs/ through the sync engine's uploader, the
// same one that puts outputs into the store (retries, the memory budget,
// the final flush at shutdown), not a second uploader: internal/spool is a
// folder the engine syncs with KeepDeleted and no settle time, and it
// reports each object it stored to the producer of its folder.
//
// # Cursors and the state section
//
// The component keeps its cursors in its own section of the run's state
// (resume.Keeper.Section("logs")): for each source, the position after the
// last line of the last chunk the store holds (a file's fingerprint and
// offset, the Kubernetes or Docker timestamp of the last line stored), and
// the sequence number of the next chunk. The order is what makes each line
// stored exactly once:
//
//  1. a line is read and appended to the open chunk in the spool;
//  2. the chunk is sealed and uploaded;
//  3. once the store has it, the section is saved with the cursor past the
//     chunk's last line, and only then is the chunk removed from the spool.
//
// A collector killed between 2 and 3 finds the chunk in the spool at start
// and uploads it again under the same name (the same bytes: no duplicate);
// one killed before 2 reads the lines again from the saved cursor and
// rewrites the unsealed chunk from scratch. A partial last line is held
// until its newline or the end of the run, never split into two records.
// `collector logs` reads the chunks back in name order.
package logs
