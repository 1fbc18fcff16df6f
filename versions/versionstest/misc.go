package versionstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/casfs/casfs/versions"
)

func testXattr(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	d := e.mkdir(versions.RootIno, "d")
	l := e.create(versions.RootIno, "l", versions.ModeSymlink|0o777, "f")
	for _, ino := range []versions.Ino{f.Ino, d.Ino, l.Ino} {
		names, err := e.c.ListXattr(e.ctx, ino)
		if err != nil || len(names) != 0 {
			t.Errorf("listxattr of new %d: %q, %v", ino, names, err)
		}
		set := func(name, val string, flags int) {
			t.Helper()
			if err := e.c.SetXattr(e.ctx, ino, name, []byte(val), flags); err != nil {
				t.Fatalf("setxattr %d %q: %v", ino, name, err)
			}
		}
		get := func(name, want string) {
			t.Helper()
			v, err := e.c.GetXattr(e.ctx, ino, name)
			if err != nil || string(v) != want {
				t.Errorf("getxattr %d %q: %q, %v; want %q", ino, name, v, err, want)
			}
		}
		set("user.b", "2", 0)
		set("user.a", "1", versions.XattrCreate)
		set("user.empty", "", 0)
		set("user.bin", "\x00\xff", 0)
		get("user.a", "1")
		get("user.b", "2")
		get("user.empty", "")
		get("user.bin", "\x00\xff")
		set("user.a", "one", versions.XattrReplace)
		get("user.a", "one")
		set("user.a", "uno", 0)
		get("user.a", "uno")
		wantErr(t, "xattr create existing", e.c.SetXattr(e.ctx, ino, "user.a", []byte("x"), versions.XattrCreate), versions.ErrExist)
		wantErr(t, "xattr replace absent", e.c.SetXattr(e.ctx, ino, "user.c", []byte("x"), versions.XattrReplace), versions.ErrNoAttr)
		get("user.a", "uno")
		names, err = e.c.ListXattr(e.ctx, ino)
		slices.Sort(names)
		if err != nil || !slices.Equal(names, []string{"user.a", "user.b", "user.bin", "user.empty"}) {
			t.Errorf("listxattr %d: %q, %v", ino, names, err)
		}
		if err := e.c.RemoveXattr(e.ctx, ino, "user.b"); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.GetXattr(e.ctx, ino, "user.b")
		wantErr(t, "getxattr removed", err, versions.ErrNoAttr)
		wantErr(t, "removexattr removed", e.c.RemoveXattr(e.ctx, ino, "user.b"), versions.ErrNoAttr)
		names, _ = e.c.ListXattr(e.ctx, ino)
		if len(names) != 3 {
			t.Errorf("listxattr after remove: %q", names)
		}
	}
	// The value handed in is the caller's to reuse.
	buf := []byte("abc")
	if err := e.c.SetXattr(e.ctx, f.Ino, "user.buf", buf, 0); err != nil {
		t.Fatal(err)
	}
	copy(buf, "xyz")
	got, _ := e.c.GetXattr(e.ctx, f.Ino, "user.buf")
	if string(got) != "abc" {
		t.Errorf("xattr value aliased the caller's buffer: %q", got)
	}
	// Xattrs stay with a deleted file and are separate per inode.
	e.commit(f.Ino, 1)
	if err := e.c.Remove(e.ctx, versions.RootIno, "f", false); err != nil {
		t.Fatal(err)
	}
	if v, err := e.c.GetXattr(e.ctx, f.Ino, "user.a"); err != nil || string(v) != "uno" {
		t.Errorf("xattr of deleted file: %q, %v", v, err)
	}
	g := e.mkfile(versions.RootIno, "f")
	if names, _ := e.c.ListXattr(e.ctx, g.Ino); len(names) != 0 {
		t.Errorf("new file under an old name has xattrs %q", names)
	}
}

func testXattrErrors(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	wantErr(t, "setxattr missing inode", e.c.SetXattr(e.ctx, 1<<40, "user.a", nil, 0), versions.ErrNotExist)
	_, err := e.c.GetXattr(e.ctx, 1<<40, "user.a")
	wantErr(t, "getxattr missing inode", err, versions.ErrNotExist)
	_, err = e.c.ListXattr(e.ctx, 1<<40)
	wantErr(t, "listxattr missing inode", err, versions.ErrNotExist)
	wantErr(t, "removexattr missing inode", e.c.RemoveXattr(e.ctx, 1<<40, "user.a"), versions.ErrNotExist)
	_, err = e.c.GetXattr(e.ctx, f.Ino, "user.none")
	wantErr(t, "getxattr absent", err, versions.ErrNoAttr)
	wantErr(t, "removexattr absent", e.c.RemoveXattr(e.ctx, f.Ino, "user.none"), versions.ErrNoAttr)

	name255 := "user." + strings.Repeat("x", 250)
	if err := e.c.SetXattr(e.ctx, f.Ino, name255, []byte("v"), 0); err != nil {
		t.Errorf("255-byte xattr name: %v", err)
	}
	wantErr(t, "256-byte xattr name", e.c.SetXattr(e.ctx, f.Ino, name255+"x", []byte("v"), 0), versions.ErrInvalid)
	wantErr(t, "empty xattr name", e.c.SetXattr(e.ctx, f.Ino, "", []byte("v"), 0), versions.ErrInvalid)
	big := bytes.Repeat([]byte{7}, 64<<10)
	if err := e.c.SetXattr(e.ctx, f.Ino, "user.big", big, 0); err != nil {
		t.Errorf("64 KiB xattr: %v", err)
	}
	if v, err := e.c.GetXattr(e.ctx, f.Ino, "user.big"); err != nil || !bytes.Equal(v, big) {
		t.Errorf("64 KiB xattr read back: %d bytes, %v", len(v), err)
	}
	wantErr(t, "64 KiB + 1 xattr", e.c.SetXattr(e.ctx, f.Ino, "user.huge", append(big, 1), 0), versions.ErrInvalid)
	wantErr(t, "xattr both flags", e.c.SetXattr(e.ctx, f.Ino, "user.x", nil, versions.XattrCreate|versions.XattrReplace), versions.ErrInvalid)
	names, _ := e.c.ListXattr(e.ctx, f.Ino)
	slices.Sort(names)
	if !slices.Equal(names, []string{"user.big", name255}) {
		t.Errorf("listxattr: %q", names)
	}
}

// testCanceled checks that every method honours a context that is already
// done, and changes nothing.
func testCanceled(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	v := e.commit(f.Ino, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, root := e.c, versions.RootIno
	mode := uint32(0o600)
	calls := map[string]func() error{
		"GetAttr": func() error { _, err := c.GetAttr(ctx, root); return err },
		"Lookup":  func() error { _, err := c.Lookup(ctx, root, "f"); return err },
		"ReadDir": func() error { _, err := c.ReadDir(ctx, root); return err },
		"Create": func() error {
			_, err := c.Create(ctx, root, "new", versions.Attr{Mode: versions.ModeRegular | 0o644})
			return err
		},
		"Link":          func() error { _, err := c.Link(ctx, f.Ino, root, "link"); return err },
		"SetAttr":       func() error { _, err := c.SetAttr(ctx, f.Ino, versions.SetAttr{Mode: &mode}); return err },
		"Rename":        func() error { return c.Rename(ctx, root, "f", root, "g", 0) },
		"Remove":        func() error { return c.Remove(ctx, root, "f", false) },
		"Commit":        func() error { _, err := c.Commit(ctx, f.Ino, versions.Version{Recipe: recipe(2)}); return err },
		"Versions":      func() error { _, err := c.Versions(ctx, f.Ino); return err },
		"RemoveVersion": func() error { return c.RemoveVersion(ctx, f.Ino, v.ID) },
		"Deleted":       func() error { _, err := c.Deleted(ctx, root); return err },
		"Purge":         func() error { return c.Purge(ctx, f.Ino) },
		"Walk": func() error {
			return c.Walk(ctx, func(versions.Ino, versions.Version) error { return nil })
		},
		"GetXattr":    func() error { _, err := c.GetXattr(ctx, f.Ino, "user.a"); return err },
		"SetXattr":    func() error { return c.SetXattr(ctx, f.Ino, "user.a", nil, 0) },
		"ListXattr":   func() error { _, err := c.ListXattr(ctx, f.Ino); return err },
		"RemoveXattr": func() error { return c.RemoveXattr(ctx, f.Ino, "user.a") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v", name, err)
		}
	}
	e.wantNames(root, "f")
	e.wantVersions(f.Ino, v)
	if a := e.attr(f.Ino); a.Mode&versions.ModePerm != 0o644 || a.Nlink != 1 {
		t.Errorf("canceled calls changed %+v", a)
	}
}

// testConcurrent runs creates and commits from many goroutines (under -race
// in CI): no entry, link count or version may be lost, and IDs stay unique
// and increasing.
func testConcurrent(t *testing.T, e *env) {
	const workers, each = 8, 12
	d := e.mkdir(versions.RootIno, "d")
	f := e.mkfile(versions.RootIno, "f")
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[versions.VersionID]bool{}
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last versions.VersionID
			for i := 0; i < each; i++ {
				mode := uint32(versions.ModeRegular | 0o644)
				if i%3 == 0 {
					mode = versions.ModeDir | 0o755
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				if _, err := e.c.Create(e.ctx, d.Ino, name, versions.Attr{Mode: mode}); err != nil {
					t.Errorf("create %s: %v", name, err)
				}
				v, err := e.c.Commit(e.ctx, f.Ino, versions.Version{Recipe: recipe(w*each + i + 1), Size: 1})
				if err != nil {
					t.Errorf("commit: %v", err)
					continue
				}
				if v.ID.Compare(last) <= 0 {
					t.Errorf("worker %d: id %v not after its previous %v", w, v.ID, last)
				}
				last = v.ID
				if _, err := e.c.Lookup(e.ctx, d.Ino, name); err != nil {
					t.Errorf("lookup %s: %v", name, err)
				}
				mu.Lock()
				if ids[v.ID] {
					t.Errorf("id %v handed out twice", v.ID)
				}
				ids[v.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got := len(e.names(d.Ino)); got != workers*each {
		t.Errorf("readdir: %d entries, want %d", got, workers*each)
	}
	dirs := 0
	for i := 0; i < each; i += 3 {
		dirs++
	}
	e.wantNlink(d.Ino, uint32(2+workers*dirs))
	vs := e.versions(f.Ino)
	if len(vs) != workers*each {
		t.Fatalf("versions: %d, want %d", len(vs), workers*each)
	}
	for i := range vs {
		if !ids[vs[i].ID] {
			t.Errorf("version %v was never returned by Commit", vs[i].ID)
		}
		if i > 0 && vs[i].ID.Compare(vs[i-1].ID) <= 0 {
			t.Errorf("versions out of order at %d", i)
		}
	}
	if a := e.attr(f.Ino); a.Head != vs[len(vs)-1].ID {
		t.Errorf("head %v, newest %v", a.Head, vs[len(vs)-1].ID)
	}
}
