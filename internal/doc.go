// Package internal holds the helpers that are not product parts: the glob
// language of the settings (pathglob), the wrapped command's runner (child),
// the HTTP probe server (probe) and the Polyaxon plugins schema (plugins).
package internal
