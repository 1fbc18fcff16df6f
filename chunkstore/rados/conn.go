//go:build ceph

package rados

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	librados "github.com/ceph/go-ceph/rados"

	"github.com/casfs/casfs/chunkstore"
)

// Defaults for Options.
const (
	DefaultUser        = "admin"
	DefaultTimeout     = 10 * time.Second
	DefaultOpTimeout   = 60 * time.Second
	DefaultConcurrency = 16
)

var (
	// ErrUnreachable is matched by Connect's error when no monitor answered
	// within Options.Timeout.
	ErrUnreachable = errors.New("Ceph cluster not reachable")
	// ErrAuth is matched by Connect's error when the cluster refused the
	// credentials.
	ErrAuth = errors.New("Ceph authentication failed")
	// ErrNoPool is matched by Connect's error when the pool does not exist.
	ErrNoPool = errors.New("no such pool")
	// ErrClosed is matched by the error of a call made after Close.
	ErrClosed = errors.New("Ceph connection closed")
)

// Options say how to reach the cluster and where in it the store lives.
type Options struct {
	// ConfFile is the ceph.conf to read. Empty means librados's default
	// search: $CEPH_CONF, then /etc/ceph/ceph.conf, ~/.ceph/config and
	// ./ceph.conf.
	ConfFile string
	// User is the cephx user, without "client."; DefaultUser if empty.
	User string
	// Keyring is the keyring file holding User's key. Empty means the
	// one the config names.
	Keyring string
	// Pool is the pool the store lives in. Required.
	Pool string
	// Namespace is the prefix of the store's RADOS namespaces (see the
	// package documentation). Empty means the pool's default namespace.
	Namespace string
	// Timeout bounds connecting and every monitor operation;
	// DefaultTimeout if zero.
	Timeout time.Duration
	// OpTimeout bounds every OSD operation. Zero keeps the config's
	// rados_osd_op_timeout, or DefaultOpTimeout if the config sets none
	// (librados's own default is to wait forever).
	OpTimeout time.Duration
	// Concurrency is how many librados calls may be in flight at once;
	// DefaultConcurrency if zero.
	Concurrency int
}

func (o Options) withDefaults() Options {
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	return o
}

// location names the store for messages and Properties.Name.
func (o Options) location() string {
	s := "rados://" + o.Pool
	if o.Namespace != "" {
		s += "/" + o.Namespace
	}
	return s
}

// chunksNamespace is the namespace of the chunk objects.
func (o Options) chunksNamespace() string {
	if o.Namespace == "" {
		return chunksName
	}
	return o.Namespace + "." + chunksName
}

// Conn is a connection to a cluster, opened on one pool. Its methods are safe
// for concurrent use; Close it when done.
type Conn struct {
	opts   Options // with defaults
	conn   *librados.Conn
	meta   *librados.IOContext // namespace opts.Namespace: the config object
	chunks *librados.IOContext // namespace opts.chunksNamespace()
	sem    chan struct{}       // one slot per librados call in flight

	poolMu sync.Mutex
	pools  map[string][]*librados.IOContext // idle IOContexts by namespace

	why timeoutWhy // see whyTimedOut

	// Close must not free the librados handles under a call still using
	// them (a fetch the chunk cache started in the background, say): that
	// is a use after free in C, which crashes the process. So every call
	// counts itself in active, and Close refuses new calls, then waits for
	// active. Not an RWMutex: a call within a call (a catalog transaction
	// reading a chunk) would deadlock against a waiting Close.
	lifeMu sync.Mutex
	closed bool
	active sync.WaitGroup
}

// Connect connects to the cluster opts describe and opens opts.Pool. It fails
// within about opts.Timeout if the monitors do not answer (ErrUnreachable),
// the credentials are refused (ErrAuth) or the pool is missing (ErrNoPool).
func Connect(ctx context.Context, opts Options) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if opts.Pool == "" {
		return nil, errors.New("connect to Ceph: no pool given")
	}
	conn, err := librados.NewConnWithUser(opts.User)
	if err != nil {
		return nil, fmt.Errorf("connect to Ceph: %w", err)
	}
	if err := configure(conn, opts); err != nil {
		conn.Shutdown()
		return nil, fmt.Errorf("connect to Ceph as client.%s: %w", opts.User, err)
	}
	if err := connect(ctx, conn); err != nil {
		return nil, connectError(opts, err)
	}
	c := &Conn{opts: opts, conn: conn, sem: make(chan struct{}, opts.Concurrency)}
	if err := c.openPool(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// configure reads the config file and sets the timeouts. Nothing here talks
// to the cluster.
func configure(conn *librados.Conn, opts Options) error {
	if opts.ConfFile != "" {
		if err := conn.ReadConfigFile(opts.ConfFile); err != nil {
			return fmt.Errorf("read config %s: %w", opts.ConfFile, err)
		}
	} else if err := conn.ReadDefaultConfigFile(); err != nil {
		if env := os.Getenv("CEPH_CONF"); env != "" {
			return fmt.Errorf("read config %s ($CEPH_CONF): %w", env, err)
		}
		return fmt.Errorf("no Ceph config found (set CEPH_CONF, or install one at /etc/ceph/ceph.conf): %w", err)
	}
	if opts.Keyring != "" {
		if err := conn.SetConfigOption("keyring", opts.Keyring); err != nil {
			return fmt.Errorf("set keyring %s: %w", opts.Keyring, err)
		}
	}
	// Without these librados waits 5 minutes for an unreachable monitor
	// (client_mount_timeout) and forever for a monitor or OSD operation.
	secs := seconds(opts.Timeout)
	for _, name := range []string{"client_mount_timeout", "rados_mon_op_timeout"} {
		if err := conn.SetConfigOption(name, secs); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	opTimeout := opts.OpTimeout
	if opTimeout <= 0 {
		v, err := conn.GetConfigOption("rados_osd_op_timeout")
		if f, perr := strconv.ParseFloat(v, 64); err == nil && perr == nil && f > 0 {
			return nil // the config's own bound
		}
		opTimeout = DefaultOpTimeout
	}
	if err := conn.SetConfigOption("rados_osd_op_timeout", seconds(opTimeout)); err != nil {
		return fmt.Errorf("set rados_osd_op_timeout: %w", err)
	}
	return nil
}

// seconds formats d as whole seconds, rounded up, at least 1: librados's
// timeouts are whole seconds, and 0 would mean "forever".
func seconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// connect runs conn.Connect, which librados bounds by client_mount_timeout,
// but returns as soon as ctx is done; a connection that completes after that
// is shut down.
func connect(ctx context.Context, conn *librados.Conn) error {
	done := make(chan error, 1)
	go func() { done <- conn.Connect() }()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			conn.Shutdown()
			return err
		}
		return nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				conn.Shutdown()
			}
		}()
		return ctx.Err()
	}
}

// connectError explains a failed rados_connect.
func connectError(opts Options, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	conf := opts.ConfFile
	if conf == "" {
		conf = "the default config"
		if env := os.Getenv("CEPH_CONF"); env != "" {
			conf = env
		}
	}
	switch errno(err) {
	case syscall.ETIMEDOUT:
		return fmt.Errorf("connect to Ceph as client.%s: %w: no monitor answered within %v (is the cluster up, and is \"mon host\" in %s right?): %w",
			opts.User, ErrUnreachable, opts.Timeout, conf, err)
	case syscall.EACCES, syscall.EPERM:
		return fmt.Errorf("connect to Ceph as client.%s: %w: the cluster refused client.%s (check that the user exists and that the keyring %s holds its current key): %w",
			opts.User, ErrAuth, opts.User, keyringName(opts, conf), err)
	case syscall.ENOENT:
		return fmt.Errorf("connect to Ceph as client.%s: %w: no key for client.%s (check the keyring %s): %w",
			opts.User, ErrAuth, opts.User, keyringName(opts, conf), err)
	}
	return fmt.Errorf("connect to Ceph as client.%s (config %s): %w", opts.User, conf, err)
}

func keyringName(opts Options, conf string) string {
	if opts.Keyring != "" {
		return opts.Keyring
	}
	return "named in " + conf
}

// openPool opens the pool's IOContexts, one per namespace: librados keeps the
// namespace in the IOContext, so each stays fixed and they are shared by all
// calls.
func (c *Conn) openPool(ctx context.Context) error {
	err := c.call(ctx, func() error {
		var err error
		if c.meta, err = c.conn.OpenIOContext(c.opts.Pool); err != nil {
			return err
		}
		c.meta.SetNamespace(c.opts.Namespace)
		if c.chunks, err = c.conn.OpenIOContext(c.opts.Pool); err != nil {
			return err
		}
		c.chunks.SetNamespace(c.opts.chunksNamespace())
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, librados.ErrNotFound):
		return fmt.Errorf("connect to Ceph: %w %q (create it with `ceph osd pool create %s` and `ceph osd pool application enable %s rados`)",
			ErrNoPool, c.opts.Pool, c.opts.Pool, c.opts.Pool)
	case errno(err) == syscall.ETIMEDOUT:
		return fmt.Errorf("connect to Ceph: open pool %q: %w: no answer within %v: %w", c.opts.Pool, ErrUnreachable, c.opts.Timeout, err)
	}
	return fmt.Errorf("connect to Ceph: open pool %q: %w", c.opts.Pool, err)
}

// Options returns the options c was connected with, defaults filled in.
func (c *Conn) Options() Options { return c.opts }

// Close releases the connection, once the calls in flight have returned;
// later calls fail with ErrClosed. Calling it again does nothing.
func (c *Conn) Close() {
	c.lifeMu.Lock()
	if c.closed {
		c.lifeMu.Unlock()
		return
	}
	c.closed = true
	c.lifeMu.Unlock()
	c.active.Wait()
	for _, io := range []*librados.IOContext{c.meta, c.chunks} {
		if io != nil {
			io.Destroy()
		}
	}
	c.poolMu.Lock()
	for _, ios := range c.pools {
		for _, io := range ios {
			io.Destroy()
		}
	}
	c.pools = nil
	c.poolMu.Unlock()
	c.conn.Shutdown()
}

// enter counts a use of the librados handles, which Close waits for; leave
// ends it. enter fails once Close has begun.
func (c *Conn) enter() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return fmt.Errorf("%s: %w", c.opts.location(), ErrClosed)
	}
	c.active.Add(1)
	return nil
}

func (c *Conn) leave() { c.active.Done() }

// call runs fn, which makes blocking librados calls, in one of c's slots. It
// returns ctx.Err() instead of starting fn if ctx is done before fn could
// start (including while waiting for a slot), and instead of fn's result if
// ctx was done by the time fn returned.
func (c *Conn) call(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.leave()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	// select picks at random when both are ready.
	if err := ctx.Err(); err != nil {
		<-c.sem
		return err
	}
	err := fn()
	<-c.sem
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errno(err) == syscall.ETIMEDOUT {
		if why := c.whyTimedOut(); why != "" {
			return fmt.Errorf("%w: the cluster did not answer within its operation timeout: %s: %w", chunkstore.ErrUnavailable, why, err)
		}
		return fmt.Errorf("%w: the cluster did not answer within its operation timeout (is it up and are its OSDs in? see --ceph-timeout): %w", chunkstore.ErrUnavailable, err)
	}
	return err
}

// Call runs fn, which makes blocking librados calls, in one of the
// connection's slots, with the context checks described in the package
// documentation. It is for packages that keep more than chunks in the pool.
func (c *Conn) Call(ctx context.Context, fn func() error) error { return c.call(ctx, fn) }

// WithIOContext runs fn in one of the connection's slots with an IOContext
// on namespace ns that nobody else uses meanwhile. librados keeps the
// version of the last object an IOContext read or wrote in the IOContext
// (GetLastVersion), so anything that compares versions needs one of its
// own; they are pooled, as opening one costs a little.
func (c *Conn) WithIOContext(ctx context.Context, ns string, fn func(io *librados.IOContext) error) error {
	return c.call(ctx, func() error {
		io, err := c.getIOContext(ns)
		if err != nil {
			return err
		}
		defer c.putIOContext(ns, io)
		return fn(io)
	})
}

func (c *Conn) getIOContext(ns string) (*librados.IOContext, error) {
	c.poolMu.Lock()
	if ios := c.pools[ns]; len(ios) > 0 {
		io := ios[len(ios)-1]
		c.pools[ns] = ios[:len(ios)-1]
		c.poolMu.Unlock()
		return io, nil
	}
	c.poolMu.Unlock()
	io, err := c.conn.OpenIOContext(c.opts.Pool)
	if err != nil {
		return nil, err
	}
	io.SetNamespace(ns)
	return io, nil
}

func (c *Conn) putIOContext(ns string, io *librados.IOContext) {
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	if c.pools == nil {
		c.pools = map[string][]*librados.IOContext{}
	}
	// At most one per slot can be in use, so the pool stays that small.
	if len(c.pools[ns]) >= c.opts.Concurrency {
		io.Destroy()
		return
	}
	c.pools[ns] = append(c.pools[ns], io)
}

// Namespace is the namespace of the store's own objects (its config): the
// place for anything else a store keeps in the pool.
func (c *Conn) Namespace() string { return c.opts.Namespace }

// Location names the store, as in messages: rados://POOL, with the
// namespace if there is one.
func (c *Conn) Location() string { return c.opts.location() }

// Errno returns the positive errno of a go-ceph error, 0 if it has none.
func Errno(err error) syscall.Errno { return errno(err) }

// errno returns the positive errno of a go-ceph error, 0 if it has none.
func errno(err error) syscall.Errno {
	var ce interface{ ErrorCode() int }
	if !errors.As(err, &ce) {
		return 0
	}
	n := ce.ErrorCode()
	if n < 0 {
		n = -n
	}
	return syscall.Errno(n)
}
