package sync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"slices"
	stdsync "sync"
	"sync/atomic"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// The rule for one path written by several replicas of a distributed run
// (docs/distributed.md): the lowest replica name (Go's string order, the
// order `collector report` draws replicas in) keeps the path; every other
// replica's copy is stored as <path>.replica-<name>. Each object carries the
// name of the replica that stored it (stores.ReplicaMetadataKey), so a
// replica looks at the path once before it writes it there (a HEAD): free
// or its own, it writes; a lower replica's, it writes its copy aside from
// then on (the manifest entry's Key); a higher replica's, it copies that one
// aside first, in the store, then writes its own. A small file's write is
// conditional on what the look found, so that another replica's write in
// between sends the job back to the look; a large file's is not, and the
// final sync checks again the paths a replica stored under their own names
// (Recheck).

// sharing is what a replica's Syncer knows of the paths it shares.
type sharing struct {
	replica string
	target  stores.Target
	log     *slog.Logger

	mu     stdsync.Mutex
	wrote  map[string]struct{} // paths stored under their own names in this attempt
	warned map[string]struct{} // paths whose sharing was logged

	diverted atomic.Int64 // paths stored aside, or moved aside, since the start
}

// newSharing returns the sharing of a Syncer with opts on target; nil but
// for a replica's target in a shared folder.
func newSharing(t stores.Target, opts Options) *sharing {
	if !opts.Shared || t.Replica() == "" {
		return nil
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &sharing{replica: t.Replica(), target: t, log: log.With("component", "sync"),
		wrote: map[string]struct{}{}, warned: map[string]struct{}{}}
}

// claim returns the key this replica stores rel under, from what the store
// holds at rel now: rel when it is free, its own, or nobody's in
// particular, or a higher replica's, which it first copies aside to that
// replica's key; the replica's own key when a lower replica holds rel.
//
// A write of rel is made under the condition that rel still holds what the
// look found (stores.Precondition), where the store checks it (S3, GCS,
// Azure; not a folder store): another
// replica's write in between makes it fail, and the job looks again.
func (sh *sharing) claim(ctx context.Context, rel string) (string, stores.Precondition, error) {
	attrs, err := sh.target.Attributes(ctx, rel)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return rel, stores.Precondition{IfAbsent: true}, nil
	}
	if err != nil {
		return "", stores.Precondition{}, err
	}
	seen := sh.target.Matching(attrs)
	owner := stores.ReplicaOf(attrs)
	switch {
	case owner == "" || owner == sh.replica:
		return rel, seen, nil
	case owner < sh.replica:
		sh.logShared(rel, owner, sh.replica)
		return resume.ReplicaCopyKey(rel, sh.replica), stores.Precondition{}, nil
	default:
		if err := sh.moveAside(ctx, rel, owner); err != nil {
			return "", stores.Precondition{}, err
		}
		sh.logShared(rel, sh.replica, owner)
		return rel, seen, nil
	}
}

// errTakenMeanwhile says another replica wrote a path between this one's
// look at it and its copy aside; the job is tried again, from the look.
var errTakenMeanwhile = errors.New("another replica wrote the path meanwhile")

// moveAside copies owner's object at rel to owner's own key, through a
// staging key first, checked to hold owner's object: a third replica may
// write rel between this one's look and the copy, and its object must not
// replace owner's copy, which that replica may have moved aside itself. The
// staging key is named as a partial upload (stores.IsPartial), which the
// restore leaves out, and is deleted at once.
func (sh *sharing) moveAside(ctx context.Context, rel, owner string) error {
	var id [8]byte
	_, _ = rand.Read(id[:])
	dir, base := path.Split(resume.ReplicaCopyKey(rel, owner))
	staging := dir + "." + base + stores.PartialMarker + hex.EncodeToString(id[:])
	if err := sh.target.Copy(ctx, staging, rel); err != nil {
		return err
	}
	defer func() { _ = sh.target.Bucket.Delete(context.WithoutCancel(ctx), staging) }()
	attrs, err := sh.target.Attributes(ctx, staging)
	if err != nil {
		return err
	}
	if stores.ReplicaOf(attrs) != owner {
		return fmt.Errorf("move %q aside: %w", rel, errTakenMeanwhile)
	}
	return sh.target.Copy(ctx, resume.ReplicaCopyKey(rel, owner), staging)
}

// logShared logs once per path that two replicas write it: lower keeps rel,
// higher's copy goes to its own key.
func (sh *sharing) logShared(rel, lower, higher string) {
	sh.mu.Lock()
	_, done := sh.warned[rel]
	sh.warned[rel] = struct{}{}
	sh.mu.Unlock()
	if done {
		return
	}
	sh.diverted.Add(1)
	sh.log.Warn("another replica writes this output's path too: the lowest replica name keeps the path, the other's copy is kept under its own key",
		"path", rel, "kept_by", lower, "kept_key", rel, "copy_of", higher, "copy_key", resume.ReplicaCopyKey(rel, higher))
}

// stored notes that rel was stored under its own name in this attempt.
func (sh *sharing) stored(rel string) {
	sh.mu.Lock()
	sh.wrote[rel] = struct{}{}
	sh.mu.Unlock()
}

// objectKey is the key of rel's object as the manifest records it, for a
// job of the Syncer: rel, or its copy's key.
func (s *Syncer) objectKey(rel string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[rel]; e != nil {
		return e.ObjectKey(rel)
	}
	return rel
}

// Diverted is how many paths this replica found another replica writing
// too, since it started: its copy stored aside, or the other's moved aside.
func (s *Syncer) Diverted() int64 {
	if s.up.shared == nil {
		return 0
	}
	return s.up.shared.diverted.Load()
}

// RunShared is Run, followed, for a replica in a folder shared with other
// replicas (Options.Shared on a replica's target), by a Recheck of the
// paths it stored under their own names in this attempt and a final sync of
// what that finds, under the same deadline. Without replicas it is Run.
func (s *Syncer) RunShared(stop, deadline context.Context) error {
	if err := s.Run(stop, deadline); err != nil || s.up.shared == nil {
		return err
	}
	for range maxRechecks {
		redo, err := s.Recheck(deadline)
		if err != nil {
			return err
		}
		if redo == 0 {
			return nil
		}
		if err := s.Final(deadline); err != nil {
			return err
		}
	}
	return nil
}

// maxRechecks bounds the rounds of Recheck and final sync at the end: each
// finds only what another replica wrote within the last one.
const maxRechecks = 3

// Recheck looks again at each path this replica stored under its own name in
// this attempt, for another replica that wrote it too within a round trip of
// this one's check (both found it free), or that moved this one's copy
// aside since. A higher replica's object there: the path is this replica's
// to store again (the next pass moves the other's aside). A lower one's:
// this replica's copy is at its own key when the lower one moved it there,
// which the manifest then records; otherwise the next pass stores it there.
// It returns how many paths the next pass must store again.
func (s *Syncer) Recheck(ctx context.Context) (int, error) {
	sh := s.up.shared
	if sh == nil {
		return 0, nil
	}
	sh.mu.Lock()
	rels := slices.Sorted(maps.Keys(sh.wrote))
	clear(sh.wrote)
	sh.mu.Unlock()
	var redo atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Requests) // a HEAD each: as many in flight as small files
	for _, rel := range rels {
		g.Go(func() error {
			again, err := s.recheck(gctx, sh, rel)
			if again {
				redo.Add(1)
			}
			return err
		})
	}
	err := g.Wait()
	return int(redo.Load()), err
}

// recheck looks again at one path of Recheck's, and tells whether the next
// pass must store it again.
func (s *Syncer) recheck(ctx context.Context, sh *sharing, rel string) (bool, error) {
	s.mu.Lock()
	e := s.entries[rel]
	s.mu.Unlock()
	if e == nil || e.Key != "" {
		return false, nil // deleted, or stored aside since
	}
	var attrs *blob.Attributes
	err := s.retry(ctx, func() (err error) {
		attrs, err = sh.target.Attributes(ctx, rel)
		return err
	})
	if gcerrors.Code(err) == gcerrors.NotFound {
		s.drop(rel, e)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	owner := stores.ReplicaOf(attrs)
	if owner == "" || owner == sh.replica {
		return false, nil
	}
	if owner < sh.replica {
		aside := resume.ReplicaCopyKey(rel, sh.replica)
		if copied, err := sh.target.Attributes(ctx, aside); err == nil && stores.ReplicaOf(copied) == sh.replica && copied.Metadata[stores.HashMetadataKey] == e.SHA256.String() {
			moved := *e
			moved.Key = aside
			s.replace(rel, e, &moved)
			sh.logShared(rel, owner, sh.replica)
			return false, nil
		}
	}
	s.drop(rel, e)
	return true, nil
}

// drop forgets the entry e of rel, if it is still the manifest's, so that
// the next pass stores the file again.
func (s *Syncer) drop(rel string, e *resume.Entry) { s.replace(rel, e, nil) }

// replace puts next in place of the manifest's entry of rel (nil: none),
// if that is still e, and tells the Checkpointer.
func (s *Syncer) replace(rel string, e, next *resume.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[rel] != e {
		return
	}
	if next == nil {
		delete(s.entries, rel)
	} else {
		s.entries[rel] = next
	}
	if s.ckpt != nil {
		s.ckpt.Record(rel, next)
	}
}
