// Package internal holds the parts the product's packages use but no one
// else should: the glob language of the settings (pathglob), the wrapped
// command's runner (child), the HTTP probe server (probe), the Polyaxon
// plugins schema (plugins) and the Docker engine client of the docker
// plugin (docker).
package internal
