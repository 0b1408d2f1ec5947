package stores

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mlsidecar/collector/internal/spelling"
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

// Connection is one entry of a Polyaxon connections catalog (V1Connection).
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
	// Annotations are the pod's business; accepted and unused.
	Annotations map[string]any `json:"annotations,omitempty" yaml:"annotations,omitempty"`

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
// that folder. Items, when set, lists the keys to use. HostPath, DefaultMode
// and IsRequested (Polyaxon's ConnectionResource) shape the pod; accepted and
// unused.
type Secret struct {
	Name        string   `json:"name" yaml:"name"`
	MountPath   string   `json:"mountPath,omitempty" yaml:"mountPath,omitempty"`
	Items       []string `json:"items,omitempty" yaml:"items,omitempty"`
	HostPath    string   `json:"hostPath,omitempty" yaml:"hostPath,omitempty"`
	DefaultMode any      `json:"defaultMode,omitempty" yaml:"defaultMode,omitempty"`
	IsRequested *bool    `json:"isRequested,omitempty" yaml:"isRequested,omitempty"`
}

// EnvVar is one of a connection's env list, a Kubernetes EnvVar. One set
// from valueFrom is in the process's environment already, where Kubernetes
// put it.
type EnvVar struct {
	Name      string `json:"name" yaml:"name"`
	Value     string `json:"value" yaml:"value"`
	ValueFrom any    `json:"valueFrom,omitempty" yaml:"valueFrom,omitempty"`
}

// The keys of a connection the collector reads, at each level: a
// misspelling of one is refused, as Polyaxon refuses it.
var (
	connectionKeys = []string{"name", "kind", "description", "tags", "schema", "secret", "configMap", "env", "annotations"}
	schemaKeys     = []string{"bucket", "mountPath", "hostPath", "volumeClaim", "readOnly"}
	resourceKeys   = []string{"name", "mountPath", "hostPath", "items", "defaultMode", "isRequested"}
	envKeys        = []string{"name", "value", "valueFrom"}
)

// pythonNames are the snake_case names of Polyaxon's Python schema for the
// keys above.
var pythonNames = map[string]string{
	"schema_": "schema", "config_map": "configMap", "mount_path": "mountPath", "host_path": "hostPath",
	"volume_claim": "volumeClaim", "read_only": "readOnly", "default_mode": "defaultMode",
	"is_requested": "isRequested", "value_from": "valueFrom",
}

// Catalog is a connections file or Polyaxon's catalog: the artifacts store
// and the named connections. Only the connection the collector uses is
// decoded in full and validated (Resolve); the others (git, registry,
// notifiers, custom kinds, datasets) are the platform's and are kept by name
// and kind only (Unused).
type Catalog struct {
	// ArtifactsStoreName names the artifacts store among the connections
	// when the catalog has no artifactsStore (POLYAXON_ARTIFACTS_STORE_NAME).
	ArtifactsStoreName string

	store   *entry  // artifactsStore
	entries []entry // connections
	source  string  // the file or variable it came from
}

// entry is one connection of a catalog, not yet decoded.
type entry struct {
	name, kind string
	node       *yaml.Node
	setting    string // where it is: "--connections c.yaml: connections[2]"
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
	if name != "" && cat.store == nil && cat.find(name) == nil {
		return nil, ConfigErrorf(EnvArtifactsStoreName, "names connection %q, which the catalog does not hold (it has: %s)", name, cat.names())
	}
	return cat, nil
}

// parseCatalog reads a catalog's shape: artifactsStore: and a list under
// connections:. What each connection holds is read when it is used.
func parseCatalog(data []byte, source string) (*Catalog, error) {
	bad := func(err any) error {
		return ConfigErrorf(source, "not a valid connections catalog (want artifactsStore: and connections: in YAML or JSON): %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, bad(err)
	}
	cat := &Catalog{source: source}
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return cat, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, bad(fmt.Sprintf("line %d: a %s", root.Line, nodeKind(root)))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "artifactsStore", "artifacts_store":
			if v.Tag == "!!null" {
				continue
			}
			e := newEntry(v, source+": artifactsStore")
			cat.store = &e
		case "connections":
			if v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				return nil, bad(fmt.Sprintf("line %d: connections: want a list, not a %s", v.Line, nodeKind(v)))
			}
			for j, c := range v.Content {
				cat.entries = append(cat.entries, newEntry(c, fmt.Sprintf("%s: connections[%d]", source, j)))
			}
		default:
			if near := closeTo(k.Value, "artifactsStore", "connections"); near != "" {
				return nil, ConfigErrorf(source, "line %d: %q is not a key of a catalog; did you mean %s?", k.Line, k.Value, near)
			}
		}
	}
	return cat, nil
}

func newEntry(n *yaml.Node, setting string) entry {
	e := entry{node: n, setting: setting}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				continue
			}
			switch k {
			case "name":
				e.name = v.Value
			case "kind":
				e.kind = v.Value
			}
		}
	}
	return e
}

// connection decodes and validates the entry: it is the store.
func (e *entry) connection() (Connection, error) {
	n := e.node
	if !slices.Contains(Kinds, e.kind) && e.kind != KindMemory {
		return Connection{}, Connection{Kind: e.kind, setting: e.setting}.Validate()
	}
	if n.Kind != yaml.MappingNode {
		return Connection{}, ConfigErrorf(e.setting, "line %d: want a connection (name, kind, schema, ...), not a %s", n.Line, nodeKind(n))
	}
	if err := checkKeys(n, e.setting, connectionKeys); err != nil {
		return Connection{}, err
	}
	var c Connection
	if err := n.Decode(&c); err != nil {
		return Connection{}, ConfigErrorf(e.setting, "not a valid connection: %v", err)
	}
	c.setting = e.setting
	return c, c.Validate()
}

// checkKeys renames the Python names of a connection's keys to Polyaxon's
// YAML names and refuses a key the collector does not know, level by level.
func checkKeys(n *yaml.Node, setting string, known []string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if camel, ok := pythonNames[k.Value]; ok {
			k.Value = camel
		}
		if !slices.Contains(known, k.Value) {
			hint := ""
			if near := closeTo(k.Value, known...); near != "" {
				hint = "did you mean " + near + "? "
			}
			return ConfigErrorf(setting+"."+k.Value, "line %d: not a key here; %svalid keys: %s", k.Line, hint, strings.Join(known, ", "))
		}
		var err error
		switch k.Value {
		case "schema":
			err = checkKeys(v, setting+".schema", schemaKeys)
		case "secret", "configMap":
			err = checkKeys(v, setting+"."+k.Value, resourceKeys)
		case "env":
			if v.Kind == yaml.SequenceNode {
				for j, item := range v.Content {
					if err = checkKeys(item, fmt.Sprintf("%s.env[%d]", setting, j), envKeys); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// closeTo returns the one of names that key is a misspelling of: the same
// but for case, '_' and '-', or two edits away at most.
func closeTo(key string, names ...string) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	k := fold(key)
	if len(k) > 64 {
		return ""
	}
	for _, n := range names {
		if spelling.Distance(k, fold(n)) <= 2 {
			return n
		}
	}
	return ""
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value " + strconv.Quote(n.Value)
}

// find returns the entry of that name: the artifacts store's, else the
// first connection's.
func (c *Catalog) find(name string) *entry {
	if c == nil {
		return nil
	}
	if c.store != nil && c.store.name == name {
		return c.store
	}
	for i := range c.entries {
		if c.entries[i].name == name {
			return &c.entries[i]
		}
	}
	return nil
}

// use decodes and validates the entry the collector will use as its store;
// a name that two connections share cannot pick one.
func (c *Catalog) use(e *entry) (Connection, error) {
	first := -1
	for i := range c.entries {
		if c.entries[i].name != e.name {
			continue
		}
		if first >= 0 {
			return Connection{}, ConfigErrorf(c.entries[i].setting+".name", "%q appears twice (connections[%d] too); the store's connection name must be unique", e.name, first)
		}
		first = i
	}
	return e.connection()
}

func (c *Catalog) names() string {
	var names []string
	if c != nil {
		if c.store != nil {
			names = append(names, c.store.name)
		}
		for _, e := range c.entries {
			names = append(names, e.name)
		}
	}
	if len(names) == 0 {
		return "no connections"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Unused lists the catalogs' connections other than used, as "name (kind)":
// the platform's (git, registry, notifiers, datasets), not read further.
func Unused(used Connection, catalogs ...*Catalog) []string {
	var out []string
	for _, cat := range catalogs {
		if cat == nil {
			continue
		}
		all := cat.entries
		if cat.store != nil {
			all = append([]entry{*cat.store}, all...)
		}
		for _, e := range all {
			if e.setting != used.setting {
				out = append(out, fmt.Sprintf("%s (%s)", e.name, e.kind))
			}
		}
	}
	return out
}

// Resolve picks the artifacts store connection. store is the --store setting:
// empty, a local path, a URL, or the name of a connection in one of the
// catalogs (the connections file first, then the environment's). Only the
// connection picked is validated.
func Resolve(store string, catalogs ...*Catalog) (Connection, error) {
	if store == "" {
		for _, cat := range catalogs {
			if cat == nil {
				continue
			}
			if cat.store != nil {
				return cat.store.connection()
			}
			if cat.ArtifactsStoreName != "" {
				if e := cat.find(cat.ArtifactsStoreName); e != nil {
					return cat.use(e)
				}
			}
		}
		return pathConnection(DefaultStorePath, "default store"), nil
	}
	for _, cat := range catalogs {
		if e := cat.find(store); e != nil {
			if e == cat.store {
				return e.connection()
			}
			return cat.use(e)
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
