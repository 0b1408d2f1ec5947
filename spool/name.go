package spool

import (
	"fmt"
	"regexp"
	"strconv"
)

// ChunkName names chunk seq of a series in an attempt:
// <series>.<attempt, 6 digits>.<seq, 8 digits>.jsonl.gz. Fixed widths make
// a listing give each series' order, attempt first; a retry never replaces
// a chunk an earlier attempt stored.
func ChunkName(series string, attempt int, seq uint64) string {
	return fmt.Sprintf("%s.%06d.%08d.jsonl.gz", series, attempt, seq)
}

var (
	chunkPattern = regexp.MustCompile(`^([a-z0-9-]+)\.([0-9]{6})\.([0-9]{8})\.jsonl\.gz$`)
	// What resource chunks were named before they had ChunkName's form:
	// <seq, 6 digits>-a<attempt>.jsonl.gz, kept readable for runs (and
	// spools) of earlier versions.
	oldSamplesPattern = regexp.MustCompile(`^([0-9]{6,})-a([0-9]+)\.jsonl\.gz$`)
)

// ParseChunkName reads a chunk's name back. An earlier version's resource
// chunk (<seq>-a<attempt>.jsonl.gz) reads with the series "".
func ParseChunkName(name string) (series string, attempt int, seq uint64, ok bool) {
	if m := chunkPattern.FindStringSubmatch(name); m != nil {
		attempt, _ = strconv.Atoi(m[2])
		seq, _ = strconv.ParseUint(m[3], 10, 64)
		return m[1], attempt, seq, true
	}
	if m := oldSamplesPattern.FindStringSubmatch(name); m != nil {
		seq, err := strconv.ParseUint(m[1], 10, 64)
		attempt, aerr := strconv.Atoi(m[2])
		return "", attempt, seq, err == nil && aerr == nil
	}
	return "", 0, 0, false
}
