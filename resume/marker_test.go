package resume

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"
)

// TestRestoreLeavesOutAFolderWithoutItsMarker: the run's state records
// ckpt-2's commit marker, the store no longer holds it (nor one shard): the
// restore leaves ckpt-2 out and says so in one line; ckpt-1, whole, and the
// other files come back.
func TestRestoreLeavesOutAFolderWithoutItsMarker(t *testing.T) {
	b := memblob.OpenBucket(nil)
	known := put(t, b, map[string]string{
		"ckpt-1/shard-0": "a", "ckpt-1/shard-1": "b", "ckpt-1/commit_success.txt": "ok",
		"ckpt-2/shard-0": "c",
		"metrics.jsonl":  "{}",
	})
	for _, rel := range []string{"ckpt-2/shard-1", "ckpt-2/commit_success.txt"} {
		known[rel] = &Entry{Size: 2}
	}
	var logs bytes.Buffer
	dir := t.TempDir()
	_, stats, err := Restore(context.Background(), b, dir, RestoreOptions{
		Known: known, CommitMarkers: []string{"commit_success.txt"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	assertTree(t, dir, map[string]string{
		"ckpt-1/shard-0": "a", "ckpt-1/shard-1": "b", "ckpt-1/commit_success.txt": "ok", "metrics.jsonl": "{}",
	})
	if _, err := os.Stat(filepath.Join(dir, "ckpt-2")); !os.IsNotExist(err) {
		t.Errorf("ckpt-2 restored (%v); want it left out", err)
	}
	if stats.Files != 4 {
		t.Errorf("restored %d files, want 4", stats.Files)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var said []string
	for _, l := range lines {
		if strings.Contains(l, "commit marker") {
			said = append(said, l)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], "ckpt-2") || !strings.Contains(said[0], "files_left_out=1") {
		t.Errorf("log says %q; want one line naming ckpt-2 and 1 file left out", said)
	}

	// A folder whose marker the sync engine saw and had not stored yet
	// (the state's MarkersSection) is left out without the setting too.
	putKey(t, b, OutputsPrefix+"ckpt-3/shard-0", []byte("d"), sha([]byte("d")))
	logs.Reset()
	dir = t.TempDir()
	if _, _, err := Restore(context.Background(), b, dir, RestoreOptions{
		Known: known, Unmarked: []string{"ckpt-3/commit_success.txt"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ckpt-3")); !os.IsNotExist(err) {
		t.Errorf("ckpt-3 restored (%v); want it left out", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ckpt-2", "shard-0")); err != nil {
		t.Errorf("ckpt-2 without the setting: %v", err)
	}
	if got := strings.Count(logs.String(), "commit marker"); got != 1 || !strings.Contains(logs.String(), "ckpt-3") {
		t.Errorf("log says %q; want one line naming ckpt-3", logs.String())
	}

	// Without the setting, everything the store holds comes back.
	dir = t.TempDir()
	if _, _, err := Restore(context.Background(), b, dir, RestoreOptions{Known: known}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ckpt-2", "shard-0")); err != nil {
		t.Errorf("without --commit-marker: %v", err)
	}
}

// TestBeginLeavesOutAFolderWhoseMarkerWaited: an attempt stopped while
// ckpt-2's marker waited for its shards (the sync engine's commit-markers
// section names it); the next attempt, on a fresh disk, restores ckpt-1 and
// leaves ckpt-2 out.
func TestBeginLeavesOutAFolderWhoseMarkerWaited(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	e, _ := run(t, b, t.TempDir(), nil)
	for rel, data := range map[string]string{"ckpt-1/shard-0": "a", "ckpt-1/commit_success.txt": "ok", "ckpt-2/shard-0": "b"} {
		putKey(t, b, OutputsPrefix+rel, []byte(data), sha([]byte(data)))
		e.mu.Lock()
		ent := &Entry{Size: int64(len(data)), SHA256: digest([]byte(data))}
		e.m[rel] = ent
		e.k.Record(rel, ent)
		e.mu.Unlock()
	}
	must(t, e.k.Section(MarkersSection).Save(ctx, []string{"ckpt-2/commit_success.txt"}))
	must(t, e.save(ctx))
	must(t, e.k.Flush(ctx))

	var logs bytes.Buffer
	dir := t.TempDir()
	st, _, err := Begin(ctx, BeginOptions{
		Run: "r", StatePath: filepath.Join(t.TempDir(), "state.json"), Outputs: dir, Bucket: b,
		AutoResume: true, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	must(t, err)
	assertTree(t, dir, map[string]string{"ckpt-1/shard-0": "a", "ckpt-1/commit_success.txt": "ok"})
	if _, err := os.Stat(filepath.Join(dir, "ckpt-2")); !os.IsNotExist(err) {
		t.Errorf("ckpt-2 restored (%v); want it left out", err)
	}
	if _, ok := st.Outputs["ckpt-2/shard-0"]; ok {
		t.Error("ckpt-2/shard-0 is in the new attempt's manifest; want it left to the store alone")
	}
	if !strings.Contains(logs.String(), "ckpt-2") {
		t.Errorf("log says %q; want ckpt-2 named", logs.String())
	}
}
