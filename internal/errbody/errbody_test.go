package errbody

import (
	"strings"
	"testing"
)

func TestMessage(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"p\" is forbidden","reason":"Forbidden","code":403}`, `pods "p" is forbidden`},
		{`{"message":"No such container: typo"}`, "No such container: typo"},
		{"404 page not found\n", "404 page not found"},
		{`{"message":""}`, `{"message":""}`},
		{"", ""},
	} {
		if got := Message(strings.NewReader(tc.body)); got != tc.want {
			t.Errorf("Message(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
