// Package internal holds the parts the product's packages use but no one
// else should: the glob language of the settings (pathglob), the wrapped
// command's runner (child), the HTTP probe server (probe), the Polyaxon
// plugins schema (plugins), the clients of the Docker engine (docker) and of
// the Kubernetes API for the collector's own pod (kube), the message of
// their error answers (errbody), the one retry delay (backoff), and how far
// a misspelt name is from a known one (spelling).
package internal
