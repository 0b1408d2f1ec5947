package stores

import (
	"regexp"
)

// credentialPatterns match the credentials an SDK error can quote: URL query
// parameters that carry a signature or a token, a URL's userinfo, and the
// keys of an Azure connection string.
var credentialPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)([?&](?:sig|se|sp|skoid|sktid|sks|skv|sv|st|spr|srt|ss|sr|x-amz-signature|x-amz-credential|x-amz-security-token|token|key|access_token|upload_id)=)[^&\s"'<>]*`),
	regexp.MustCompile(`(?i)((?:accountkey|sharedaccesssignature|sharedaccesskey)=)[^;\s"']*`),
	regexp.MustCompile(`(://)[^/@\s"']+@`),
}

// RedactString removes credentials from s: the values of credential-bearing
// URL query parameters and connection-string keys, and a URL's userinfo.
func RedactString(s string) string {
	for i, re := range credentialPatterns {
		if i == len(credentialPatterns)-1 {
			s = re.ReplaceAllString(s, "${1}REDACTED@")
			continue
		}
		s = re.ReplaceAllString(s, "${1}REDACTED")
	}
	return s
}

// Redact returns err with its message cleaned by RedactString. The result
// unwraps to err, so errors.Is, errors.As and gcerrors.Code still see the
// SDK's error; only its text changes. Every error that leaves this package
// and its backends passes through here.
func Redact(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*redactedError); ok {
		return err
	}
	msg := err.Error()
	clean := RedactString(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
