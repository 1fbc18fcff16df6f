package integration

import (
	"os"
	"strings"
	"testing"
)

// stressors are the stress-ng filesystem stressors run on a mount: each
// exercises a family of calls against its own files, checking what it
// reads back (--verify). fallocate, sync-file, copy-file and fsize found
// bugs here (descriptors of unlinked files failing with ENOENT, a close
// reading terabytes of holes); the rest guard the basics.
var stressors = []string{
	"fallocate", "sync-file", "copy-file", "fsize", "fpunch",
	"dir", "dentry", "rename", "symlink", "link", "chmod", "utime",
	"hdd", "seek", "readahead", "iomix", "mmap", "xattr", "lockf", "mknod",
}

// TestStressNG runs stress-ng's filesystem stressors on a mount, all at
// once for a few seconds, and then checks that the mount still works and
// the store is sound.
func TestStressNG(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "stress-ng")
	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	dir := m.path("stress")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--timeout", "4s", "--verify", "--temp-path", dir, "--metrics-brief"}
	for _, s := range stressors {
		args = append(args, "--"+s, "1")
	}
	res := exe(t, dir, nil, "stress-ng", args...)
	out := res.stdout + res.stderr
	if res.code != 0 || strings.Contains(out, "fail:") || strings.Contains(out, "error:") {
		t.Fatalf("stress-ng on the mount: %v", res)
	}
	// Every stressor cleans up after itself.
	if names, err := os.ReadDir(dir); err != nil || len(names) != 0 {
		t.Errorf("left on the mount: %v (%v)", names, err)
	}
	if err := os.WriteFile(m.path("after"), []byte("still fine"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.stop()
	casfsOK(t, "fsck", store)
}
