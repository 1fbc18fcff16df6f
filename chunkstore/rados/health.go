//go:build ceph

package rados

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// whyTimedOut asks the monitors (within the connection's monitor timeout)
// for the states of the cluster that make OSD operations wait instead of
// fail, and describes those it finds: a paused or full cluster, a full pool,
// OSDs down or full. librados reports all of them as a timeout. It returns
// "" if it finds none or the monitors do not answer either.
//
// When many operations time out together (a dead cluster under a busy
// mount), one of them asks and the others take the answer of the last ask,
// which is kept for a few seconds: a monitor that does not answer would
// otherwise add its own timeout to every one of them.
func (c *Conn) whyTimedOut() string {
	c.why.mu.Lock()
	if c.why.asking || time.Since(c.why.at) < whyFresh {
		w := c.why.text
		c.why.mu.Unlock()
		return w
	}
	c.why.asking = true
	c.why.mu.Unlock()
	text := ""
	if out, _, err := c.conn.MonCommand([]byte(`{"prefix": "osd dump", "format": "json"}`)); err == nil {
		text = explainOSDMap(out, c.opts.Pool)
	}
	c.why.mu.Lock()
	c.why.asking, c.why.at, c.why.text = false, time.Now(), text
	c.why.mu.Unlock()
	return text
}

// whyFresh is how long whyTimedOut's answer is reused.
const whyFresh = 5 * time.Second

// timeoutWhy is whyTimedOut's state, in the Conn.
type timeoutWhy struct {
	mu     sync.Mutex
	asking bool      // a monitor command is in flight
	at     time.Time // when the last one returned
	text   string    // what it found
}

// osdDump is the part of `ceph osd dump -f json` that explainOSDMap reads.
type osdDump struct {
	Flags string `json:"flags"`
	Pools []struct {
		Name       string `json:"pool_name"`
		FlagsNames string `json:"flags_names"`
	} `json:"pools"`
	OSDs []struct {
		OSD   int      `json:"osd"`
		Up    int      `json:"up"`
		In    int      `json:"in"`
		State []string `json:"state"`
	} `json:"osds"`
}

// explainOSDMap describes what in an OSD map (the JSON of `ceph osd dump`)
// keeps I/O to pool from completing; "" if nothing does, or out does not
// parse.
func explainOSDMap(out []byte, pool string) string {
	var d osdDump
	if err := json.Unmarshal(out, &d); err != nil {
		return ""
	}
	var why []string
	flags := strings.Split(d.Flags, ",")
	if slices.Contains(flags, "pauserd") || slices.Contains(flags, "pausewr") {
		why = append(why, "the cluster is paused (`ceph osd unpause` resumes it)")
	}
	if slices.Contains(flags, "full") {
		why = append(why, "the cluster is full")
	}
	for _, p := range d.Pools {
		if p.Name == pool && slices.Contains(strings.Split(p.FlagsNames, ","), "full") {
			why = append(why, fmt.Sprintf("pool %q is full: writes wait until space is freed or its quota raised (see `ceph df`)", pool))
		}
	}
	var down, full []string
	up := 0
	for _, o := range d.OSDs {
		if !slices.Contains(o.State, "exists") {
			continue
		}
		name := fmt.Sprintf("osd.%d", o.OSD)
		switch {
		case o.Up == 0:
			down = append(down, name)
		default:
			up++
		}
		if slices.Contains(o.State, "full") {
			full = append(full, name)
		}
	}
	if len(down) > 0 {
		why = append(why, fmt.Sprintf("%d of %d OSDs down (%s)", len(down), len(down)+up, strings.Join(down, ", ")))
	}
	if len(full) > 0 {
		why = append(why, fmt.Sprintf("full: %s", strings.Join(full, ", ")))
	}
	return strings.Join(why, "; ")
}
