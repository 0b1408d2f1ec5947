package logs

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"time"
)

// A file's format, detected from its first line.
const (
	formatPlain  = "plain"
	formatCRI    = "cri"    // /var/log/pods: "<RFC 3339> <stream> <P|F> <text>"
	formatDocker = "docker" // Docker's json-file driver: {"log":"text\n","stream":"stdout","time":"..."}
)

// detectFormat tells the format of a file from one of its lines.
func detectFormat(line []byte) string {
	if _, ok := parseDocker(line); ok {
		return formatDocker
	}
	if _, ok := parseCRI(line); ok {
		return formatCRI
	}
	return formatPlain
}

// physical is one line of a file, parsed.
type physical struct {
	time    time.Time
	stream  string
	text    []byte
	partial bool // the runtime split the line: the next one of the stream continues it
}

// parseCRI parses a CRI log line: "2016-10-06T00:17:09.669794202Z stdout F text".
func parseCRI(line []byte) (physical, bool) {
	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return physical{}, false
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
		return physical{}, false
	}
	tag, text, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		// An empty line: "<ts> stdout F" with nothing after the tag.
		tag, text = rest, nil
	}
	tags := strings.Split(string(tag), ":")
	if tags[0] != "P" && tags[0] != "F" {
		return physical{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return physical{}, false
	}
	return physical{time: t, stream: string(stream), text: text, partial: tags[0] == "P"}, true
}

// dockerLine is one line of Docker's json-file log.
type dockerLine struct {
	Log    *string   `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// parseDocker parses a json-file line; a log without its trailing newline
// is a piece of a line Docker split (at 16 KiB).
func parseDocker(line []byte) (physical, bool) {
	if len(line) == 0 || line[0] != '{' {
		return physical{}, false
	}
	var d dockerLine
	if err := json.Unmarshal(line, &d); err != nil || d.Log == nil || (d.Stream != "stdout" && d.Stream != "stderr") {
		return physical{}, false
	}
	text, complete := strings.CutSuffix(*d.Log, "\n")
	return physical{time: d.Time, stream: d.Stream, text: []byte(text), partial: !complete}, true
}

// containerOf names the container a log file belongs to: from the
// Kubernetes and Docker log paths where it can, else the file's name.
func containerOf(path, format string) string {
	dir, base := filepath.Split(path)
	parent := filepath.Base(dir)
	switch {
	case strings.Contains(path, "/pods/") && format == formatCRI:
		// /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
		return parent
	case strings.Contains(path, "/containers/") && format == formatCRI:
		// /var/log/containers/<pod>_<namespace>_<container>-<id>.log
		name := strings.TrimSuffix(base, ".log")
		if parts := strings.Split(name, "_"); len(parts) == 3 {
			if i := strings.LastIndex(parts[2], "-"); i > 0 {
				return parts[2][:i]
			}
		}
	case format == formatDocker && strings.HasSuffix(base, "-json.log"):
		// /var/lib/docker/containers/<id>/<id>-json.log
		id := strings.TrimSuffix(base, "-json.log")
		return id[:min(12, len(id))]
	}
	return base
}
