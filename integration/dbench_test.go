package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dbenchLoad is the load file Debian's dbench package ships: a recorded
// NetBench run (a file server's clients creating, writing, reading,
// renaming, locking and deleting files in a tree), with the status each
// call must return.
const dbenchLoad = "/usr/share/dbench/client.txt"

// TestDbench replays dbench's file-server load on a mount with two clients
// for a few seconds. dbench checks each call's result against the one the
// load file recorded (an open of a name that must not exist, a read that
// must return so many bytes) and exits non-zero on the first mismatch.
// Afterwards its cleanup has left no file behind, the mount still works,
// and the store is sound.
func TestDbench(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "dbench")
	_, err := os.Stat(dbenchLoad)
	requireExternal(t, dbenchLoad, err)
	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	dir := m.path("dbench")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res := exe(t, dir, nil, "dbench", "-D", dir, "-t", "6", "-c", dbenchLoad, "2")
	out := res.stdout + res.stderr
	if res.code != 0 || strings.Contains(out, "ERROR") || !strings.Contains(out, "Throughput") {
		t.Fatalf("dbench on the mount: %v", res)
	}
	// Its cleanup deletes every file it made and keeps the directories
	// (as on a plain directory): the mount lists the directories and no
	// file is left, so every unlink took and no deleted file still shows.
	var files []string
	dirs := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs++
		default:
			files = append(files, p)
		}
		return nil
	})
	if err != nil || len(files) != 0 || dirs < 2 {
		t.Errorf("dbench's tree after its cleanup: %d directories, files %q, %v", dirs, files, err)
	}
	if err := os.WriteFile(m.path("after"), []byte("still fine"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.stop()
	casfsOK(t, "fsck", store)
}
