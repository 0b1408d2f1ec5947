package resume

import (
	"context"
	"encoding/json"
	"fmt"
)

// Section is one component's part of the run's state, kept under its name:
// a log source's cursor, the resource series' position. A component reads it
// once at start and saves it whenever its cursor moves past data the store
// holds; each save is one small journal record, and the outputs manifest is
// never rewritten for it. It is the spool.Section that logs and resources
// keep their cursors in.
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
	raw, ok := s.k.sections[s.name]
	s.k.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("state section %q: %w", s.name, err)
	}
	return true, nil
}

// Save records v as the section's value. It is in the local journal when
// Save returns (in memory only, when the local disk refuses it), and goes to
// the store with the state's next checkpoint or Flush.
func (s *Section) Save(_ context.Context, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state section %q: %w", s.name, err)
	}
	k := s.k
	k.mu.Lock()
	k.sections[s.name] = raw
	k.toLocal.setSection(s.name, raw)
	k.toStore.setSection(s.name, raw)
	k.mu.Unlock()
	k.saveLocal(false)
	return nil
}
