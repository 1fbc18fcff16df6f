package versionstest

import (
	"strings"
	"testing"
	"time"

	"github.com/casfs/casfs/versions"
)

func testRoot(t *testing.T, e *env) {
	r := e.attr(versions.RootIno)
	if !r.IsDir() || r.Ino != versions.RootIno || r.Nlink != 2 || r.Mode&versions.ModePerm == 0 {
		t.Errorf("root: %+v", r)
	}
	if r.Mtime.IsZero() || r.Ctime.IsZero() {
		t.Errorf("root has zero times: %+v", r)
	}
	e.wantNames(versions.RootIno)
	e.wantDeleted(versions.RootIno)
}

func testCreate(t *testing.T, e *env) {
	e.age(versions.RootIno)
	mt := time.Date(2020, 5, 6, 7, 8, 9, 10, time.UTC)
	f, err := e.c.Create(e.ctx, versions.RootIno, "f", versions.Attr{
		Mode: versions.ModeRegular | 0o4640, Uid: 1000, Gid: 100, Mtime: mt,
		// Ignored for a new file:
		Ino: 99, Nlink: 7, Size: 12, Head: versions.VersionID{Nanos: 5}, Recipe: recipe(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.Ino == 0 || f.Ino == versions.RootIno || f.Mode != versions.ModeRegular|0o4640 ||
		f.Uid != 1000 || f.Gid != 100 || f.Nlink != 1 || f.Size != 0 ||
		!f.Head.IsZero() || !f.Recipe.IsZero() || !f.IsRegular() {
		t.Errorf("file: %+v", f)
	}
	if !f.Mtime.Equal(mt) || f.Atime.IsZero() || f.Ctime.IsZero() {
		t.Errorf("file times: %+v", f)
	}
	e.touched("create", versions.RootIno)
	e.wantNlink(versions.RootIno, 2)

	d := e.mkdir(versions.RootIno, "d")
	if !d.IsDir() || d.Nlink != 2 || d.Mode != versions.ModeDir|0o755 {
		t.Errorf("dir: %+v", d)
	}
	e.wantNlink(versions.RootIno, 3)
	sub := e.mkdir(d.Ino, "sub")
	e.wantNlink(d.Ino, 3)
	e.wantNlink(versions.RootIno, 3)

	l := e.create(d.Ino, "l", versions.ModeSymlink|0o777, "../f")
	if !l.IsSymlink() || l.Target != "../f" || l.Size != 4 || l.Nlink != 1 {
		t.Errorf("symlink: %+v", l)
	}
	long := e.mkfile(d.Ino, longName)

	inos := map[versions.Ino]bool{versions.RootIno: true}
	for _, a := range []versions.Attr{f, d, sub, l, long} {
		if inos[a.Ino] {
			t.Errorf("inode %d handed out twice", a.Ino)
		}
		inos[a.Ino] = true
		got := e.attr(a.Ino)
		if got.Ino != a.Ino || got.Mode != a.Mode || got.Target != a.Target || got.Size != a.Size ||
			!got.Atime.Equal(a.Atime) || got.Uid != a.Uid || got.Gid != a.Gid {
			t.Errorf("getattr %d: got %+v, want %+v", a.Ino, got, a)
		}
		// d changed since (an entry was added); the others did not.
		if a.Ino != d.Ino && (!got.Mtime.Equal(a.Mtime) || !got.Ctime.Equal(a.Ctime) || got.Nlink != a.Nlink) {
			t.Errorf("getattr %d: got %+v, want %+v", a.Ino, got, a)
		}
	}
	if got := e.lookup(d.Ino, "l"); got.Ino != l.Ino || got.Target != "../f" {
		t.Errorf("lookup l: %+v", got)
	}
	if got := e.lookup(versions.RootIno, "f"); got.Ino != f.Ino {
		t.Errorf("lookup f: %+v", got)
	}
	e.wantNames(versions.RootIno, "d", "f")
	e.wantNames(d.Ino, "l", "sub", longName)
	e.wantNames(sub.Ino)

	ents, err := e.c.ReadDir(e.ctx, d.Ino)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]uint32{"l": versions.ModeSymlink, "sub": versions.ModeDir, longName: versions.ModeRegular}
	ids := map[string]versions.Ino{"l": l.Ino, "sub": sub.Ino, longName: long.Ino}
	for _, ent := range ents {
		if ent.Mode&versions.ModeType != types[ent.Name] || ent.Ino != ids[ent.Name] {
			t.Errorf("readdir entry %+v", ent)
		}
	}
}

func testCreateErrors(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	d := e.mkdir(versions.RootIno, "d")
	_, err := e.c.Create(e.ctx, versions.RootIno, "f", versions.Attr{Mode: versions.ModeRegular | 0o644})
	wantErr(t, "create over file", err, versions.ErrExist)
	_, err = e.c.Create(e.ctx, versions.RootIno, "d", versions.Attr{Mode: versions.ModeRegular | 0o644})
	wantErr(t, "create over dir", err, versions.ErrExist)
	_, err = e.c.Create(e.ctx, versions.RootIno, "d", versions.Attr{Mode: versions.ModeDir | 0o755})
	wantErr(t, "mkdir over dir", err, versions.ErrExist)
	_, err = e.c.Create(e.ctx, f.Ino, "x", versions.Attr{Mode: versions.ModeRegular | 0o644})
	wantErr(t, "create in file", err, versions.ErrNotDir)
	_, err = e.c.Create(e.ctx, 1<<40, "x", versions.Attr{Mode: versions.ModeRegular | 0o644})
	wantErr(t, "create in missing dir", err, versions.ErrNotExist)
	for _, name := range []string{"", ".", "..", "a/b", "/", "a\x00b"} {
		_, err = e.c.Create(e.ctx, d.Ino, name, versions.Attr{Mode: versions.ModeRegular | 0o644})
		wantErr(t, "create "+strings.ReplaceAll(name, "\x00", `\0`), err, versions.ErrInvalid)
	}
	_, err = e.c.Create(e.ctx, d.Ino, longName+"x", versions.Attr{Mode: versions.ModeRegular | 0o644})
	wantErr(t, "create 256-byte name", err, versions.ErrNameLimit)
	e.wantNames(d.Ino)
	e.wantNames(versions.RootIno, "d", "f")

	// A directory that was removed takes no new entries.
	gone := e.mkdir(d.Ino, "gone")
	if err := e.c.Remove(e.ctx, d.Ino, "gone", true); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Create(e.ctx, gone.Ino, "x", versions.Attr{Mode: versions.ModeRegular | 0o644})
	wantErr(t, "create in removed dir", err, versions.ErrNotExist)
	e.wantNlink(versions.RootIno, 3)
	e.wantNlink(d.Ino, 2)
}

func testInodesNotReused(t *testing.T, e *env) {
	seen := map[versions.Ino]bool{versions.RootIno: true}
	for i := 0; i < 20; i++ {
		var a versions.Attr
		if i%2 == 0 {
			a = e.mkfile(versions.RootIno, "x")
		} else {
			a = e.mkdir(versions.RootIno, "x")
		}
		if seen[a.Ino] {
			t.Fatalf("inode %d reused", a.Ino)
		}
		seen[a.Ino] = true
		if err := e.c.Remove(e.ctx, versions.RootIno, "x", i%2 == 1); err != nil {
			t.Fatal(err)
		}
		e.gone(a.Ino)
	}
}

func testLookupErrors(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	_, err := e.c.Lookup(e.ctx, versions.RootIno, "nope")
	wantErr(t, "lookup missing", err, versions.ErrNotExist)
	_, err = e.c.Lookup(e.ctx, f.Ino, "x")
	wantErr(t, "lookup in file", err, versions.ErrNotDir)
	_, err = e.c.Lookup(e.ctx, 1<<40, "x")
	wantErr(t, "lookup in missing dir", err, versions.ErrNotExist)
	_, err = e.c.Lookup(e.ctx, versions.RootIno, longName+"x")
	wantErr(t, "lookup long name", err, versions.ErrNameLimit)
	_, err = e.c.GetAttr(e.ctx, 1<<40)
	wantErr(t, "getattr missing", err, versions.ErrNotExist)
	_, err = e.c.ReadDir(e.ctx, f.Ino)
	wantErr(t, "readdir file", err, versions.ErrNotDir)
	_, err = e.c.ReadDir(e.ctx, 1<<40)
	wantErr(t, "readdir missing", err, versions.ErrNotExist)
}

func testSetAttr(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	mode, uid, gid := uint32(versions.ModeDir|0o1750), uint32(7), uint32(8)
	at, mt := time.Date(2011, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2012, 1, 1, 0, 0, 0, 2, time.UTC)
	got, err := e.c.SetAttr(e.ctx, f.Ino, versions.SetAttr{Mode: &mode, Uid: &uid, Gid: &gid, Atime: &at, Mtime: &mt})
	if err != nil {
		t.Fatal(err)
	}
	want := f
	want.Mode, want.Uid, want.Gid, want.Atime, want.Mtime = versions.ModeRegular|0o1750, 7, 8, at, mt
	check := func(got versions.Attr) {
		t.Helper()
		if got.Mode != want.Mode || got.Uid != want.Uid || got.Gid != want.Gid ||
			!got.Atime.Equal(want.Atime) || !got.Mtime.Equal(want.Mtime) || got.Nlink != 1 || got.Size != 0 {
			t.Errorf("setattr: got %+v, want %+v", got, want)
		}
		if got.Ctime.Before(f.Ctime) {
			t.Errorf("setattr: ctime went back from %v to %v", f.Ctime, got.Ctime)
		}
	}
	check(got)
	check(e.attr(f.Ino))
	// Nil fields are left alone.
	uid2 := uint32(9)
	want.Uid = 9
	got, err = e.c.SetAttr(e.ctx, f.Ino, versions.SetAttr{Uid: &uid2})
	if err != nil {
		t.Fatal(err)
	}
	check(got)
	_, err = e.c.SetAttr(e.ctx, 1<<40, versions.SetAttr{Uid: &uid})
	wantErr(t, "setattr missing", err, versions.ErrNotExist)
}

func testLink(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	f := e.mkfile(versions.RootIno, "f")
	e.age(versions.RootIno, d.Ino)
	a, err := e.c.Link(e.ctx, f.Ino, d.Ino, "g")
	if err != nil {
		t.Fatal(err)
	}
	if a.Ino != f.Ino || a.Nlink != 2 {
		t.Errorf("link: %+v", a)
	}
	e.touched("link", d.Ino)
	if g := e.lookup(d.Ino, "g"); g.Ino != f.Ino || g.Nlink != 2 {
		t.Errorf("lookup link: %+v", g)
	}
	e.wantNames(d.Ino, "g")
	e.wantNlink(d.Ino, 2)

	_, err = e.c.Link(e.ctx, d.Ino, versions.RootIno, "d2")
	wantErr(t, "link dir", err, versions.ErrPermission)
	_, err = e.c.Link(e.ctx, f.Ino, versions.RootIno, "d")
	wantErr(t, "link over existing", err, versions.ErrExist)
	_, err = e.c.Link(e.ctx, f.Ino, f.Ino, "x")
	wantErr(t, "link into file", err, versions.ErrNotDir)
	_, err = e.c.Link(e.ctx, f.Ino, 1<<40, "x")
	wantErr(t, "link into missing", err, versions.ErrNotExist)
	_, err = e.c.Link(e.ctx, 1<<40, d.Ino, "x")
	wantErr(t, "link missing inode", err, versions.ErrNotExist)
	_, err = e.c.Link(e.ctx, f.Ino, d.Ino, "a/b")
	wantErr(t, "link bad name", err, versions.ErrInvalid)
	e.wantNlink(f.Ino, 2)

	// Names go one by one; the file goes with the last (it has no history).
	if err := e.c.Remove(e.ctx, versions.RootIno, "f", false); err != nil {
		t.Fatal(err)
	}
	e.wantNlink(f.Ino, 1)
	e.lookup(d.Ino, "g")
	if err := e.c.Remove(e.ctx, d.Ino, "g", false); err != nil {
		t.Fatal(err)
	}
	e.gone(f.Ino)

	// A linked file with history lands in the deleted list of the
	// directory its last name was in, and cannot be linked again.
	h := e.mkfile(versions.RootIno, "h")
	e.commit(h.Ino, 1)
	if _, err := e.c.Link(e.ctx, h.Ino, d.Ino, "h2"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Remove(e.ctx, d.Ino, "h2", false); err != nil {
		t.Fatal(err)
	}
	e.wantDeleted(d.Ino)
	if err := e.c.Remove(e.ctx, versions.RootIno, "h", false); err != nil {
		t.Fatal(err)
	}
	e.wantDeleted(versions.RootIno, "h", h.Ino)
	e.wantDeleted(d.Ino)
	_, err = e.c.Link(e.ctx, h.Ino, d.Ino, "back")
	wantErr(t, "link deleted inode", err, versions.ErrNotExist)

	// Symlinks can be linked too.
	l := e.create(versions.RootIno, "l", versions.ModeSymlink|0o777, "t")
	if a, err := e.c.Link(e.ctx, l.Ino, d.Ino, "l2"); err != nil || a.Nlink != 2 {
		t.Errorf("link symlink: %+v, %v", a, err)
	}
}

func testRemove(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	f := e.mkfile(d.Ino, "f")
	l := e.create(d.Ino, "l", versions.ModeSymlink|0o777, "f")
	sub := e.mkdir(d.Ino, "sub")
	e.wantNlink(d.Ino, 3)

	wantErr(t, "unlink dir", e.c.Remove(e.ctx, d.Ino, "sub", false), versions.ErrIsDir)
	wantErr(t, "rmdir file", e.c.Remove(e.ctx, d.Ino, "f", true), versions.ErrNotDir)
	wantErr(t, "rmdir non-empty", e.c.Remove(e.ctx, versions.RootIno, "d", true), versions.ErrNotEmpty)
	wantErr(t, "remove missing", e.c.Remove(e.ctx, d.Ino, "nope", false), versions.ErrNotExist)
	wantErr(t, "remove in file", e.c.Remove(e.ctx, f.Ino, "x", false), versions.ErrNotDir)
	wantErr(t, "remove in missing dir", e.c.Remove(e.ctx, 1<<40, "x", false), versions.ErrNotExist)
	wantErr(t, "remove bad name", e.c.Remove(e.ctx, d.Ino, "..", true), versions.ErrInvalid)

	e.age(d.Ino)
	if err := e.c.Remove(e.ctx, d.Ino, "sub", true); err != nil {
		t.Fatal(err)
	}
	e.touched("rmdir", d.Ino)
	e.wantNlink(d.Ino, 2)
	e.gone(sub.Ino)
	e.age(d.Ino)
	if err := e.c.Remove(e.ctx, d.Ino, "f", false); err != nil {
		t.Fatal(err)
	}
	e.touched("unlink", d.Ino)
	e.gone(f.Ino)
	if err := e.c.Remove(e.ctx, d.Ino, "l", false); err != nil {
		t.Fatal(err)
	}
	e.gone(l.Ino)
	e.wantNames(d.Ino)
	e.wantDeleted(d.Ino)
	e.noEntry(d.Ino, "f")
	if err := e.c.Remove(e.ctx, versions.RootIno, "d", true); err != nil {
		t.Fatal(err)
	}
	e.gone(d.Ino)
	e.wantNlink(versions.RootIno, 2)
	e.wantNames(versions.RootIno)
	e.wantDeleted(versions.RootIno)
}

func testRemoveKeepsHistory(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	f := e.mkfile(d.Ino, "f")
	v1, v2 := e.commit(f.Ino, 1), e.commit(f.Ino, 2)
	if err := e.c.Remove(e.ctx, d.Ino, "f", false); err != nil {
		t.Fatal(err)
	}
	e.noEntry(d.Ino, "f")
	e.wantNames(d.Ino)
	a := e.attr(f.Ino)
	if a.Nlink != 0 || a.Head != v2.ID || a.Size != 2 {
		t.Errorf("deleted file: %+v", a)
	}
	e.wantVersions(f.Ino, v1, v2)
	e.wantDeleted(d.Ino, "f", f.Ino)
	if got := e.deleted(d.Ino)[0]; got.Mode&versions.ModeType != versions.ModeRegular {
		t.Errorf("deleted entry mode %#o", got.Mode)
	}
	// The name is free again.
	f2 := e.mkfile(d.Ino, "f")
	if f2.Ino == f.Ino {
		t.Errorf("new file reuses inode %d", f.Ino)
	}
	// An empty directory with only deleted entries is removable.
	if err := e.c.Remove(e.ctx, d.Ino, "f", false); err != nil {
		t.Fatal(err)
	}
	e.gone(f2.Ino)
	e.wantDeleted(d.Ino, "f", f.Ino)
}

func testRmdirWithDeleted(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	sub := e.mkdir(d.Ino, "sub")
	f := e.mkfile(sub.Ino, "f")
	v := e.commit(f.Ino, 1)
	if err := e.c.Remove(e.ctx, sub.Ino, "f", false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "rmdir with live entry", e.c.Remove(e.ctx, versions.RootIno, "d", true), versions.ErrNotEmpty)
	if err := e.c.Remove(e.ctx, d.Ino, "sub", true); err != nil {
		t.Fatalf("rmdir of a directory holding only deleted entries: %v", err)
	}
	e.noEntry(d.Ino, "sub")
	e.wantNames(d.Ino)
	e.wantNlink(d.Ino, 2)
	if a := e.attr(sub.Ino); a.Nlink != 0 || !a.IsDir() {
		t.Errorf("removed dir with history: %+v", a)
	}
	e.wantDeleted(d.Ino, "sub", sub.Ino)
	if got := e.deleted(d.Ino)[0]; got.Mode&versions.ModeType != versions.ModeDir {
		t.Errorf("deleted dir entry mode %#o", got.Mode)
	}
	e.wantDeleted(sub.Ino, "f", f.Ino)
	e.wantVersions(f.Ino, v)

	// And so on up: d now only holds deleted entries.
	if err := e.c.Remove(e.ctx, versions.RootIno, "d", true); err != nil {
		t.Fatal(err)
	}
	e.wantDeleted(versions.RootIno, "d", d.Ino)
	e.wantNlink(versions.RootIno, 2)

	// Once the last history below goes, the removed directories go too.
	if err := e.c.RemoveVersion(e.ctx, f.Ino, v.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(f.Ino)
	e.gone(sub.Ino)
	e.gone(d.Ino)
	e.wantDeleted(versions.RootIno)
}
