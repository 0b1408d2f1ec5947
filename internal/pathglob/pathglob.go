package pathglob

import (
	"path"
	"strings"
)

// List is a list of path globs. A glob without a slash matches a file or
// folder name at any depth; one with a slash matches the path from the
// outputs folder; a trailing slash matches folders only. It implements
// flag.Value: values are comma-separated and add to the list.
type List []string

func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set adds comma-separated globs.
func (l *List) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// Validate reports the first glob that path.Match cannot parse.
func (l List) Validate() error {
	for _, g := range l {
		if _, err := path.Match(strings.TrimSuffix(g, "/"), ""); err != nil {
			return &InvalidError{Glob: g, Err: err}
		}
	}
	return nil
}

// InvalidError is a glob that does not parse.
type InvalidError struct {
	Glob string
	Err  error
}

func (e *InvalidError) Error() string {
	return "\"" + e.Glob + "\" is not a valid glob: " + e.Err.Error()
}

// Match reports whether the slash path rel (a folder when dir is true)
// matches one of the globs.
func (l List) Match(rel string, dir bool) bool {
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	for _, p := range l {
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimSuffix(p, "/")
		if dirOnly && !dir {
			continue
		}
		target := base
		if strings.Contains(p, "/") {
			target = rel
		}
		if match(p, target) {
			return true
		}
	}
	return false
}

// match is path.Match, with the common forms of exclude globs ("*.tmp",
// ".nfs*", a plain name) answered without it: a scan asks every glob about
// every file.
func match(pattern, name string) bool {
	if n := len(pattern); n > 0 {
		switch {
		case pattern[0] == '*' && !strings.ContainsAny(pattern[1:], `*?[\`):
			return strings.HasSuffix(name, pattern[1:]) && !strings.Contains(name[:len(name)-(n-1)], "/")
		case pattern[n-1] == '*' && !strings.ContainsAny(pattern[:n-1], `*?[\`):
			return strings.HasPrefix(name, pattern[:n-1]) && !strings.Contains(name[n-1:], "/")
		case !strings.ContainsAny(pattern, `*?[\`):
			return name == pattern
		}
	}
	ok, _ := path.Match(pattern, name)
	return ok
}
