package versionstest

import (
	"errors"
	"testing"

	"github.com/casfs/casfs/versions"
)

// testSpecial: FIFOs, sockets and device nodes are names with attributes
// (and a device number); they take no versions and leave no history.
func testSpecial(t *testing.T, e *env) {
	kinds := []struct {
		name string
		mode uint32
		rdev uint32
	}{
		{"fifo", versions.ModeFifo | 0o640, 0},
		{"sock", versions.ModeSocket | 0o755, 0},
		{"chr", versions.ModeChar | 0o600, 1<<8 | 3},
		{"blk", versions.ModeBlock | 0o660, 8<<8 | 1},
	}
	for _, k := range kinds {
		a, err := e.c.Create(e.ctx, versions.RootIno, k.name, versions.Attr{Mode: k.mode, Rdev: k.rdev, Size: 99})
		if err != nil {
			t.Fatalf("create %s: %v", k.name, err)
		}
		if !a.IsSpecial() || a.Mode != k.mode || a.Nlink != 1 || a.Size != 0 || a.Rdev != k.rdev {
			t.Errorf("create %s: got %+v", k.name, a)
		}
		got := e.attr(a.Ino)
		if got.Mode != k.mode || got.Rdev != k.rdev || got.Size != 0 || got.Nlink != 1 {
			t.Errorf("getattr %s: got %+v, want mode %#o rdev %#x", k.name, got, k.mode, k.rdev)
		}
		if l := e.lookup(versions.RootIno, k.name); l.Ino != a.Ino || l.Rdev != k.rdev {
			t.Errorf("lookup %s: got %+v", k.name, l)
		}
		if _, err := e.c.Commit(e.ctx, a.Ino, versions.Version{Recipe: recipe(1), Size: 1}); !errors.Is(err, versions.ErrInvalid) {
			t.Errorf("commit to %s: %v; want ErrInvalid", k.name, err)
		}
		if _, err := e.c.Link(e.ctx, a.Ino, versions.RootIno, k.name+"2"); err != nil {
			t.Errorf("link %s: %v", k.name, err)
		}
		if err := e.c.Remove(e.ctx, versions.RootIno, k.name, false); err != nil {
			t.Fatalf("remove %s: %v", k.name, err)
		}
		if l := e.attr(a.Ino); l.Nlink != 1 || l.Rdev != k.rdev {
			t.Errorf("%s after removing one of two names: %+v", k.name, l)
		}
		if err := e.c.Remove(e.ctx, versions.RootIno, k.name+"2", false); err != nil {
			t.Fatalf("remove %s2: %v", k.name, err)
		}
		e.gone(a.Ino)
	}
	e.wantNames(versions.RootIno)
	e.wantDeleted(versions.RootIno)
}
