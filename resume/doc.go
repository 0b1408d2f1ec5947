// Package resume owns what lets a run continue where it stopped: the format
// of the run's State (the outputs Manifest, the large uploads in flight, one
// section per component), its journal, the Keeper that saves it locally and
// to <run>/.collector/ in the store, and Begin and Restore, which work out
// the state a new attempt continues from and bring the outputs back,
// verified. The manifest itself is the sync engine's, which tells the Keeper
// each change and hands it a copy for a snapshot.
//
// Contract: a checkpoint costs what changed, not the tree; a corrupt local
// state is moved aside and named, never silently dropped; a last journal
// record that a crash cut short is ignored. docs/resume.md has the design.
package resume
