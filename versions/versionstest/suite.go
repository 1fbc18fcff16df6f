// Package versionstest is the conformance suite for versions.Catalog. Every
// catalog implementation runs it in one line:
//
//	func TestCatalog(t *testing.T) { versionstest.Run(t, openMyCatalog) }
//
// The suite tests behaviour through the interface only, so it holds for any
// backend (bolt, RADOS omap, a fake).
package versionstest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/versions"
)

// Run runs every conformance test, each on a fresh catalog from open, which
// the suite checks (if it has a Check(ctx) error method) and closes when the
// test ends (Close must tolerate a second call if open also registers one).
//
// The assertions hold for any clock that does not go backwards and reads
// after 2001; run the suite once with a real clock and once with a frozen one
// (which exercises strictly increasing version IDs within one nanosecond).
func Run(t *testing.T, open func(t *testing.T) versions.Catalog) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Root", testRoot},
		{"Create", testCreate},
		{"Special", testSpecial},
		{"CreateErrors", testCreateErrors},
		{"InodesNotReused", testInodesNotReused},
		{"LookupErrors", testLookupErrors},
		{"SetAttr", testSetAttr},
		{"Link", testLink},
		{"Remove", testRemove},
		{"RemoveKeepsHistory", testRemoveKeepsHistory},
		{"RmdirWithDeleted", testRmdirWithDeleted},
		{"Rename", testRename},
		{"RenameOver", testRenameOver},
		{"RenameDirs", testRenameDirs},
		{"RenameFlags", testRenameFlags},
		{"RenameExchange", testRenameExchange},
		{"RenameErrors", testRenameErrors},
		{"Commit", testCommit},
		{"CommitOrder", testCommitOrder},
		{"CommitDeleted", testCommitDeleted},
		{"RemoveVersion", testRemoveVersion},
		{"RemoveVersionDeleted", testRemoveVersionDeleted},
		{"DeletedList", testDeletedList},
		{"Purge", testPurge},
		{"PurgeDir", testPurgeDir},
		{"Walk", testWalk},
		{"Xattr", testXattr},
		{"XattrErrors", testXattrErrors},
		{"Canceled", testCanceled},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := open(t)
			t.Cleanup(func() {
				// A catalog that can check its own structure (KVCatalog)
				// does so after every test: an operation that leaves it
				// inconsistent fails even when the interface looks right.
				if ch, ok := c.(interface{ Check(context.Context) error }); ok {
					if err := ch.Check(context.Background()); err != nil {
						t.Errorf("catalog inconsistent after the test:\n%v", err)
					}
				}
				c.Close()
			})
			tt.fn(t, &env{t: t, c: c, ctx: context.Background()})
		})
	}
}

// past is a time before any the catalog's clock gives: setting a directory's
// mtime to it shows whether an operation updates it.
var past = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)

type env struct {
	t   *testing.T
	c   versions.Catalog
	ctx context.Context
}

func (e *env) create(parent versions.Ino, name string, mode uint32, target string) versions.Attr {
	e.t.Helper()
	a, err := e.c.Create(e.ctx, parent, name, versions.Attr{Mode: mode, Target: target})
	if err != nil {
		e.t.Fatalf("create %q: %v", name, err)
	}
	return a
}

func (e *env) mkdir(parent versions.Ino, name string) versions.Attr {
	e.t.Helper()
	return e.create(parent, name, versions.ModeDir|0o755, "")
}

func (e *env) mkfile(parent versions.Ino, name string) versions.Attr {
	e.t.Helper()
	return e.create(parent, name, versions.ModeRegular|0o644, "")
}

func (e *env) attr(ino versions.Ino) versions.Attr {
	e.t.Helper()
	a, err := e.c.GetAttr(e.ctx, ino)
	if err != nil {
		e.t.Fatalf("getattr %d: %v", ino, err)
	}
	return a
}

func (e *env) gone(ino versions.Ino) {
	e.t.Helper()
	if a, err := e.c.GetAttr(e.ctx, ino); !errors.Is(err, versions.ErrNotExist) {
		e.t.Errorf("getattr %d: got %+v, %v; want ErrNotExist", ino, a, err)
	}
}

func (e *env) lookup(parent versions.Ino, name string) versions.Attr {
	e.t.Helper()
	a, err := e.c.Lookup(e.ctx, parent, name)
	if err != nil {
		e.t.Fatalf("lookup %q: %v", name, err)
	}
	return a
}

func (e *env) noEntry(parent versions.Ino, name string) {
	e.t.Helper()
	if a, err := e.c.Lookup(e.ctx, parent, name); !errors.Is(err, versions.ErrNotExist) {
		e.t.Errorf("lookup %q: got %+v, %v; want ErrNotExist", name, a, err)
	}
}

// names lists dir as sorted "name:ino:type" strings.
func (e *env) names(dir versions.Ino) []string {
	e.t.Helper()
	ents, err := e.c.ReadDir(e.ctx, dir)
	if err != nil {
		e.t.Fatalf("readdir %d: %v", dir, err)
	}
	var out []string
	for _, d := range ents {
		out = append(out, d.Name)
	}
	slices.Sort(out)
	return out
}

func (e *env) wantNames(dir versions.Ino, want ...string) {
	e.t.Helper()
	got := e.names(dir)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		e.t.Errorf("readdir %d: got %q, want %q", dir, got, want)
	}
}

func (e *env) deleted(dir versions.Ino) []versions.Deleted {
	e.t.Helper()
	d, err := e.c.Deleted(e.ctx, dir)
	if err != nil {
		e.t.Fatalf("deleted %d: %v", dir, err)
	}
	return d
}

// wantDeleted checks dir's deleted list, in order, as "name:ino" pairs.
func (e *env) wantDeleted(dir versions.Ino, want ...any) {
	e.t.Helper()
	var got []any
	for _, d := range e.deleted(dir) {
		got = append(got, d.Name, d.Ino)
		if d.Deleted.IsZero() {
			e.t.Errorf("deleted %d: %q has no deletion time", dir, d.Name)
		}
	}
	if !slices.Equal(got, want) {
		e.t.Errorf("deleted %d: got %v, want %v", dir, got, want)
	}
}

func recipe(n int) chunkstore.ID {
	var id chunkstore.ID
	id[0], id[1], id[31] = byte(n>>8), byte(n), 0xaa
	return id
}

func (e *env) commit(ino versions.Ino, n int) versions.Version {
	e.t.Helper()
	v, err := e.c.Commit(e.ctx, ino, versions.Version{Recipe: recipe(n), Size: int64(n)})
	if err != nil {
		e.t.Fatalf("commit %d: %v", ino, err)
	}
	return v
}

func (e *env) versions(ino versions.Ino) []versions.Version {
	e.t.Helper()
	vs, err := e.c.Versions(e.ctx, ino)
	if err != nil {
		e.t.Fatalf("versions %d: %v", ino, err)
	}
	return vs
}

func (e *env) wantVersions(ino versions.Ino, want ...versions.Version) {
	e.t.Helper()
	got := e.versions(ino)
	if len(got) != len(want) {
		e.t.Fatalf("versions %d: got %d, want %d", ino, len(got), len(want))
	}
	for i := range got {
		if !sameVersion(got[i], want[i]) {
			e.t.Errorf("versions %d [%d]: got %+v, want %+v", ino, i, got[i], want[i])
		}
	}
}

func sameVersion(a, b versions.Version) bool {
	return a.ID == b.ID && a.Recipe == b.Recipe && a.Size == b.Size && a.Mtime.Equal(b.Mtime)
}

// age sets dir's mtime into the past so that a later check sees whether an
// operation touched it.
func (e *env) age(inos ...versions.Ino) {
	e.t.Helper()
	for _, ino := range inos {
		if _, err := e.c.SetAttr(e.ctx, ino, versions.SetAttr{Mtime: &past}); err != nil {
			e.t.Fatalf("setattr %d: %v", ino, err)
		}
	}
}

// touched checks that an operation set the directories' mtime after age.
func (e *env) touched(what string, inos ...versions.Ino) {
	e.t.Helper()
	for _, ino := range inos {
		if a := e.attr(ino); !a.Mtime.After(past) {
			e.t.Errorf("%s: mtime of %d not updated (%v)", what, ino, a.Mtime)
		}
	}
}

func (e *env) wantNlink(ino versions.Ino, n uint32) {
	e.t.Helper()
	if a := e.attr(ino); a.Nlink != n {
		e.t.Errorf("nlink of %d: got %d, want %d", ino, a.Nlink, n)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

var longName = strings.Repeat("n", 255)
