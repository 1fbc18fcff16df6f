package versions

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// SplitPath turns a store path ("a/b/c", "/a/b/c") into its components. The
// root is "" or "/". ".." is refused: store paths are absolute within the
// store and must not climb out of it.
func SplitPath(p string) ([]string, error) {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("path %q: %w: \"..\" is not allowed in store paths", p, ErrInvalid)
		}
		out = append(out, c)
	}
	return out, nil
}

// Resolve finds the live entry at p.
func (r *Repo) Resolve(ctx context.Context, p string) (Attr, error) {
	parts, err := SplitPath(p)
	if err != nil {
		return Attr{}, err
	}
	a, err := r.cat.GetAttr(ctx, RootIno)
	for i, name := range parts {
		if err != nil {
			break
		}
		if !a.IsDir() {
			return Attr{}, fmt.Errorf("%s: %w", path.Join(parts[:i]...), ErrNotDir)
		}
		a, err = r.cat.Lookup(ctx, a.Ino, name)
	}
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			// The catalog's error names the parent by inode number,
			// which means nothing to whoever gave p.
			err = ErrNotExist
		}
		return Attr{}, fmt.Errorf("%s: %w", strings.Join(parts, "/"), err)
	}
	return a, nil
}

// MkdirAll makes the directories of p that do not exist, like mkdir -p,
// and returns the last one.
func (r *Repo) MkdirAll(ctx context.Context, p string, mode uint32, uid, gid uint32) (Attr, error) {
	parts, err := SplitPath(p)
	if err != nil {
		return Attr{}, err
	}
	a, err := r.cat.GetAttr(ctx, RootIno)
	if err != nil {
		return Attr{}, err
	}
	for i, name := range parts {
		next, err := r.cat.Lookup(ctx, a.Ino, name)
		if errors.Is(err, ErrNotExist) {
			next, err = r.cat.Create(ctx, a.Ino, name, Attr{Mode: ModeDir | mode&ModePerm, Uid: uid, Gid: gid})
			if errors.Is(err, ErrExist) { // made by someone else meanwhile
				next, err = r.cat.Lookup(ctx, a.Ino, name)
			}
		}
		if err != nil {
			return Attr{}, fmt.Errorf("%s: %w", path.Join(parts[:i+1]...), err)
		}
		if !next.IsDir() {
			return Attr{}, fmt.Errorf("%s: %w", path.Join(parts[:i+1]...), ErrNotDir)
		}
		a = next
	}
	return a, nil
}

// Entry is an inode found at a path, live or deleted.
type Entry struct {
	Attr
	Path    string
	Deleted time.Time // zero for a live entry
}

// Lookup finds every inode that is or was at p: the live one first, if any,
// then deleted ones, newest first. A path through a deleted directory finds
// the files deleted with it. It returns ErrNotExist if there is none.
func (r *Repo) Lookup(ctx context.Context, p string) ([]Entry, error) {
	parts, err := SplitPath(p)
	if err != nil {
		return nil, err
	}
	root, err := r.cat.GetAttr(ctx, RootIno)
	if err != nil {
		return nil, err
	}
	cur := []Entry{{Attr: root}}
	for _, name := range parts {
		var next []Entry
		for _, dir := range cur {
			if !dir.IsDir() {
				continue
			}
			more, err := r.Children(ctx, dir, name)
			if err != nil {
				return nil, err
			}
			next = append(next, more...)
		}
		cur = next
	}
	if len(cur) == 0 {
		return nil, fmt.Errorf("%s: %w", strings.Join(parts, "/"), ErrNotExist)
	}
	return cur, nil
}

// Children returns the entries named name in dir, live first then deleted
// newest first. Entries below a deleted directory count as deleted at the
// directory's deletion time when they have none of their own.
func (r *Repo) Children(ctx context.Context, dir Entry, name string) ([]Entry, error) {
	var out []Entry
	p := path.Join(dir.Path, name)
	if dir.Deleted.IsZero() {
		a, err := r.cat.Lookup(ctx, dir.Ino, name)
		switch {
		case err == nil:
			out = append(out, Entry{Attr: a, Path: p})
		case !errors.Is(err, ErrNotExist):
			return nil, err
		}
	} else {
		// A deleted directory keeps its entries as they were.
		a, err := r.cat.Lookup(ctx, dir.Ino, name)
		switch {
		case err == nil:
			out = append(out, Entry{Attr: a, Path: p, Deleted: dir.Deleted})
		case !errors.Is(err, ErrNotExist):
			return nil, err
		}
	}
	dels, err := r.cat.Deleted(ctx, dir.Ino)
	if err != nil {
		return nil, err
	}
	for _, d := range slices.Backward(dels) {
		if d.Name != name {
			continue
		}
		a, err := r.cat.GetAttr(ctx, d.Ino)
		if errors.Is(err, ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Attr: a, Path: p, Deleted: d.Deleted})
	}
	return out, nil
}

// Paths maps every inode reachable from the root, live or deleted, to a
// path for messages; deleted ones are marked "(deleted)". fsck and stats use
// it to name files.
func (r *Repo) Paths(ctx context.Context) (map[Ino]string, error) {
	out := map[Ino]string{RootIno: "/"}
	var walk func(dir Ino, prefix string) error
	walk = func(dir Ino, prefix string) error {
		ents, err := r.cat.ReadDir(ctx, dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if _, seen := out[e.Ino]; seen {
				continue
			}
			p := prefix + "/" + e.Name
			out[e.Ino] = p
			if e.Mode&ModeType == ModeDir {
				if err := walk(e.Ino, p); err != nil {
					return err
				}
			}
		}
		dels, err := r.cat.Deleted(ctx, dir)
		if err != nil {
			return err
		}
		for _, d := range dels {
			if _, seen := out[d.Ino]; seen {
				continue
			}
			p := prefix + "/" + d.Name + " (deleted " + d.Deleted.UTC().Format(time.RFC3339) + ")"
			out[d.Ino] = p
			if d.Mode&ModeType == ModeDir {
				if err := walk(d.Ino, p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(RootIno, "")
}
