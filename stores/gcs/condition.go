package gcs

import (
	"cloud.google.com/go/storage"
	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

// Match adds to pre the generation of the object attrs describes (stores'
// matcher): GCS checks a write against a generation, not an ETag.
func (d *driver) Match(attrs *blob.Attributes, pre *stores.Precondition) {
	var oa storage.ObjectAttrs
	if attrs.As(&oa) {
		pre.IfGeneration = oa.Generation
	}
}

// Condition makes an upload through the bucket's writer conditional on what
// the bucket holds at its key (stores' conditioner): the object must not
// exist for pre.IfAbsent, or be of pre.IfGeneration. The object handle is
// set before anything else touches the writer, as gcsblob requires.
func (d *driver) Condition(opts *blob.WriterOptions, pre stores.Precondition) {
	var cond storage.Conditions
	switch {
	case pre.IfAbsent:
		cond.DoesNotExist = true
	case pre.IfGeneration != 0:
		cond.GenerationMatch = pre.IfGeneration
	default:
		return
	}
	after := opts.BeforeWrite
	opts.BeforeWrite = func(as func(any) bool) error {
		var oh **storage.ObjectHandle
		if as(&oh) {
			*oh = (*oh).If(cond)
		}
		if after != nil {
			return after(as)
		}
		return nil
	}
}
