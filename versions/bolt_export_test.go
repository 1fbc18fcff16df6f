package versions

import (
	"context"
	"fmt"
)

// Test-only exports for the external tests in bolt_test.go.

// BoltBulkCreate makes a directory "bench" holding n empty files named
// file-000000 on, in one transaction, for benchmarks.
func BoltBulkCreate(c *KVCatalog, n int) (Ino, error) {
	var dir Ino
	err := c.update(context.Background(), func(w *kvTxn) error {
		d, err := w.create(RootIno, "bench", Attr{Mode: ModeDir | 0o755})
		if err != nil {
			return err
		}
		dir = d.Ino
		for i := 0; i < n; i++ {
			if _, err := w.create(dir, fmt.Sprintf("file-%06d", i), Attr{Mode: ModeRegular | 0o644}); err != nil {
				return err
			}
		}
		return nil
	})
	return dir, err
}
