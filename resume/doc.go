// Package resume owns what lets a run continue where it stopped: the outputs
// Manifest (what the store holds of each file), the collector's checkpointed
// State with one section per component, saving it atomically to a local file
// and to <run>/.collector/ in the store, and Begin and Restore, which work
// out the state a new attempt continues from and bring the run's outputs
// back into the outputs folder, verified.
//
// The state is versioned JSON. A missing local file is a fresh start; a
// corrupt one is moved aside and named, never silently dropped.
package resume
