package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJSONLogLines runs a sidecar with --log-format json through a sync,
// log and resource collection and a shutdown: every line it prints is one
// JSON object, with no key twice (a log pipeline keeps one of them, which
// one depends on the parser), and the lines say which component wrote
// them: the outputs' sync passes ("sync"), the spool's uploads ("spool").
func TestJSONLogLines(t *testing.T) {
	work := t.TempDir()
	out := filepath.Join(work, "outputs")
	writeFile(t, filepath.Join(out, "model.txt"), []byte("weights\n"))
	store := filepath.Join(work, "store")
	p := start(t, work, nil, "--log-format", "json", "--log-level", "debug", "--store", store, "--run", "r",
		"--outputs-path", out, "--state-dir", filepath.Join(work, "state"), "--sync-interval", "0.2", "--settle", "0")
	waitFor(t, 30*time.Second, "the output in the store", func() bool {
		_, err := os.Stat(filepath.Join(store, "r", "outputs", "model.txt"))
		return err == nil
	})
	if code := p.stop(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, p.stderr.String())
	}
	components := map[string]int{}
	lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n")
	for i, line := range lines {
		keys, err := objectKeys(line)
		if err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", i+1, err, line)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("line %d has the key %q twice: %s", i+1, k, line)
			}
			seen[k] = true
		}
		var rec struct {
			Msg       string `json:"msg"`
			Component string `json:"component"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		if rec.Msg == "sync pass" || rec.Component == "spool" {
			components[rec.Component]++
		}
	}
	if components["sync"] == 0 || components["spool"] == 0 {
		t.Errorf("lines by component: %v; want sync passes of the outputs (sync) and lines of the spool", components)
	}

	// A setting refused once the log is set up: still one JSON line.
	code, printed := runInProcess(t, nil, "--log-format", "json", "--store", out, "--outputs-path", out, "--run", "r", "--", "true")
	var rec struct{ Level, Msg, Err string }
	if err := json.Unmarshal([]byte(printed), &rec); err != nil || code != exitUsage || rec.Level != "ERROR" || !strings.Contains(rec.Err, "--outputs-path") {
		t.Errorf("store = outputs folder, JSON log: exit %d, %q (%v); want exit 2 and one JSON error line naming --outputs-path", code, printed, err)
	}
}

// objectKeys returns the top-level keys of the JSON object line, in order,
// duplicates included (encoding/json keeps the last of them silently).
func objectKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("does not start an object (%v)", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more after the object")
	}
	return keys, nil
}
