// Package errbody reads the message of an HTTP API's error answer: the
// "message" field of a JSON body, which both a Kubernetes Status and the
// Docker engine's {"message": ...} carry, else the body's text.
package errbody

import (
	"encoding/json"
	"io"
	"strings"
)

// limit bounds what is read of an error body.
const limit = 64 << 10

// Message returns the "message" of the JSON body r holds, or, when r holds
// none, r's text trimmed of surrounding space. It reads at most 64 KiB.
func Message(r io.Reader) string {
	body, _ := io.ReadAll(io.LimitReader(r, limit))
	var v struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil || v.Message == "" {
		return strings.TrimSpace(string(body))
	}
	return v.Message
}
