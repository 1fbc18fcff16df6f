package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/casfs/casfs/versions"
)

// fileVersion is one version of a file found at a path, which may belong
// to the live file or to one deleted earlier at the same path.
type fileVersion struct {
	entry   versions.Entry
	version versions.Version
	head    bool // HEAD of a live file
}

// history returns every version of every regular file that is or was at p,
// oldest first.
func history(ctx context.Context, r *versions.Repo, p string) ([]fileVersion, error) {
	ents, err := r.Lookup(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []fileVersion
	dir := false
	for _, e := range ents {
		if !e.IsRegular() {
			dir = dir || (e.IsDir() && e.Deleted.IsZero())
			continue
		}
		vs, err := r.Catalog().Versions(ctx, e.Ino)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			out = append(out, fileVersion{entry: e, version: v,
				head: e.Deleted.IsZero() && v.ID == e.Head})
		}
	}
	if len(out) == 0 && dir {
		return nil, fmt.Errorf("%s: %w (versions are kept per file)", p, versions.ErrIsDir)
	}
	slices.SortFunc(out, func(a, b fileVersion) int { return a.version.ID.Compare(b.version.ID) })
	return out, nil
}

// pickVersion selects one version by its full ID, a unique prefix of it, or
// "HEAD" / "" (the live file's HEAD, else the newest version of all).
func pickVersion(all []fileVersion, p, sel string) (fileVersion, error) {
	if len(all) == 0 {
		return fileVersion{}, fmt.Errorf("%s: has no versions (a file created but never written, or not a regular file)", p)
	}
	if sel == "" || strings.EqualFold(sel, "HEAD") {
		for _, fv := range all {
			if fv.head {
				return fv, nil
			}
		}
		return all[len(all)-1], nil
	}
	var hits []fileVersion
	for _, fv := range all {
		s := fv.version.ID.String()
		if s == sel {
			return fv, nil
		}
		if strings.HasPrefix(s, sel) {
			hits = append(hits, fv)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return fileVersion{}, fmt.Errorf("%s: no version %q (see casfs versions)", p, sel)
	}
	return fileVersion{}, fmt.Errorf("%s: %q matches %d versions; give more of it", p, sel, len(hits))
}
