package azure

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
)

// Condition makes an upload through the bucket's writer conditional on what
// the container holds at its key (stores' conditioner): If-None-Match: *
// for pre.IfAbsent, If-Match for pre.IfETag.
func (d *driver) Condition(opts *blob.WriterOptions, pre stores.Precondition) {
	before := opts.BeforeWrite
	opts.BeforeWrite = func(as func(any) bool) error {
		if before != nil {
			if err := before(as); err != nil {
				return err
			}
		}
		var o *azblob.UploadStreamOptions
		if !as(&o) {
			return nil
		}
		if o.AccessConditions == nil {
			o.AccessConditions = &azblobblob.AccessConditions{}
		}
		if o.AccessConditions.ModifiedAccessConditions == nil {
			o.AccessConditions.ModifiedAccessConditions = &azblobblob.ModifiedAccessConditions{}
		}
		switch {
		case pre.IfAbsent:
			any := azcore.ETagAny
			o.AccessConditions.ModifiedAccessConditions.IfNoneMatch = &any
		case pre.IfETag != "":
			etag := azcore.ETag(pre.IfETag)
			o.AccessConditions.ModifiedAccessConditions.IfMatch = &etag
		}
		return nil
	}
}
