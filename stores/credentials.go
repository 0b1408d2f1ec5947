package stores

import (
	"os"
	"path/filepath"
	"strings"
)

// Credentials looks up credential keys: first in the connection's secret
// folder (when it has a mountPath), then in the connection's env list, then in
// the process environment. Values are never logged or returned in errors.
type Credentials struct {
	files  map[string]string // key -> value read from secret.mountPath
	env    map[string]string // the connection's env list
	getenv func(string) string
}

// loadCredentials reads the key files of secret.mountPath, if any.
func loadCredentials(c Connection, getenv func(string) string) (Credentials, error) {
	creds := Credentials{files: map[string]string{}, env: map[string]string{}, getenv: getenv}
	for _, e := range c.Env {
		creds.env[e.Name] = e.Value
	}
	for _, s := range []*Secret{c.ConfigMap, c.Secret} {
		if s == nil || s.MountPath == "" {
			continue
		}
		setting := c.Setting() + ".secret.mountPath"
		if s == c.ConfigMap {
			setting = c.Setting() + ".configMap.mountPath"
		}
		keys := s.Items
		if len(keys) == 0 {
			entries, err := os.ReadDir(s.MountPath)
			if err != nil {
				return creds, ConfigErrorf(setting, "cannot read the secret folder %q: %v", s.MountPath, UnwrapPathError(err))
			}
			for _, e := range entries {
				// Kubernetes projects keys as symlinks into ..data; skip its own entries.
				if strings.HasPrefix(e.Name(), "..") || e.IsDir() {
					continue
				}
				keys = append(keys, e.Name())
			}
		}
		for _, key := range keys {
			path := filepath.Join(s.MountPath, key)
			data, err := os.ReadFile(path)
			if err != nil {
				return creds, ConfigErrorf(setting, "cannot read secret key %q in %q: %v", key, s.MountPath, UnwrapPathError(err))
			}
			creds.files[key] = strings.TrimSpace(string(data))
			// A key file (GCS service account JSON) is also known by its path.
			creds.files[key+"@path"] = path
		}
	}
	return creds, nil
}

// get returns the first non-empty value among names.
func (c Credentials) Get(names ...string) string {
	for _, n := range names {
		if v := c.files[n]; v != "" {
			return v
		}
		if v := c.env[n]; v != "" {
			return v
		}
		if c.getenv != nil {
			if v := c.getenv(n); v != "" {
				return v
			}
		}
	}
	return ""
}

// path returns the file path of a key that was read from a secret folder.
func (c Credentials) Path(name string) string { return c.files[name+"@path"] }

// Getenv reads the process environment, for settings that are not
// credentials (STORAGE_EMULATOR_HOST).
func (c Credentials) Getenv(name string) string {
	if c.getenv == nil {
		return ""
	}
	return c.getenv(name)
}
