// Package report owns the run report: one self-contained HTML page for a
// run (inline CSS and SVG, no script, nothing fetched from the network) that
// a person opens from the store's console or a laptop, offline.
//
// Collect reads the run from the store through the project's own readers:
// the attempt records (AttemptRecord, under .collector/attempts/, one per
// attempt that ended, with its exit code) and resume's ended record, the
// resource series and summary.json (resources.ReadSeries, ReadSummary), the
// log's last lines (logs.Tail) and the outputs listed under outputs/, linked
// by signed URL where the store can sign one. Write renders it.
//
// Every line of a plot belongs to a Track: a replica of the run (empty in a
// single-replica run) and an attempt. Long series are reduced to the
// extremes of each pixel column, so peaks stay visible and the page's size
// is bounded whatever the run's length.
package report
