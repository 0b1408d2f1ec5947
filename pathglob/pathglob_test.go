package pathglob

import "testing"

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
