package spool

import "context"

// Section is a producer's part of the run's state, kept under its name:
// where it keeps the cursor of its series. resume.Section implements it.
type Section interface {
	// Load decodes the section's last saved value into v; false when
	// nothing was saved (a first attempt).
	Load(v any) (bool, error)
	// Save records v as the section's value.
	Save(ctx context.Context, v any) error
}
