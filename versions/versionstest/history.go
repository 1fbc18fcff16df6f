package versionstest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/casfs/casfs/versions"
)

func testCommit(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	f := e.mkfile(d.Ino, "f")
	mt := time.Date(2019, 1, 2, 3, 4, 5, 6, time.UTC)
	v1, err := e.c.Commit(e.ctx, f.Ino, versions.Version{
		ID: versions.VersionID{Nanos: 1}, Recipe: recipe(1), Size: 100, Mtime: mt,
	})
	if err != nil {
		t.Fatal(err)
	}
	if v1.ID.IsZero() || v1.ID == (versions.VersionID{Nanos: 1}) || v1.Recipe != recipe(1) || v1.Size != 100 || !v1.Mtime.Equal(mt) {
		t.Errorf("commit returned %+v", v1)
	}
	a := e.attr(f.Ino)
	if a.Head != v1.ID || a.Recipe != recipe(1) || a.Size != 100 || !a.Mtime.Equal(mt) || a.Ctime.Before(f.Ctime) {
		t.Errorf("after commit: %+v", a)
	}
	if got := e.lookup(d.Ino, "f"); got.Head != v1.ID || got.Size != 100 {
		t.Errorf("lookup after commit: %+v", got)
	}

	// Zero mtime: the commit time.
	v2, err := e.c.Commit(e.ctx, f.Ino, versions.Version{Recipe: recipe(2), Size: 7})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Mtime.IsZero() || v2.ID.Compare(v1.ID) <= 0 {
		t.Errorf("second commit: %+v after %+v", v2, v1)
	}
	a = e.attr(f.Ino)
	if a.Head != v2.ID || a.Recipe != recipe(2) || a.Size != 7 || !a.Mtime.Equal(v2.Mtime) {
		t.Errorf("after second commit: %+v", a)
	}
	e.wantVersions(f.Ino, v1, v2)

	_, err = e.c.Commit(e.ctx, d.Ino, versions.Version{Recipe: recipe(1)})
	wantErr(t, "commit dir", err, versions.ErrInvalid)
	l := e.create(d.Ino, "l", versions.ModeSymlink|0o777, "f")
	_, err = e.c.Commit(e.ctx, l.Ino, versions.Version{Recipe: recipe(1)})
	wantErr(t, "commit symlink", err, versions.ErrInvalid)
	_, err = e.c.Commit(e.ctx, 1<<40, versions.Version{Recipe: recipe(1)})
	wantErr(t, "commit missing", err, versions.ErrNotExist)
	_, err = e.c.Commit(e.ctx, f.Ino, versions.Version{Size: 1})
	wantErr(t, "commit without recipe", err, versions.ErrInvalid)
	e.wantVersions(f.Ino, v1, v2)
	_, err = e.c.Versions(e.ctx, 1<<40)
	wantErr(t, "versions of missing", err, versions.ErrNotExist)
	if vs := e.versions(e.mkfile(d.Ino, "new").Ino); len(vs) != 0 {
		t.Errorf("new file has versions %+v", vs)
	}
}

// testCommitOrder checks that IDs increase across the whole catalog, in
// commit order, however fast commits come (run with a frozen clock too).
func testCommitOrder(t *testing.T, e *env) {
	var files []versions.Ino
	for _, n := range []string{"a", "b", "c"} {
		files = append(files, e.mkfile(versions.RootIno, n).Ino)
	}
	var last versions.VersionID
	all := make([][]versions.Version, len(files))
	for i := 0; i < 30; i++ {
		k := (i * 7) % len(files)
		v := e.commit(files[k], i+1)
		if v.ID.Compare(last) <= 0 {
			t.Fatalf("commit %d: id %v not after %v", i, v.ID, last)
		}
		if v.ID.String() <= last.String() && !last.IsZero() {
			t.Fatalf("commit %d: id text %s does not sort after %s", i, v.ID, last)
		}
		last = v.ID
		all[k] = append(all[k], v)
	}
	for k, ino := range files {
		e.wantVersions(ino, all[k]...)
		if a := e.attr(ino); a.Head != all[k][len(all[k])-1].ID {
			t.Errorf("head of %d: %v", ino, a.Head)
		}
	}
	// A retried commit of the same content is another version.
	v1 := e.commit(files[0], 500)
	v2 := e.commit(files[0], 500)
	if v1.ID == v2.ID {
		t.Errorf("retried commit reused id %v", v1.ID)
	}
}

func testCommitDeleted(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	v1 := e.commit(f.Ino, 1)
	if err := e.c.Remove(e.ctx, versions.RootIno, "f", false); err != nil {
		t.Fatal(err)
	}
	// Written after unlink while still open: history grows in the deleted
	// list.
	v2 := e.commit(f.Ino, 2)
	e.wantVersions(f.Ino, v1, v2)
	a := e.attr(f.Ino)
	if a.Nlink != 0 || a.Head != v2.ID || a.Size != 2 {
		t.Errorf("deleted file after commit: %+v", a)
	}
	e.wantDeleted(versions.RootIno, "f", f.Ino)
	e.wantNames(versions.RootIno)
}

func testRemoveVersion(t *testing.T, e *env) {
	f := e.mkfile(versions.RootIno, "f")
	v1, v2, v3 := e.commit(f.Ino, 1), e.commit(f.Ino, 2), e.commit(f.Ino, 3)

	// Not HEAD: HEAD stays.
	if err := e.c.RemoveVersion(e.ctx, f.Ino, v2.ID); err != nil {
		t.Fatal(err)
	}
	e.wantVersions(f.Ino, v1, v3)
	if a := e.attr(f.Ino); a.Head != v3.ID || a.Recipe != v3.Recipe || a.Size != 3 {
		t.Errorf("after removing a middle version: %+v", a)
	}
	wantErr(t, "remove removed version", e.c.RemoveVersion(e.ctx, f.Ino, v2.ID), versions.ErrNotExist)
	wantErr(t, "remove unknown version", e.c.RemoveVersion(e.ctx, f.Ino, versions.VersionID{Nanos: 12345}), versions.ErrNotExist)
	wantErr(t, "remove version of missing inode", e.c.RemoveVersion(e.ctx, 1<<40, v1.ID), versions.ErrNotExist)
	g := e.mkfile(versions.RootIno, "g")
	wantErr(t, "remove another file's version", e.c.RemoveVersion(e.ctx, g.Ino, v1.ID), versions.ErrNotExist)

	// HEAD: the one before takes over.
	if err := e.c.RemoveVersion(e.ctx, f.Ino, v3.ID); err != nil {
		t.Fatal(err)
	}
	e.wantVersions(f.Ino, v1)
	if a := e.attr(f.Ino); a.Head != v1.ID || a.Recipe != v1.Recipe || a.Size != 1 {
		t.Errorf("after removing HEAD: %+v", a)
	}
	// The last one: an empty, live file.
	if err := e.c.RemoveVersion(e.ctx, f.Ino, v1.ID); err != nil {
		t.Fatal(err)
	}
	e.wantVersions(f.Ino)
	a := e.attr(f.Ino)
	if !a.Head.IsZero() || !a.Recipe.IsZero() || a.Size != 0 || a.Nlink != 1 {
		t.Errorf("after removing every version: %+v", a)
	}
	e.lookup(versions.RootIno, "f")
	// And it can be written again, with a newer ID than any before.
	if v4 := e.commit(f.Ino, 4); v4.ID.Compare(v3.ID) <= 0 {
		t.Errorf("commit after removals: %v not after %v", v4.ID, v3.ID)
	}
}

func testRemoveVersionDeleted(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	f := e.mkfile(d.Ino, "f")
	v1, v2 := e.commit(f.Ino, 1), e.commit(f.Ino, 2)
	if err := e.c.Remove(e.ctx, d.Ino, "f", false); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemoveVersion(e.ctx, f.Ino, v2.ID); err != nil {
		t.Fatal(err)
	}
	if a := e.attr(f.Ino); a.Head != v1.ID || a.Nlink != 0 {
		t.Errorf("deleted file after removing HEAD: %+v", a)
	}
	e.wantDeleted(d.Ino, "f", f.Ino)
	if err := e.c.RemoveVersion(e.ctx, f.Ino, v1.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(f.Ino)
	e.wantDeleted(d.Ino)
	_, err := e.c.Versions(e.ctx, f.Ino)
	wantErr(t, "versions of dropped inode", err, versions.ErrNotExist)
	// d is live: it stays.
	e.lookup(versions.RootIno, "d")
}

func testDeletedList(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	var want []any
	// The same name deleted, recreated and deleted again: listed each time,
	// oldest first, and mixed with others in deletion order.
	for i, name := range []string{"x", "y", "x", "z", "x"} {
		f := e.mkfile(d.Ino, name)
		e.commit(f.Ino, i+1)
		if err := e.c.Remove(e.ctx, d.Ino, name, false); err != nil {
			t.Fatal(err)
		}
		want = append(want, name, f.Ino)
	}
	e.wantDeleted(d.Ino, want...)
	ds := e.deleted(d.Ino)
	for i := 1; i < len(ds); i++ {
		if ds[i].Deleted.Before(ds[i-1].Deleted) {
			t.Errorf("deleted list out of time order: %+v", ds)
		}
	}
	for _, x := range ds {
		if x.Mode&versions.ModeType != versions.ModeRegular {
			t.Errorf("deleted entry %+v: mode", x)
		}
	}
	e.wantNames(d.Ino)

	// Symlinks and files without history never reach the list.
	e.create(d.Ino, "l", versions.ModeSymlink|0o777, "t")
	e.mkfile(d.Ino, "empty")
	for _, n := range []string{"l", "empty"} {
		if err := e.c.Remove(e.ctx, d.Ino, n, false); err != nil {
			t.Fatal(err)
		}
	}
	e.wantDeleted(d.Ino, want...)

	f := e.mkfile(d.Ino, "f")
	_, err := e.c.Deleted(e.ctx, f.Ino)
	wantErr(t, "deleted of a file", err, versions.ErrNotDir)
	_, err = e.c.Deleted(e.ctx, 1<<40)
	wantErr(t, "deleted of missing", err, versions.ErrNotExist)
	e.wantDeleted(versions.RootIno)
}

func testPurge(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	keep := e.mkfile(d.Ino, "keep")
	kv := e.commit(keep.Ino, 9)

	// A live file with history and xattrs, and two names.
	f := e.mkfile(d.Ino, "f")
	e.commit(f.Ino, 1)
	if err := e.c.SetXattr(e.ctx, f.Ino, "user.a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Link(e.ctx, f.Ino, versions.RootIno, "f2"); err != nil {
		t.Fatal(err)
	}
	e.age(d.Ino)
	if err := e.c.Purge(e.ctx, f.Ino); err != nil {
		t.Fatal(err)
	}
	e.touched("purge", d.Ino)
	e.gone(f.Ino)
	e.wantNames(d.Ino, "keep")
	e.wantNames(versions.RootIno, "d")
	e.wantDeleted(d.Ino)
	_, err := e.c.Versions(e.ctx, f.Ino)
	wantErr(t, "versions of purged", err, versions.ErrNotExist)
	_, err = e.c.ListXattr(e.ctx, f.Ino)
	wantErr(t, "xattrs of purged", err, versions.ErrNotExist)

	// A deleted file.
	g := e.mkfile(d.Ino, "g")
	e.commit(g.Ino, 2)
	if err := e.c.Remove(e.ctx, d.Ino, "g", false); err != nil {
		t.Fatal(err)
	}
	e.wantDeleted(d.Ino, "g", g.Ino)
	if err := e.c.Purge(e.ctx, g.Ino); err != nil {
		t.Fatal(err)
	}
	e.gone(g.Ino)
	e.wantDeleted(d.Ino)

	// A symlink.
	l := e.create(d.Ino, "l", versions.ModeSymlink|0o777, "keep")
	if err := e.c.Purge(e.ctx, l.Ino); err != nil {
		t.Fatal(err)
	}
	e.gone(l.Ino)

	wantErr(t, "purge root", e.c.Purge(e.ctx, versions.RootIno), versions.ErrInvalid)
	wantErr(t, "purge missing", e.c.Purge(e.ctx, 1<<40), versions.ErrNotExist)
	wantErr(t, "purge purged", e.c.Purge(e.ctx, f.Ino), versions.ErrNotExist)
	e.wantVersions(keep.Ino, kv)
	e.wantNames(d.Ino, "keep")
	e.wantNlink(d.Ino, 2)
	e.wantNlink(versions.RootIno, 3)
}

func testPurgeDir(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	sub := e.mkdir(d.Ino, "sub")
	a := e.mkfile(sub.Ino, "a")
	e.commit(a.Ino, 1)
	b := e.mkfile(sub.Ino, "b")
	e.commit(b.Ino, 2)
	if err := e.c.Remove(e.ctx, sub.Ino, "b", false); err != nil {
		t.Fatal(err)
	}
	// A removed directory with history inside d.
	old := e.mkdir(d.Ino, "old")
	c := e.mkfile(old.Ino, "c")
	e.commit(c.Ino, 3)
	if err := e.c.Remove(e.ctx, old.Ino, "c", false); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Remove(e.ctx, d.Ino, "old", true); err != nil {
		t.Fatal(err)
	}
	// A file in d also named outside it.
	shared := e.mkfile(d.Ino, "shared")
	if _, err := e.c.Link(e.ctx, shared.Ino, versions.RootIno, "shared"); err != nil {
		t.Fatal(err)
	}
	outside := e.mkfile(versions.RootIno, "outside")
	ov := e.commit(outside.Ino, 4)
	e.wantNlink(versions.RootIno, 3)

	if err := e.c.Purge(e.ctx, d.Ino); err != nil {
		t.Fatal(err)
	}
	for _, ino := range []versions.Ino{d.Ino, sub.Ino, a.Ino, b.Ino, old.Ino, c.Ino, shared.Ino} {
		e.gone(ino)
	}
	e.wantNames(versions.RootIno, "outside")
	e.wantNlink(versions.RootIno, 2)
	e.wantDeleted(versions.RootIno)
	seen := map[versions.Ino]int{}
	if err := e.c.Walk(e.ctx, func(ino versions.Ino, v versions.Version) error {
		seen[ino]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[outside.Ino] != 1 {
		t.Errorf("walk after purge: %v", seen)
	}
	e.wantVersions(outside.Ino, ov)

	// Purging a deleted directory drops it from its parent's list.
	x := e.mkdir(versions.RootIno, "x")
	y := e.mkdir(x.Ino, "y")
	yf := e.mkfile(y.Ino, "f")
	e.commit(yf.Ino, 5)
	if err := e.c.Remove(e.ctx, y.Ino, "f", false); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Remove(e.ctx, x.Ino, "y", true); err != nil {
		t.Fatal(err)
	}
	e.wantDeleted(x.Ino, "y", y.Ino)
	if err := e.c.Purge(e.ctx, y.Ino); err != nil {
		t.Fatal(err)
	}
	e.gone(y.Ino)
	e.gone(yf.Ino)
	e.wantDeleted(x.Ino)
	e.wantNlink(x.Ino, 2)

	// Purging the last history inside a removed directory drops the
	// directory too; a live one stays.
	y2 := e.mkdir(x.Ino, "y2")
	f2 := e.mkfile(y2.Ino, "f2")
	e.commit(f2.Ino, 6)
	if err := e.c.Remove(e.ctx, y2.Ino, "f2", false); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Remove(e.ctx, x.Ino, "y2", true); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Purge(e.ctx, f2.Ino); err != nil {
		t.Fatal(err)
	}
	e.gone(f2.Ino)
	e.gone(y2.Ino)
	e.wantDeleted(x.Ino)
	e.lookup(versions.RootIno, "x")
}

func testWalk(t *testing.T, e *env) {
	d := e.mkdir(versions.RootIno, "d")
	want := map[versions.VersionID]versions.Ino{}
	wantV := map[versions.VersionID]versions.Version{}
	add := func(ino versions.Ino, n int) {
		v := e.commit(ino, n)
		want[v.ID], wantV[v.ID] = ino, v
	}
	live := e.mkfile(d.Ino, "live")
	add(live.Ino, 1)
	add(live.Ino, 2)
	del := e.mkfile(d.Ino, "del")
	add(del.Ino, 3)
	if err := e.c.Remove(e.ctx, d.Ino, "del", false); err != nil {
		t.Fatal(err)
	}
	add(del.Ino, 4)
	e.mkfile(d.Ino, "empty")
	for i := 0; i < 5; i++ {
		add(e.mkfile(versions.RootIno, fmt.Sprintf("r%d", i)).Ino, 10+i)
	}
	got := map[versions.VersionID]versions.Ino{}
	if err := e.c.Walk(e.ctx, func(ino versions.Ino, v versions.Version) error {
		if _, dup := got[v.ID]; dup {
			t.Errorf("walk: %v twice", v.ID)
		}
		got[v.ID] = ino
		if !sameVersion(v, wantV[v.ID]) {
			t.Errorf("walk: got %+v, want %+v", v, wantV[v.ID])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("walk: %d versions, want %d", len(got), len(want))
	}
	for id, ino := range want {
		if got[id] != ino {
			t.Errorf("walk: version %v of %d reported for %d", id, ino, got[id])
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := e.c.Walk(e.ctx, func(versions.Ino, versions.Version) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("walk with failing fn: %v after %d calls", err, calls)
	}
}
