package multipart

// S3Key is the S3 key of a key, escaped as the S3 uploader stores it.
var S3Key = s3Key
