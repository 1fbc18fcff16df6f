//go:build ceph

package rados

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// osdDumpJSON is the shape of Pacific's `ceph osd dump -f json`, cut down
// to what explainOSDMap reads, with the states given.
func osdDumpJSON(flags, poolFlags string, osds string) []byte {
	return []byte(`{"epoch": 12, "flags": "` + flags + `",
		"pools": [{"pool": 1, "pool_name": "other", "flags_names": "hashpspool,full"},
		          {"pool": 2, "pool_name": "casfs", "flags_names": "` + poolFlags + `"}],
		"osds": [` + osds + `]}`)
}

func TestExplainOSDMap(t *testing.T) {
	const up = `{"osd": 0, "up": 1, "in": 1, "state": ["exists", "up"]}`
	for _, tc := range []struct {
		name, flags, poolFlags, osds string
		want                         []string // substrings; none means ""
	}{
		{"healthy", "sortbitwise,recovery_deletes", "hashpspool", up, nil},
		{"paused", "pauserd,pausewr,sortbitwise", "hashpspool", up, []string{"paused", "ceph osd unpause"}},
		{"pool full", "sortbitwise", "hashpspool,full", up, []string{`pool "casfs" is full`}},
		{"osd down", "sortbitwise", "hashpspool", up + `, {"osd": 1, "up": 0, "in": 1, "state": ["exists"]}`, []string{"1 of 2 OSDs down (osd.1)"}},
		{"osd full", "sortbitwise", "hashpspool", `{"osd": 0, "up": 1, "in": 1, "state": ["exists", "up", "full"]}`, []string{"full: osd.0"}},
		{"never created", "sortbitwise", "hashpspool", up + `, {"osd": 1, "up": 0, "in": 0, "state": []}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explainOSDMap(osdDumpJSON(tc.flags, tc.poolFlags, tc.osds), "casfs")
			if len(tc.want) == 0 && got != "" {
				t.Errorf("explainOSDMap = %q; want nothing (another pool's full flag is not ours)", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("explainOSDMap = %q; want it to say %q", got, w)
				}
			}
		})
	}
	if got := explainOSDMap([]byte("not json"), "casfs"); got != "" {
		t.Errorf("explainOSDMap of garbage = %q; want \"\"", got)
	}
}

// TestPausedClusterSaysSo pauses the real cluster (`ceph osd pause`) for a
// few seconds: a write then times out, and its error says the cluster is
// paused rather than only that it did not answer.
func TestPausedClusterSaysSo(t *testing.T) {
	opts := clusterOptions(t)
	initStore(t, opts, chunkstore.DefaultConfig())
	opts.OpTimeout = 3 * time.Second
	s := mustOpen(t, opts)
	defer s.Close()
	mon := func(cmd string) {
		t.Helper()
		if _, info, err := s.c.conn.MonCommand([]byte(`{"prefix": "osd ` + cmd + `"}`)); err != nil {
			t.Fatalf("ceph osd %s: %v (%s)", cmd, err, info)
		}
		// The client acts on the flag once it has the map that sets it.
		if err := s.c.conn.WaitForLatestOSDMap(); err != nil {
			t.Fatalf("after ceph osd %s: wait for the OSD map: %v", cmd, err)
		}
	}
	mon("pause")
	unpaused := false
	unpause := func() {
		if !unpaused {
			unpaused = true
			mon("unpause")
		}
	}
	t.Cleanup(unpause)
	data := []byte("written while paused")
	err := s.Put(context.Background(), chunkstore.HashBLAKE3.Sum(data), data)
	unpause()
	if !errors.Is(err, chunkstore.ErrUnavailable) || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("Put on a paused cluster: %v; want ErrUnavailable saying it is paused", err)
	}
	t.Logf("Put on a paused cluster: %v", err)
	// Unpaused, the store works again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = s.Put(context.Background(), chunkstore.HashBLAKE3.Sum(data), data)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("Put after unpausing: %v", err)
	}
}
