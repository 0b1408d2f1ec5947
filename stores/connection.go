package stores

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// The connection kinds of Polyaxon's artifacts store schema.
const (
	KindHostPath    = "host_path"
	KindVolumeClaim = "volume_claim"
	KindS3          = "s3"
	KindGCS         = "gcs"
	KindWASB        = "wasb"
	// KindMemory is an in-process store for tests and dry runs; it keeps nothing.
	KindMemory = "memory"
)

// Kinds lists the kinds a connection may have, in the order the docs give them.
var Kinds = []string{KindHostPath, KindVolumeClaim, KindS3, KindGCS, KindWASB}

// DefaultStorePath is where outputs go when no store is configured: "when no
// connection is provided, the default behavior is to use a local path".
const DefaultStorePath = "./artifacts"

// Connection is one entry of a Polyaxon connections catalog.
type Connection struct {
	Name   string  `json:"name" yaml:"name"`
	Kind   string  `json:"kind" yaml:"kind"`
	Schema Schema  `json:"schema" yaml:"schema"`
	Secret *Secret `json:"secret,omitempty" yaml:"secret,omitempty"`
	// ConfigMap is accepted like a secret, for catalogs that carry endpoints
	// or regions in a config map.
	ConfigMap   *Secret  `json:"configMap,omitempty" yaml:"configMap,omitempty"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	Tags        []string `json:"tags,omitempty" yaml:"tags,omitempty"`
	// Env is Polyaxon's list of extra environment variables for the connection.
	Env []EnvVar `json:"env,omitempty" yaml:"env,omitempty"`

	// setting names where this connection came from, for error messages.
	setting string
}

// Schema holds the kind-specific fields of a connection.
type Schema struct {
	Bucket      string `json:"bucket,omitempty" yaml:"bucket,omitempty"`
	MountPath   string `json:"mountPath,omitempty" yaml:"mountPath,omitempty"`
	HostPath    string `json:"hostPath,omitempty" yaml:"hostPath,omitempty"`
	VolumeClaim string `json:"volumeClaim,omitempty" yaml:"volumeClaim,omitempty"`
	ReadOnly    bool   `json:"readOnly,omitempty" yaml:"readOnly,omitempty"`
}

// Secret names a Kubernetes secret holding credentials. Without MountPath its
// keys were loaded into the environment; with MountPath each key is a file in
// that folder. Items, when set, lists the keys to use.
type Secret struct {
	Name      string   `json:"name" yaml:"name"`
	MountPath string   `json:"mountPath,omitempty" yaml:"mountPath,omitempty"`
	Items     []string `json:"items,omitempty" yaml:"items,omitempty"`
}

// EnvVar is a name/value pair from a connection's env list.
type EnvVar struct {
	Name  string `json:"name" yaml:"name"`
	Value string `json:"value" yaml:"value"`
}

// Catalog is a connections file: the artifacts store and the named connections.
type Catalog struct {
	ArtifactsStore *Connection  `json:"artifactsStore,omitempty" yaml:"artifactsStore,omitempty"`
	Connections    []Connection `json:"connections,omitempty" yaml:"connections,omitempty"`
	// ArtifactsStoreName names the artifacts store among Connections when
	// ArtifactsStore is not given (POLYAXON_ARTIFACTS_STORE_NAME).
	ArtifactsStoreName string `json:"-" yaml:"-"`

	source string // the file or variable it came from
}

// ConfigError is a bad setting: the collector exits with code 2 and writes nothing.
type ConfigError struct {
	Setting string // the setting at fault, as the user wrote it (flag, file key, variable)
	Msg     string // what is wrong and what would be valid
}

func (e *ConfigError) Error() string { return e.Setting + ": " + e.Msg }

// ConfigErrorf returns a ConfigError for setting.
func ConfigErrorf(setting, format string, args ...any) error {
	return &ConfigError{Setting: setting, Msg: fmt.Sprintf(format, args...)}
}

// Environment variables through which Polyaxon's agent passes its catalog.
const (
	EnvCatalog            = "POLYAXON_CONNECTIONS_CATALOG"
	EnvArtifactsStoreName = "POLYAXON_ARTIFACTS_STORE_NAME"
)

// LoadCatalog reads a connections file, YAML or JSON.
func LoadCatalog(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ConfigErrorf("--connections", "cannot read %q: %v", path, UnwrapPathError(err))
	}
	cat, err := parseCatalog(data, "--connections "+path)
	if err != nil {
		return nil, err
	}
	return cat, nil
}

// CatalogFromEnv reads the catalog Polyaxon's agent passes in the environment.
// It returns nil, nil when neither variable is set.
func CatalogFromEnv(getenv func(string) string) (*Catalog, error) {
	raw, name := getenv(EnvCatalog), getenv(EnvArtifactsStoreName)
	if raw == "" && name == "" {
		return nil, nil
	}
	cat := &Catalog{source: EnvCatalog}
	if raw != "" {
		parsed, err := parseCatalog([]byte(raw), EnvCatalog)
		if err != nil {
			return nil, err
		}
		cat = parsed
	}
	cat.ArtifactsStoreName = name
	if name != "" && cat.ArtifactsStore == nil && cat.find(name) == nil {
		return nil, ConfigErrorf(EnvArtifactsStoreName, "names connection %q, which the catalog does not hold (it has: %s)", name, cat.names())
	}
	return cat, nil
}

func parseCatalog(data []byte, source string) (*Catalog, error) {
	var cat Catalog
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cat); err != nil && !errors.Is(err, io.EOF) {
		return nil, ConfigErrorf(source, "not a valid connections catalog (want artifactsStore: and connections: in YAML or JSON): %v", err)
	}
	cat.source = source
	if cat.ArtifactsStore != nil {
		cat.ArtifactsStore.setting = source + ": artifactsStore"
	}
	seen := map[string]bool{}
	for i := range cat.Connections {
		c := &cat.Connections[i]
		c.setting = fmt.Sprintf("%s: connections[%d]", source, i)
		if c.Name == "" {
			return nil, ConfigErrorf(c.setting+".name", "is empty; every connection needs a name")
		}
		if seen[c.Name] {
			return nil, ConfigErrorf(c.setting+".name", "%q appears twice; connection names must be unique", c.Name)
		}
		seen[c.Name] = true
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	if cat.ArtifactsStore != nil {
		if err := cat.ArtifactsStore.Validate(); err != nil {
			return nil, err
		}
	}
	return &cat, nil
}

func (c *Catalog) find(name string) *Connection {
	if c == nil {
		return nil
	}
	if c.ArtifactsStore != nil && c.ArtifactsStore.Name == name {
		return c.ArtifactsStore
	}
	for i := range c.Connections {
		if c.Connections[i].Name == name {
			return &c.Connections[i]
		}
	}
	return nil
}

func (c *Catalog) names() string {
	var names []string
	if c != nil {
		if c.ArtifactsStore != nil {
			names = append(names, c.ArtifactsStore.Name)
		}
		for _, conn := range c.Connections {
			names = append(names, conn.Name)
		}
	}
	if len(names) == 0 {
		return "no connections"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Resolve picks the artifacts store connection. store is the --store setting:
// empty, a local path, a URL, or the name of a connection in one of the
// catalogs (the connections file first, then the environment's).
func Resolve(store string, catalogs ...*Catalog) (Connection, error) {
	if store == "" {
		for _, cat := range catalogs {
			if cat == nil {
				continue
			}
			if cat.ArtifactsStore != nil {
				return *cat.ArtifactsStore, nil
			}
			if cat.ArtifactsStoreName != "" {
				if c := cat.find(cat.ArtifactsStoreName); c != nil {
					return *c, nil
				}
			}
		}
		return pathConnection(DefaultStorePath, "default store"), nil
	}
	for _, cat := range catalogs {
		if c := cat.find(store); c != nil {
			return *c, nil
		}
	}
	if scheme, _, ok := strings.Cut(store, "://"); ok {
		return urlConnection(store, scheme)
	}
	if !looksLikePath(store) {
		var names []string
		for _, cat := range catalogs {
			if cat != nil {
				names = append(names, cat.names())
			}
		}
		if len(names) == 0 {
			names = []string{"no connections file"}
		}
		return Connection{}, ConfigErrorf("--store", "%q is neither a connection name (known: %s) nor a path (write ./%s for a folder) nor a URL (file://, s3://, gs://, azblob://, wasbs://)", store, strings.Join(names, "; "), store)
	}
	return pathConnection(store, "--store"), nil
}

// looksLikePath tells a folder from a connection name: a path has a separator
// or starts with a dot.
func looksLikePath(s string) bool {
	return strings.ContainsRune(s, '/') || strings.HasPrefix(s, ".") || filepath.IsAbs(s)
}

func pathConnection(path, setting string) Connection {
	return Connection{Name: path, Kind: KindHostPath, Schema: Schema{MountPath: path}, setting: setting}
}

func urlConnection(raw, scheme string) (Connection, error) {
	c := Connection{Name: redactURL(raw), setting: "--store", Schema: Schema{Bucket: raw}}
	switch scheme {
	case "file":
		u, err := url.Parse(raw)
		if err != nil || u.Path == "" {
			return Connection{}, ConfigErrorf("--store", "%q is not a valid file:// URL; write file:///absolute/path", redactURL(raw))
		}
		c.Kind, c.Schema = KindHostPath, Schema{MountPath: u.Path}
		return c, nil
	case "s3":
		c.Kind = KindS3
	case "gs":
		c.Kind = KindGCS
	case "azblob", "wasb", "wasbs":
		c.Kind = KindWASB
	case "mem":
		c.Kind = KindMemory
	default:
		return Connection{}, ConfigErrorf("--store", "URL scheme %q is not supported; use file://, s3://, gs://, azblob:// or wasbs://", scheme)
	}
	return c, c.Validate()
}

// Setting names where the connection was configured, for error messages.
func (c Connection) Setting() string {
	if c.setting == "" {
		return "connection " + c.Name
	}
	return c.setting
}

// Validate checks the connection's fields without touching the network or disk.
func (c Connection) Validate() error {
	s := c.Setting()
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
		if c.Schema.MountPath == "" {
			return ConfigErrorf(s+".schema.mountPath", "is empty; a %s connection needs the folder where the volume is mounted in the container", c.Kind)
		}
		if c.Schema.Bucket != "" && c.setting != "--store" {
			return ConfigErrorf(s+".schema.bucket", "is set on a %s connection; %s uses mountPath, bucket is for s3, gcs and wasb", c.Kind, c.Kind)
		}
	case KindS3, KindGCS, KindWASB, KindMemory:
		if c.Schema.Bucket == "" {
			return ConfigErrorf(s+".schema.bucket", "is empty; a %s connection needs a bucket like %s", c.Kind, bucketExample(c.Kind))
		}
		if _, err := ParseBucketURL(c.Kind, c.Schema.Bucket); err != nil {
			return ConfigErrorf(s+".schema.bucket", "%v", err)
		}
	case "":
		return ConfigErrorf(s+".kind", "is empty; valid kinds: %s", strings.Join(Kinds, ", "))
	default:
		return ConfigErrorf(s+".kind", "%q is not a store kind; valid kinds: %s", c.Kind, strings.Join(Kinds, ", "))
	}
	if c.Secret != nil && c.Secret.Name == "" && c.Secret.MountPath == "" {
		return ConfigErrorf(s+".secret", "has neither a name nor a mountPath")
	}
	return nil
}

func bucketExample(kind string) string {
	switch kind {
	case KindS3:
		return "s3://bucket/optional/prefix"
	case KindGCS:
		return "gs://bucket/optional/prefix"
	case KindWASB:
		return "wasbs://container@account.blob.core.windows.net/optional/prefix"
	}
	return "mem://"
}

// BucketURL is a parsed schema.bucket.
type BucketURL struct {
	Bucket  string     // bucket or container
	Account string     // Azure storage account
	Domain  string     // Azure storage domain, e.g. blob.core.windows.net
	Prefix  string     // key prefix inside the bucket, without leading or trailing slash
	Params  url.Values // driver parameters (endpoint, region, ...)
}

// bucketParams lists the query parameters each kind accepts in a bucket URL.
var bucketParams = map[string][]string{
	KindS3:     {"endpoint", "region", "use_path_style", "disable_https", "profile", "checksum"},
	KindGCS:    {},
	KindWASB:   {"domain", "protocol", "localemu", "storage_account", "cdn"},
	KindMemory: {},
}

// ParseBucketURL parses the schema.bucket of a connection of kind.
func ParseBucketURL(kind, raw string) (BucketURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return BucketURL{}, fmt.Errorf("%q is not a URL; want %s", redactURL(raw), bucketExample(kind))
	}
	wantSchemes := map[string][]string{
		KindS3:     {"s3"},
		KindGCS:    {"gs", "gcs"},
		KindWASB:   {"wasbs", "wasb", "azblob"},
		KindMemory: {"mem"},
	}[kind]
	if !contains(wantSchemes, u.Scheme) {
		return BucketURL{}, fmt.Errorf("%q has scheme %q, which a %s connection does not take; want %s", redactURL(raw), u.Scheme, kind, bucketExample(kind))
	}
	b := BucketURL{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Params: u.Query()}
	for name := range b.Params {
		if !contains(bucketParams[kind], name) {
			valid := strings.Join(bucketParams[kind], ", ")
			if valid == "" {
				valid = "none"
			}
			return BucketURL{}, fmt.Errorf("%q has unknown parameter %q; valid for %s: %s", redactURL(raw), name, kind, valid)
		}
	}
	if kind == KindWASB && u.Scheme != "azblob" {
		// wasbs://container@account.blob.core.windows.net/prefix
		if u.User == nil || u.User.Username() == "" {
			return BucketURL{}, fmt.Errorf("%q has no container; want %s", redactURL(raw), bucketExample(kind))
		}
		account, domain, ok := strings.Cut(u.Host, ".")
		if account == "" || !ok || domain == "" {
			return BucketURL{}, fmt.Errorf("%q has no storage account; want %s", redactURL(raw), bucketExample(kind))
		}
		b.Bucket, b.Account, b.Domain = u.User.Username(), account, domain
		if _, hasPassword := u.User.Password(); hasPassword {
			return BucketURL{}, fmt.Errorf("%q carries a password; put credentials in the connection's secret", redactURL(raw))
		}
	}
	if kind == KindWASB && u.Scheme == "azblob" {
		b.Account = b.Params.Get("storage_account")
		b.Domain = b.Params.Get("domain")
	}
	if b.Bucket == "" && kind != KindMemory {
		return BucketURL{}, fmt.Errorf("%q has no bucket name; want %s", redactURL(raw), bucketExample(kind))
	}
	if u.User != nil && kind != KindWASB {
		return BucketURL{}, fmt.Errorf("%q carries user information; put credentials in the connection's secret", redactURL(raw))
	}
	return b, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// redactURL drops any password and credential-bearing query parameter
// (RedactString) from a URL so it can be shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return RedactString(u.Redacted())
}

// MarshalJSON keeps the unexported setting out and leaves the rest as is; a
// connection holds no secret values, only secret names and folders.
func (c Connection) MarshalJSON() ([]byte, error) {
	type plain Connection
	return json.Marshal(plain(c))
}

// UnwrapPathError drops the path an *os.PathError repeats, for messages that name it already.
func UnwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
