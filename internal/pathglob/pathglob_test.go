package pathglob

import (
	"path"
	"testing"
)

func TestMatch(t *testing.T) {
	globs := List{"*.pt", "logs/*.txt", ".git/"}
	for _, c := range []struct {
		rel  string
		dir  bool
		want bool
	}{
		{"model.pt", false, true},
		{"ckpt/epoch-3/model.pt", false, true}, // a name glob matches at any depth
		{"logs/run.txt", false, true},
		{"deep/logs/run.txt", false, false}, // a path glob matches from the top
		{".git", true, true},
		{".git", false, false}, // a trailing slash matches folders only
		{"notes.md", false, false},
	} {
		if got := globs.Match(c.rel, c.dir); got != c.want {
			t.Errorf("Match(%q, dir=%v) = %v, want %v", c.rel, c.dir, got, c.want)
		}
	}
}

func TestSetAndValidate(t *testing.T) {
	var l List
	if err := l.Set(" *.pt, logs/ ,,"); err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "*.pt,logs/" {
		t.Errorf("String() = %q, want %q", got, "*.pt,logs/")
	}
	if err := (List{"[a-"}).Validate(); err == nil || err.Error() != `"[a-" is not a valid glob: syntax error in pattern` {
		t.Errorf("Validate of a broken glob: %v", err)
	}
}

// The shortcuts for plain, "*suffix" and "prefix*" globs answer as path.Match.
func TestMatchAgreesWithPathMatch(t *testing.T) {
	patterns := []string{"*.tmp", ".nfs*", "*~", ".#*", "*", "model.bin", "ckpt/*", "*/x.bin", "a*b", "*.[ch]", `\*x`, "", "logs/*.txt"}
	names := []string{"a.tmp", ".tmp", "a/b.tmp", ".nfs0001", ".nfs/x", "file~", "~", ".#lock", "model.bin", "model.bin2",
		"ckpt/1.pt", "ckpt/a/1.pt", "d/x.bin", "x.bin", "a/d/x.bin", "ab", "axxb", "a.c", "*x", "", "logs/1.txt", "logs/a/1.txt"}
	for _, p := range patterns {
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := match(p, n); got != want {
				t.Errorf("match(%q, %q) = %v, path.Match says %v", p, n, got, want)
			}
		}
	}
}
