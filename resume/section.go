package resume

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/mlsidecar/collector/stores"
	"gocloud.dev/blob"
)

// Section is one component's part of the run's state, kept under its name:
// a log source's cursor, the resource series' position. A component reads it
// once at start and saves it whenever its cursor moves past data the store
// holds; the outputs manifest is never rewritten for it.
type Section struct {
	k    *Keeper
	name string
}

// Section returns the part of the state that belongs to the component name.
func (k *Keeper) Section(name string) *Section { return &Section{k: k, name: name} }

// Load decodes the section's last saved value into v. It returns false when
// nothing was saved under the name (a first attempt).
func (s *Section) Load(v any) (bool, error) {
	s.k.mu.Lock()
	raw, ok := s.k.state.Extensions[s.name]
	s.k.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("state section %q: %w", s.name, err)
	}
	return true, nil
}

// Save records v as the section's value. It is on the local disk when Save
// returns, and goes to the store with the state's next checkpoint.
func (s *Section) Save(ctx context.Context, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state section %q: %w", s.name, err)
	}
	return s.k.updateSections(func(sections map[string]json.RawMessage) { sections[s.name] = raw })
}

// updateSections changes a copy of the sections and saves them beside the
// state, as the uploads' progress is.
func (k *Keeper) updateSections(change func(map[string]json.RawMessage)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := *k.state
	next.Extensions = maps.Clone(next.Extensions)
	if next.Extensions == nil {
		next.Extensions = map[string]json.RawMessage{}
	}
	change(next.Extensions)
	data, err := json.Marshal(next.Extensions)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(sectionsPath(k.path), data, true); err != nil {
		return fmt.Errorf("save state sections %s: %w", sectionsPath(k.path), err)
	}
	k.state = &next
	k.sectionsDirty = true
	return nil
}

// SectionsKey is the key, under the run's prefix in the store, of the
// components' sections as last flushed. It is always at least as new as the
// sections inside StateKey's state.
const SectionsKey = ".collector/sections.json"

// Flush puts the sections saved since the last checkpoint into the store:
// the run's final checkpoint, after every component has finished.
func (k *Keeper) Flush(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.sectionsDirty || k.bucket == nil {
		return nil
	}
	if err := k.uploadSections(ctx); err != nil {
		return err
	}
	k.sectionsDirty = false
	return nil
}

// uploadSections writes the sections to SectionsKey. k.mu is held.
func (k *Keeper) uploadSections(ctx context.Context) error {
	data, err := json.Marshal(k.state.Extensions)
	if err != nil {
		return err
	}
	if err := stores.Upload(ctx, k.bucket, SectionsKey, bytes.NewReader(data), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("save state sections to the store: %w", err)
	}
	return nil
}
