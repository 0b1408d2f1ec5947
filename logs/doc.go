// Package logs owns log collection: the job's log lines from every source
// a sidecar meets, stored under <run>/logs/ in the store, each line exactly
// once through store outages, kills and retries, and read back in order by
// `collector logs`. The Collector is a component of the run (see
// cmd/collector): started after the restore, stopped within its share of
// the shutdown budget.
//
// # Sources
//
// Each source is a small type behind the Source interface and owns a
// position, which the Collector saves for it:
//   - CommandSource: the wrapped command's stdout and stderr, read line by
//     line from the child.Capture of the Outputs that pass them through to
//     the collector's own streams unchanged (kubectl logs keeps working).
//     It reads on a thread of low priority behind the command, the capture
//     holding what it has not read (memory, then a spill file), so that
//     collecting never slows the command down. It cannot go back, and is
//     Unpaced.
//   - FileSource (--logs file:GLOB): plain text, CRI (/var/log/pods, with
//     its P partial records joined) or Docker JSON lines (its 16 KiB
//     pieces joined), detected per file from its first line. A file is
//     known by its device, inode and a hash of its first 256 bytes;
//     renamed files are read to their end (and found again by inode in
//     their folder after a restart), a truncated file (copytruncate) is
//     read again from its start, a new file on a reused inode is a new
//     file, and a saved offset is trusted only while the 32 bytes before it
//     are those read. A partial last line is held until its newline, or
//     until the end of the run (then stored marked continued: no newline
//     followed it).
//   - the Kubernetes log API (--logs k8s:CONTAINER) and the Docker engine
//     (--logs docker:CONTAINER, docker plugin only): kubernetes.go,
//     docker.go.
//
// # Records and chunks
//
// A record is one JSON object per line (Entry): timestamp (RFC 3339 with
// nine digits of nanoseconds, the runtime's own for CRI, Docker and
// Kubernetes, else the time of capture), container, stream, value, and
// node, pod and attempt where known. A line longer than the line limit
// (256 KiB) is split into records marked "continued"; invalid UTF-8 shows
// as U+FFFD in value and is kept exactly in "bytes" (base64). Lines the
// collector had to drop are counted by a record of its own ("dropped").
//
// Each source is a series of the spool (spool.Writer): gzip (fastest
// level) JSON Lines chunks, opened in the spool's .open/ folder and sealed
// at 4 MiB (compressed) or at the chunk age (default the sync interval),
// whichever comes first, and at the end of the run. A chunk is sealed only
// after a record that carries a position, so that its end is a place to
// resume from. Names are spool.ChunkName's:
// <source>.<attempt, 6 digits>.<sequence, 8 digits>.jsonl.gz, so a listing
// gives each source's order; `collector logs` reads each source's chunks in
// that order and merges the sources by timestamp.
//
// # Cursors and the state section
//
// The Collector keeps, in the run's state section "logs", for each source:
// the cursor (the position after the last line of the chunks the store
// holds, in order), the next chunk's attempt and sequence, and each sealed
// chunk not yet behind the cursor with its end position and line count.
// The order is what makes each line stored exactly once:
//
//  1. a record is appended to the source's open chunk;
//  2. at seal time the chunk's end position is saved in the section, and
//     only then is the chunk sealed (fsynced and renamed) into the spool;
//  3. the spool hands it to the upload engine; once the store holds it,
//     the spool calls Collector.stored, which marks the chunk stored and
//     moves the cursor past every chunk stored in order (uploads run in
//     parallel, so chunk 5 may land before chunk 4: the cursor waits for
//     4); the section is saved, and only then does the chunk leave the
//     spool. At most once a
//     chunk age after a cursor moved, the run's state is put in the store
//     (Options.Checkpoint), so that a new pod finds recent cursors.
//
// At start (a restart on the same disk, or a new pod with the state from
// the store):
//   - open chunks (a kill before their seal) are discarded: the file,
//     Kubernetes and Docker sources read those lines again, because they
//     resume from the end of the last sealed chunk, not from the open one.
//     The wrapped command cannot be read twice: its open chunk is flushed
//     to its file every tick (about a second), and at start its whole
//     lines are sealed and stored (spool.Producer.SealWholeLines); a kill
//     loses at most the last tick of them;
//   - sealed chunks still in the spool upload again under their names (the
//     same bytes) and then move the cursor with the end recorded at seal;
//   - a chunk the section records but the spool no longer holds (never
//     sealed, or a new pod's empty disk) is forgotten with every later
//     chunk of its source, and the source resumes from its cursor. If a
//     later chunk had reached the store already (out of order), its lines
//     are read and stored again: the one case of duplicates, only on a new
//     pod, only for a source that can go back;
//   - each source resumes from the end of its last remaining sealed chunk,
//     or from its cursor.
//
// # The spool's limit
//
// The chunks of all sources in the spool, open and sealed, are held under
// the spool limit (256 MiB). When it is full, a paced source (files,
// Kubernetes, Docker) seals its open chunk and waits in emit until the
// store takes chunks: backpressure, no loss. The wrapped command is never
// slowed: its oldest sealed chunk not yet stored is dropped from the spool
// instead, its lines counted, and the next record written says how many
// ("dropped": N, also logged as a warning); the spool may then go over its
// limit by the command's open chunk (a dropped chunk whose upload was
// already in flight may reach the store after all: logged, and then
// counted as dropped though stored). Lines the collector could not take in
// time from the command's output (more than 65,536 waiting) are passed
// through, not collected, and counted the same way.
package logs
