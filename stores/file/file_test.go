package file_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsidecar/collector/stores"
	_ "github.com/mlsidecar/collector/stores/file"
)

func TestHostPathStoreWritesNoSidecarFiles(t *testing.T) {
	dir := t.TempDir()
	b, err := stores.Open(context.Background(), stores.Connection{Kind: stores.KindHostPath, Schema: stores.Schema{MountPath: dir}}, stores.Options{ForWriting: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := stores.Upload(context.Background(), b.Bucket(), "run/outputs/a.txt", strings.NewReader("hello"), nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if len(names) != 1 || names[0] != filepath.FromSlash("run/outputs/a.txt") {
		t.Errorf("store files = %v, want only run/outputs/a.txt", names)
	}
}
