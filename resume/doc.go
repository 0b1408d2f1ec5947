// Package resume owns what lets a run continue where it stopped: the outputs
// Manifest (what the store holds of each file), the collector's checkpointed
// State with one section per component, saved locally and to <run>/.collector/
// in the store by a Keeper, and Begin and Restore, which work out the state a
// new attempt continues from and bring the run's outputs back into the outputs
// folder, verified.
//
// The state is a snapshot (versioned JSON) followed by a journal of records,
// each holding what one checkpoint changed: a checkpoint costs what changed,
// not the size of the tree, and a new snapshot replaces the journal once it
// has outgrown a share of the snapshot. Locally the journal is a file beside
// the snapshot; in the store, small immutable objects under
// .collector/journal/. A missing local snapshot is a fresh start; a corrupt
// one is moved aside and named, never silently dropped; a last journal record
// that a crash cut short is ignored.
package resume
