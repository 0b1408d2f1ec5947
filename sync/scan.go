package sync

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mlsidecar/collector/resume"
)

// fileState is what a scan sees of one local file.
type fileState struct {
	Size    int64
	ModTime int64 // Unix nanoseconds
	Inode   uint64
}

func stateOf(fi fs.FileInfo) fileState {
	return fileState{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Inode: resume.InodeOf(fi)}
}

// scanner walks the outputs folder and applies the filters and the symlink
// policy: a link is followed only when it points at a regular file inside the
// outputs folder (it is then uploaded as a copy of that file); links to
// folders are not followed, and links that lead outside are skipped.
type scanner struct {
	root     string   // absolute, symlinks resolved
	skipDirs []string // absolute folders never synced (the store itself, the state folder)
	include  Globs
	exclude  Globs
	// outside is called once per scan for each link that leads outside root.
	outside func(rel, target string)
	// openDir opens a folder to read it: os.Open, or a test's fault.
	openDir func(name string) (*os.File, error)
	// rootDev is the file system root was on at the start (0: not known).
	rootDev uint64
}

// rootMoved tells whether root is on another file system than at the start:
// its volume unmounted (the empty folder under it left), or another mounted
// over it. Its files are not those synced, and their absence says nothing.
func (s *scanner) rootMoved() bool {
	fi, err := os.Stat(s.root)
	return err == nil && s.rootDev != 0 && deviceOf(fi) != s.rootDev
}

// scan returns the files to sync, keyed by slash path relative to root.
func (s *scanner) scan() (files map[string]fileState, unreadable map[string]error, err error) {
	files = make(map[string]fileState)
	unreadable = map[string]error{}
	return files, unreadable, s.walk(s.root, "", files, unreadable)
}

// walk adds the files of the folder abs (rel from root, "" for root itself)
// to files. Only a root that cannot be read is an error: an entry deleted
// while we walk is skipped, and a folder that cannot be read (permissions,
// an I/O error) is put in unreadable with its error: what it holds is not
// known, so none of it may be taken as deleted. The next scan tries again.
// It reads each folder once and stats each file by its name in the open
// folder (a rescan of a large tree is most of an idle sidecar's CPU).
func (s *scanner) walk(abs, rel string, files map[string]fileState, unreadable map[string]error) error {
	open := s.openDir
	if open == nil {
		open = os.Open
	}
	d, err := open(abs)
	if err != nil {
		return err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil && len(entries) == 0 {
		return err
	}
	if err != nil && rel != "" {
		unreadable[rel] = err // read in part: the rest is not known
	}
	for _, e := range entries {
		name := e.Name()
		r := name
		if rel != "" {
			r = rel + "/" + name
		}
		switch t := e.Type(); {
		case t.IsDir():
			p := filepath.Join(abs, name)
			if !s.exclude.Match(r, true) && !s.skipped(p) {
				if err := s.walk(p, r, files, unreadable); err != nil && !gone(err) {
					unreadable[r] = err
				}
			}
		case !s.wanted(r):
		case t.IsRegular():
			st, ok, err := statAt(d, name)
			switch {
			case ok:
				files[r] = st
			case err != nil && !gone(err):
				unreadable[r] = err // not known: not deleted either
			}
		case t&fs.ModeSymlink != 0:
			if fi, ok := s.followLink(filepath.Join(abs, name), r); ok {
				files[r] = stateOf(fi)
			}
		}
	}
	return nil
}

// gone tells whether err says a path is not there (any more): deleted, or
// a folder on its way replaced by a file.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// under reports whether rel is folder or lies inside it; everything lies
// in the root, "".
func under(rel, folder string) bool {
	return folder == "" || rel == folder || strings.HasPrefix(rel, folder+"/")
}

func (s *scanner) wanted(rel string) bool {
	if len(s.include) > 0 && !s.include.Match(rel, false) {
		return false
	}
	return !s.exclude.Match(rel, false)
}

func (s *scanner) skipped(abs string) bool {
	for _, d := range s.skipDirs {
		if abs == d {
			return true
		}
	}
	return false
}

// followLink applies the symlink policy to the link at p.
func (s *scanner) followLink(p, rel string) (fs.FileInfo, bool) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, false // dangling
	}
	if !within(s.root, target) {
		if s.outside != nil {
			s.outside(rel, target)
		}
		return nil, false
	}
	fi, err := os.Stat(target)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	return fi, true
}

// within reports whether path p lies inside folder root (both absolute and clean).
func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// ignored tells the watcher what not to watch or mark: excluded or skipped
// folders, and files the filters leave out.
func (s *scanner) ignored(rel string, dir bool) bool {
	if dir {
		return s.exclude.Match(rel, true) || s.skipped(filepath.Join(s.root, filepath.FromSlash(rel)))
	}
	return !s.wanted(rel)
}

// stat looks at the given paths only, with the same filters and symlink
// policy as scan. Paths that are gone, are folders, lie in an excluded
// folder or under a link to a folder are left out.
func (s *scanner) stat(rels map[string]struct{}) (files map[string]fileState, unreadable map[string]error) {
	files = make(map[string]fileState, len(rels))
	unreadable = map[string]error{}
	folders := map[string]bool{}
	for rel := range rels {
		if !s.wanted(rel) || s.inIgnoredDir(rel) {
			continue
		}
		p := filepath.Join(s.root, filepath.FromSlash(rel))
		if !s.realFolders(rel, folders) {
			if _, err := os.Lstat(p); err != nil && !gone(err) {
				unreadable[rel] = err // a folder on the way cannot be read
			}
			continue
		}
		fi, err := os.Lstat(p)
		switch {
		case err != nil && !gone(err):
			unreadable[rel] = err // not known: not deleted either
		case err != nil:
		case fi.Mode().IsRegular():
			files[rel] = stateOf(fi)
		case fi.Mode()&fs.ModeSymlink != 0:
			if fi, ok := s.followLink(p, rel); ok {
				files[rel] = stateOf(fi)
			}
		}
	}
	return files, unreadable
}

// inIgnoredDir reports whether one of rel's parent folders is excluded or skipped.
func (s *scanner) inIgnoredDir(rel string) bool {
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && s.ignored(rel[:i], true) {
			return true
		}
	}
	return false
}

// realFolders reports whether the folders on the way from root to rel are
// all real folders. The scan does not follow links to folders, so a path
// under one is not synced either: the link may lead out of the outputs
// folder. known holds the answer for each folder already looked at.
func (s *scanner) realFolders(rel string, known map[string]bool) bool {
	dir := path.Dir(rel)
	if dir == "." {
		return true
	}
	ok, seen := known[dir]
	if !seen {
		ok = s.realFolders(dir, known)
		if ok {
			fi, err := os.Lstat(filepath.Join(s.root, filepath.FromSlash(dir)))
			ok = err == nil && fi.IsDir()
		}
		known[dir] = ok
	}
	return ok
}
