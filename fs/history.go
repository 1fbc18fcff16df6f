package fs

import (
	"context"
	"fmt"
	"hash/fnv"
	"path"
	"path/filepath"
	"sort"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// histDir is a directory under .versions/. It stands for a path and is made
// of every entry that is or was at that path (versions.Entry, live first):
// for directories it lists their children, live and deleted; for regular
// files it lists their versions as read-only files. It keeps only the path
// and resolves the entries at each use: the kernel may hold the node long
// after a file was deleted and recreated there, and go-fuse keeps the node
// it has for an inode number rather than a fresh one from a later lookup.
type histDir struct {
	gofs.Inode
	readOnly
	fs   *FS
	path string // within the store, "" for .versions itself
}

// entries resolves what the directory stands for now.
func (h *histDir) entries(ctx context.Context) ([]versions.Entry, error) {
	if h.path == "" {
		root, err := h.fs.cat.GetAttr(ctx, versions.RootIno)
		if err != nil {
			return nil, err
		}
		return []versions.Entry{{Attr: root}}, nil
	}
	all, err := h.fs.repo.Lookup(ctx, h.path)
	if err != nil {
		return nil, err
	}
	ents := all[:0]
	for _, e := range all {
		if e.IsDir() || e.IsRegular() {
			ents = append(ents, e)
		}
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("%s: %w", h.path, versions.ErrNotExist)
	}
	return ents, nil
}

// histChild returns the inode under parent for the history directory p.
func (f *FS) histChild(ctx context.Context, parent *gofs.Inode, p string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	h := &histDir{fs: f, path: p}
	if errno := h.fill(ctx, &out.Attr); errno != 0 {
		return nil, errno
	}
	return parent.NewInode(ctx, h, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: histIno("dir", p)}), 0
}

// histIno gives history nodes stable inode numbers that cannot collide
// with the catalog's (a counter far below 2^63).
func histIno(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64() | 1<<63
}

func (f *FS) historyRoot(ctx context.Context, parent *gofs.Inode, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return f.histChild(ctx, parent, "", out)
}

func (h *histDir) fill(ctx context.Context, out *fuse.Attr) syscall.Errno {
	ents, err := h.entries(ctx)
	if err != nil {
		return toErrno(err, "history", "path", h.path)
	}
	a := ents[0].Attr
	for _, e := range ents[1:] {
		if e.Mtime.After(a.Mtime) {
			a.Mtime = e.Mtime
		}
	}
	a.Mode = versions.ModeDir | 0o555
	a.Size, a.Holes = 0, 0
	fillAttr(a, out)
	out.Ino = histIno("dir", h.path)
	out.Nlink = 2
	return 0
}

func (h *histDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	return h.fill(ctx, &out.Attr)
}

// versionName is how a version appears in .versions: the file's name with
// the version ID before its extension, so it sorts by commit time, holds no
// spaces, and opens with the same program: report.2026-11-22T01-47-03.123456789Z.txt.
func versionName(name string, id versions.VersionID) string {
	ext := filepath.Ext(name)
	if ext == name { // ".bashrc" has no extension
		ext = ""
	}
	return name[:len(name)-len(ext)] + "." + id.String() + ext
}

type histVersion struct {
	entry   versions.Entry
	version versions.Version
}

// versions lists the versions of the regular files among h's entries by
// their names in the directory.
func (h *histDir) versions(ctx context.Context, ents []versions.Entry) (map[string]histVersion, error) {
	out := map[string]histVersion{}
	name := path.Base(h.path)
	for _, e := range ents {
		if !e.IsRegular() {
			continue
		}
		vs, err := h.fs.cat.Versions(ctx, e.Ino)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			out[versionName(name, v.ID)] = histVersion{e, v}
		}
	}
	return out, nil
}

func (h *histDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	ents, err := h.entries(ctx)
	if err != nil {
		return nil, toErrno(err, "lookup", "path", h.path)
	}
	vs, err := h.versions(ctx, ents)
	if err != nil {
		return nil, toErrno(err, "lookup", "path", h.path)
	}
	if hv, ok := vs[name]; ok {
		vf := &versionFile{fs: h.fs, hv: hv, name: path.Join(h.path, name)}
		ch := h.NewInode(ctx, vf, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: histIno("version", h.path, name)})
		vf.fill(&out.Attr)
		return ch, 0
	}
	return h.fs.histChild(ctx, &h.Inode, path.Join(h.path, name), out)
}

func (h *histDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ctx = uninterruptible(ctx)
	var list []fuse.DirEntry
	ents, err := h.entries(ctx)
	if err != nil {
		return nil, toErrno(err, "readdir", "path", h.path)
	}
	vs, err := h.versions(ctx, ents)
	if err != nil {
		return nil, toErrno(err, "readdir", "path", h.path)
	}
	for name := range vs {
		list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: histIno("version", h.path, name)})
	}
	seen := map[string]bool{}
	add := func(name string, mode uint32) {
		// Files show as directories here: a file's history is a
		// directory of its versions.
		if seen[name] || (mode&versions.ModeType != versions.ModeDir && mode&versions.ModeType != versions.ModeRegular) {
			return
		}
		seen[name] = true
		list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: histIno("dir", path.Join(h.path, name))})
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		{
			ents, err := h.fs.cat.ReadDir(ctx, e.Ino)
			if err != nil {
				return nil, toErrno(err, "readdir", "path", h.path)
			}
			for _, d := range ents {
				add(d.Name, d.Mode)
			}
		}
		dels, err := h.fs.cat.Deleted(ctx, e.Ino)
		if err != nil {
			return nil, toErrno(err, "readdir", "path", h.path)
		}
		for _, d := range dels {
			add(d.Name, d.Mode)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return gofs.NewListDirStream(append(dots(&h.Inode, make([]fuse.DirEntry, 0, len(list)+2)), list...)), 0
}

// Everything under .versions is read-only.
func (h *histDir) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (h *histDir) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (h *histDir) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (h *histDir) Symlink(context.Context, string, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (h *histDir) Link(context.Context, gofs.InodeEmbedder, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (h *histDir) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (h *histDir) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (h *histDir) Rename(context.Context, string, gofs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}

// readOnly answers EROFS to every change of attributes. Both kinds of node
// under .versions embed it; the directory adds the namespace changes.
type readOnly struct{}

func (readOnly) Setattr(context.Context, gofs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (readOnly) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.EROFS
}
func (readOnly) Removexattr(context.Context, string) syscall.Errno { return syscall.EROFS }

var (
	_ gofs.NodeSetattrer     = (*histDir)(nil)
	_ gofs.NodeSetxattrer    = (*versionFile)(nil)
	_ gofs.NodeRemovexattrer = (*histDir)(nil)
)

// versionFile is one version of a file: read-only, immutable, so the kernel
// may keep its pages for good.
type versionFile struct {
	gofs.Inode
	readOnly
	fs   *FS
	hv   histVersion
	name string
	rec  atomic.Pointer[recipe.Recipe]
}

func (v *versionFile) fill(out *fuse.Attr) {
	a := v.hv.entry.Attr
	a.Mode = versions.ModeRegular | a.Mode&0o7555
	a.Size, a.Holes = v.hv.version.Size, v.hv.version.Holes
	a.Mtime = v.hv.version.Mtime
	a.Ctime = v.hv.version.ID.Time()
	a.Atime = a.Mtime
	a.Nlink = 1
	fillAttr(a, out)
	out.Ino = histIno("version", path.Dir(v.name), path.Base(v.name))
}

func (v *versionFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	v.fill(&out.Attr)
	return 0
}

func (v *versionFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	if v.rec.Load() == nil {
		rec, err := v.fs.loadRecipe(ctx, v.hv.version.Recipe)
		if err != nil {
			return nil, 0, toErrno(err, "open", "version", v.name)
		}
		v.rec.Store(rec)
	}
	return &versionHandle{v: v}, fuse.FOPEN_KEEP_CACHE, 0
}

type versionHandle struct {
	v       *versionFile
	lastEnd atomic.Int64
}

func (h *versionHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctx = uninterruptible(ctx)
	seq := sequential(h.lastEnd.Swap(off+int64(len(dest))), off)
	return h.v.fs.readRecipe(ctx, h.v.rec.Load(), dest, off, seq, h.v.name)
}
