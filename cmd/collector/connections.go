package main

import (
	"log/slog"
	"strings"

	"github.com/mlsidecar/collector/stores"
)

// resolveStore picks the artifacts store from --store, the connections file
// and Polyaxon's catalog in the environment. Only the connection picked is
// validated; the catalogs' others are the platform's (git, registry,
// notifiers, datasets) and are named once at debug level, when log is set.
func resolveStore(set *settings, getenv func(string) string, log *slog.Logger) (stores.Connection, error) {
	var fileCat *stores.Catalog
	if set.Connections != "" {
		var err error
		if fileCat, err = stores.LoadCatalog(set.Connections); err != nil {
			return stores.Connection{}, err
		}
	}
	envCat, err := stores.CatalogFromEnv(getenv)
	if err != nil {
		return stores.Connection{}, err
	}
	conn, err := stores.Resolve(set.Store, fileCat, envCat)
	if err == nil && log != nil {
		if others := stores.Unused(conn, fileCat, envCat); len(others) > 0 {
			log.Debug("connections not used by the collector, not checked", "connections", strings.Join(others, ", "))
		}
	}
	return conn, err
}
