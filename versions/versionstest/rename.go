package versionstest

import (
	"testing"

	"github.com/casfs/casfs/versions"
)

func (e *env) rename(parent versions.Ino, name string, newParent versions.Ino, newName string, flags uint32) {
	e.t.Helper()
	if err := e.c.Rename(e.ctx, parent, name, newParent, newName, flags); err != nil {
		e.t.Fatalf("rename %q to %q: %v", name, newName, err)
	}
}

func testRename(t *testing.T, e *env) {
	a := e.mkdir(versions.RootIno, "a")
	b := e.mkdir(versions.RootIno, "b")
	f := e.mkfile(a.Ino, "f")
	v := e.commit(f.Ino, 1)

	e.age(a.Ino)
	e.rename(a.Ino, "f", a.Ino, "g", 0)
	e.touched("rename within dir", a.Ino)
	e.noEntry(a.Ino, "f")
	if g := e.lookup(a.Ino, "g"); g.Ino != f.Ino || g.Head != v.ID {
		t.Errorf("renamed: %+v", g)
	}
	if g := e.attr(f.Ino); g.Ctime.Before(f.Ctime) {
		t.Errorf("rename: ctime went back")
	}

	e.age(a.Ino, b.Ino)
	e.rename(a.Ino, "g", b.Ino, "h", 0)
	e.touched("rename across dirs", a.Ino, b.Ino)
	e.wantNames(a.Ino)
	e.wantNames(b.Ino, "h")
	e.wantVersions(f.Ino, v)
	e.wantNlink(f.Ino, 1)
	e.wantDeleted(a.Ino)
	e.wantDeleted(b.Ino)

	// The same entry: nothing happens.
	e.rename(b.Ino, "h", b.Ino, "h", 0)
	e.wantNames(b.Ino, "h")
	e.wantNlink(f.Ino, 1)

	// Two names of one file: nothing happens, both stay (rename(2)).
	if _, err := e.c.Link(e.ctx, f.Ino, a.Ino, "h2"); err != nil {
		t.Fatal(err)
	}
	e.rename(a.Ino, "h2", b.Ino, "h", 0)
	e.wantNames(a.Ino, "h2")
	e.wantNames(b.Ino, "h")
	e.wantNlink(f.Ino, 2)

	// Symlinks move like files.
	l := e.create(a.Ino, "l", versions.ModeSymlink|0o777, "x")
	e.rename(a.Ino, "l", versions.RootIno, "l", 0)
	if got := e.lookup(versions.RootIno, "l"); got.Ino != l.Ino || got.Target != "x" {
		t.Errorf("renamed symlink: %+v", got)
	}
}

func testRenameOver(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	src := e.mkfile(versions.RootIno, "src")
	plain := e.mkfile(d.Ino, "plain")

	// A target without history is dropped.
	e.rename(versions.RootIno, "src", d.Ino, "plain", 0)
	e.gone(plain.Ino)
	if got := e.lookup(d.Ino, "plain"); got.Ino != src.Ino {
		t.Errorf("after rename over: %+v", got)
	}
	e.wantNames(versions.RootIno, "d")
	e.wantDeleted(d.Ino)

	// A target with history goes to the deleted list of its directory,
	// under the name it had.
	hist := e.mkfile(d.Ino, "hist")
	hv := e.commit(hist.Ino, 3)
	e.rename(d.Ino, "plain", d.Ino, "hist", 0)
	e.wantNames(d.Ino, "hist")
	e.wantDeleted(d.Ino, "hist", hist.Ino)
	e.wantVersions(hist.Ino, hv)
	e.wantNlink(hist.Ino, 0)

	// A target with another name only loses this one.
	other := e.mkfile(versions.RootIno, "other")
	if _, err := e.c.Link(e.ctx, other.Ino, d.Ino, "o2"); err != nil {
		t.Fatal(err)
	}
	e.rename(d.Ino, "hist", d.Ino, "o2", 0)
	e.wantNlink(other.Ino, 1)
	e.lookup(versions.RootIno, "other")
	e.wantNames(d.Ino, "o2")

	// Directory over an empty directory.
	x := e.mkdir(versions.RootIno, "x")
	y := e.mkdir(d.Ino, "y")
	e.mkfile(x.Ino, "inside")
	e.wantNlink(versions.RootIno, 4)
	e.wantNlink(d.Ino, 3)
	e.rename(versions.RootIno, "x", d.Ino, "y", 0)
	e.gone(y.Ino)
	if got := e.lookup(d.Ino, "y"); got.Ino != x.Ino {
		t.Errorf("dir over dir: %+v", got)
	}
	e.lookup(x.Ino, "inside")
	e.wantNlink(versions.RootIno, 3)
	e.wantNlink(d.Ino, 3)

	// Directory over a directory holding only deleted entries: the target
	// keeps its history in the deleted list.
	z := e.mkdir(versions.RootIno, "z")
	w := e.mkdir(d.Ino, "w")
	wf := e.mkfile(w.Ino, "wf")
	e.commit(wf.Ino, 1)
	if err := e.c.Remove(e.ctx, w.Ino, "wf", false); err != nil {
		t.Fatal(err)
	}
	e.rename(versions.RootIno, "z", d.Ino, "w", 0)
	if got := e.lookup(d.Ino, "w"); got.Ino != z.Ino {
		t.Errorf("dir over dir with deleted entries: %+v", got)
	}
	e.wantDeleted(d.Ino, "hist", hist.Ino, "w", w.Ino)
	e.wantDeleted(w.Ino, "wf", wf.Ino)
	e.wantNlink(w.Ino, 0)
	e.wantNlink(d.Ino, 4)
	e.wantNlink(versions.RootIno, 3)
}

func testRenameDirs(t *testing.T, e *env) {
	a := e.mkdir(versions.RootIno, "a")
	b := e.mkdir(a.Ino, "b")
	c := e.mkdir(b.Ino, "c")
	f := e.mkfile(c.Ino, "f")
	other := e.mkdir(versions.RootIno, "other")

	wantErr(t, "dir into itself", e.c.Rename(e.ctx, versions.RootIno, "a", a.Ino, "a2", 0), versions.ErrInvalid)
	wantErr(t, "dir into child", e.c.Rename(e.ctx, versions.RootIno, "a", b.Ino, "a2", 0), versions.ErrInvalid)
	wantErr(t, "dir into grandchild", e.c.Rename(e.ctx, versions.RootIno, "a", c.Ino, "a2", 0), versions.ErrInvalid)
	wantErr(t, "dir over own child", e.c.Rename(e.ctx, a.Ino, "b", c.Ino, "x", 0), versions.ErrInvalid)
	// An ancestor as target is never empty.
	wantErr(t, "dir over ancestor", e.c.Rename(e.ctx, b.Ino, "c", versions.RootIno, "a", 0), versions.ErrNotEmpty)
	e.wantNames(versions.RootIno, "a", "other")

	// Moving a directory moves its subtree and fixes the link counts.
	e.rename(a.Ino, "b", other.Ino, "b", 0)
	e.wantNlink(a.Ino, 2)
	e.wantNlink(other.Ino, 3)
	e.wantNlink(versions.RootIno, 4)
	if got := e.lookup(e.lookup(e.lookup(other.Ino, "b").Ino, "c").Ino, "f"); got.Ino != f.Ino {
		t.Errorf("moved subtree: %+v", got)
	}
	// The moved directory's new place counts for the subtree check.
	wantErr(t, "dir into moved child", e.c.Rename(e.ctx, versions.RootIno, "other", c.Ino, "o", 0), versions.ErrInvalid)
	e.rename(versions.RootIno, "a", c.Ino, "a", 0)
	e.wantNlink(versions.RootIno, 3)
	e.wantNlink(c.Ino, 3)
	// Renaming within one directory leaves its count alone.
	e.rename(c.Ino, "a", c.Ino, "a2", 0)
	e.wantNlink(c.Ino, 3)
	e.wantNlink(a.Ino, 2)
}

func testRenameFlags(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	g := e.mkfile(versions.RootIno, "g")
	wantErr(t, "noreplace over existing", e.c.Rename(e.ctx, versions.RootIno, "f", versions.RootIno, "g", versions.RenameNoReplace), versions.ErrExist)
	e.wantNames(versions.RootIno, "f", "g")
	e.lookup(versions.RootIno, "g")
	e.rename(versions.RootIno, "f", versions.RootIno, "h", versions.RenameNoReplace)
	if got := e.lookup(versions.RootIno, "h"); got.Ino != f.Ino {
		t.Errorf("noreplace: %+v", got)
	}
	wantErr(t, "both flags", e.c.Rename(e.ctx, versions.RootIno, "h", versions.RootIno, "g", versions.RenameNoReplace|versions.RenameExchange), versions.ErrInvalid)
	e.wantNames(versions.RootIno, "g", "h")
	e.wantNlink(g.Ino, 1)
}

func testRenameExchange(t *testing.T, e *env) {
	a := e.mkdir(versions.RootIno, "a")
	b := e.mkdir(versions.RootIno, "b")
	f := e.mkfile(a.Ino, "f")
	sub := e.mkdir(b.Ino, "sub")
	e.mkfile(sub.Ino, "inside")

	e.age(a.Ino, b.Ino)
	e.rename(a.Ino, "f", b.Ino, "sub", versions.RenameExchange)
	e.touched("exchange", a.Ino, b.Ino)
	if got := e.lookup(a.Ino, "f"); got.Ino != sub.Ino {
		t.Errorf("exchange: a/f is %+v", got)
	}
	if got := e.lookup(b.Ino, "sub"); got.Ino != f.Ino {
		t.Errorf("exchange: b/sub is %+v", got)
	}
	e.lookup(sub.Ino, "inside")
	e.wantNlink(a.Ino, 3)
	e.wantNlink(b.Ino, 2)
	e.wantNlink(f.Ino, 1)
	e.wantDeleted(a.Ino)
	e.wantDeleted(b.Ino)

	// Within one directory.
	e.mkfile(a.Ino, "g")
	g := e.lookup(a.Ino, "g")
	e.rename(a.Ino, "g", a.Ino, "f", versions.RenameExchange)
	if e.lookup(a.Ino, "f").Ino != g.Ino || e.lookup(a.Ino, "g").Ino != sub.Ino {
		t.Errorf("exchange within a dir failed")
	}
	e.wantNlink(a.Ino, 3)

	wantErr(t, "exchange with missing", e.c.Rename(e.ctx, a.Ino, "f", a.Ino, "nope", versions.RenameExchange), versions.ErrNotExist)
	// a/g (a dir) and its own child: either side would end below itself.
	e.mkfile(sub.Ino, "deep")
	wantErr(t, "exchange with own child", e.c.Rename(e.ctx, a.Ino, "g", sub.Ino, "deep", versions.RenameExchange), versions.ErrInvalid)
	wantErr(t, "exchange with parent", e.c.Rename(e.ctx, sub.Ino, "deep", a.Ino, "g", versions.RenameExchange), versions.ErrInvalid)
	e.lookup(sub.Ino, "deep")
	e.lookup(a.Ino, "g")
}

func testRenameErrors(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	f := e.mkfile(versions.RootIno, "f")
	e.mkfile(d.Ino, "inside")
	e.mkdir(versions.RootIno, "empty")
	root := versions.RootIno
	for _, c := range []struct {
		what      string
		parent    versions.Ino
		name      string
		newParent versions.Ino
		newName   string
		flags     uint32
		want      error
	}{
		{"missing source", root, "nope", root, "x", 0, versions.ErrNotExist},
		{"file over dir", root, "f", root, "empty", 0, versions.ErrIsDir},
		{"dir over file", root, "empty", root, "f", 0, versions.ErrNotDir},
		{"dir over non-empty dir", root, "empty", root, "d", 0, versions.ErrNotEmpty},
		{"into file", root, "empty", f.Ino, "x", 0, versions.ErrNotDir},
		{"from file", f.Ino, "x", root, "x", 0, versions.ErrNotDir},
		{"into missing", root, "f", 1 << 40, "x", 0, versions.ErrNotExist},
		{"from missing", 1 << 40, "x", root, "x", 0, versions.ErrNotExist},
		{"bad new name", root, "f", root, "a/b", 0, versions.ErrInvalid},
		{"dot new name", root, "f", root, "..", 0, versions.ErrInvalid},
		{"bad name", root, "", root, "x", 0, versions.ErrInvalid},
		{"long new name", root, "f", root, longName + "x", 0, versions.ErrNameLimit},
		{"unknown flag", root, "f", root, "x", 1 << 7, versions.ErrInvalid},
	} {
		wantErr(t, c.what, e.c.Rename(e.ctx, c.parent, c.name, c.newParent, c.newName, c.flags), c.want)
	}
	e.wantNames(root, "d", "empty", "f")
	e.wantNames(d.Ino, "inside")
	e.wantNlink(root, 4)
	e.wantNlink(f.Ino, 1)
}
