package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGit runs git with its repository and work tree on the mount: commits,
// a clean status, the log, git gc's packing and renames, and git fsck,
// again after a remount.
func TestGit(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "git", "cp")
	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	repo := m.path("repo")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		return run(t, repo, "git", args...)
	}
	git("init", "-q", "-b", "main")
	git("config", "user.name", "casfs test")
	git("config", "user.email", "test@casfs.invalid")
	run(t, "", "cp", "-a", filepath.Join(goroot, "src", "sort"), filepath.Join(goroot, "src", "container"), repo)
	git("add", "-A")
	git("commit", "-q", "-m", "first")

	// Change, delete, add and rename, then commit again.
	sh(t, repo, `echo '// changed on casfs' >> sort/sort.go
		rm sort/search.go
		printf 'new file\n' > NEW.txt
		git mv container/list/list.go container/list/moved.go`)
	git("add", "-A")
	git("commit", "-q", "-m", "second")

	check := func(when string) {
		t.Helper()
		if st := git("status", "--porcelain"); st != "" {
			t.Errorf("%s: git status --porcelain:\n%s", when, st)
		}
		log := strings.Split(strings.TrimSpace(git("log", "--oneline")), "\n")
		if len(log) != 2 || !strings.HasSuffix(log[0], " second") || !strings.HasSuffix(log[1], " first") {
			t.Errorf("%s: git log --oneline: %q, want second and first", when, log)
		}
		res := exe(t, repo, nil, "git", "fsck", "--full", "--strict")
		if res.code != 0 || strings.Contains(res.stdout+res.stderr, "error") {
			t.Errorf("%s: %v", when, res)
		}
		stat := git("diff", "--name-status", "HEAD~1", "HEAD")
		for _, want := range []string{"M\tsort/sort.go", "D\tsort/search.go", "A\tNEW.txt"} {
			if !strings.Contains(stat, want) {
				t.Errorf("%s: git diff --name-status HEAD~1 HEAD lacks %q:\n%s", when, want, stat)
			}
		}
		if got := git("show", "HEAD~1:sort/search.go"); !strings.Contains(got, "func Search(") {
			t.Errorf("%s: sort/search.go of the first commit: %.200q", when, got)
		}
	}
	check("after two commits")
	git("gc", "-q", "--aggressive", "--prune=now") // packs, renames, deletes
	check("after git gc")
	m.stop()

	m = startMount(t, store, mnt)
	check("after remount")
	m.stop()
	casfsOK(t, "fsck", store)
}

// TestSQLite fills a database on the mount in transactions and in
// single-row autocommits (each one a journal created, fsynced and deleted,
// and the database fsynced: many versions), checks its integrity, and again
// after a remount, in rollback-journal and in WAL mode.
func TestSQLite(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "sqlite3")
	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)

	const (
		batches  = 4
		perBatch = 2450
		singles  = 200
		rows     = batches*perBatch + singles
	)
	fill := func(db, mode string) {
		t.Helper()
		var sql strings.Builder
		fmt.Fprintf(&sql, "PRAGMA journal_mode=%s;\n", mode)
		sql.WriteString("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v BLOB);\n")
		for b := 0; b < batches; b++ {
			fmt.Fprintf(&sql, `BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d)
  INSERT INTO t(k, v) SELECT printf('batch %d row %%d', x), randomblob(100 + x %% 300) FROM c;
COMMIT;
`, perBatch, b)
		}
		for i := 0; i < singles; i++ {
			fmt.Fprintf(&sql, "INSERT INTO t(k, v) VALUES('single %d', zeroblob(%d));\n", i, i)
		}
		res := exe(t, m.path(), []byte(sql.String()), "sqlite3", "-bail", db)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("%v", res)
		}
	}
	check := func(db, when string) {
		t.Helper()
		res := exe(t, m.path(), nil, "sqlite3", "-bail", db,
			"PRAGMA integrity_check; SELECT count(*) FROM t; SELECT count(DISTINCT k) FROM t; SELECT sum(length(v)) FROM t WHERE k LIKE 'single %';")
		want := fmt.Sprintf("ok\n%d\n%d\n%d\n", rows, rows, singles*(singles-1)/2)
		if res.code != 0 || res.stdout != want {
			t.Errorf("%s %s: want %q\n%v", db, when, want, res)
		}
	}
	fill("journal.db", "DELETE")
	fill("wal.db", "WAL")
	check("journal.db", "after filling")
	check("wal.db", "after filling")
	// Every fsync of the database committed a version of it.
	names := strings.Fields(run(t, "", "ls", m.path(".versions/journal.db")))
	if len(names) < singles {
		t.Errorf(".versions/journal.db has %d versions, want at least %d (one per autocommit)", len(names), singles)
	}
	m.stop()

	m = startMount(t, store, mnt)
	check("journal.db", "after remount")
	check("wal.db", "after remount")
	// A write after the remount, then the checks again.
	run(t, m.path(), "sqlite3", "-bail", "wal.db", "DELETE FROM t WHERE id % 2 = 0; VACUUM;")
	if got := strings.TrimSpace(run(t, m.path(), "sqlite3", "wal.db", "PRAGMA integrity_check; SELECT count(*) FROM t;")); got != "ok\n"+strconv.Itoa(rows/2) {
		t.Errorf("wal.db after deleting half and VACUUM: %q", got)
	}
	m.stop()
	casfsOK(t, "fsck", store)
}
