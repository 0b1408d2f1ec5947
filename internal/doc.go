// Package internal holds the helpers that are not product parts: the glob
// language of the settings (pathglob), the wrapped command's runner (child),
// the HTTP probe server (probe), the Polyaxon plugins schema (plugins), the
// spool through which logs and resources reach the store (spool), and the
// Docker engine client of the docker plugin (docker).
package internal
