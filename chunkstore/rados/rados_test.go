//go:build ceph

package rados

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
)

// The cluster the tests use, as integration/ceph/start-cluster.sh writes it
// to DIR/env.
const (
	envConf = "CEPH_CONF"
	envPool = "CASFS_CEPH_POOL"
	envUser = "CASFS_CEPH_USER"
)

// clusterOptions returns options for the configured test cluster with a
// fresh namespace, so that tests are independent and can share one pool; the
// namespace's objects are removed when t ends. Without a configured cluster
// the test is skipped, or fails if CASFS_REQUIRE_EXTERNAL is set (CI must not
// pass by skipping).
func clusterOptions(t *testing.T) Options {
	t.Helper()
	requireCluster(t)
	conf, pool := os.Getenv(envConf), os.Getenv(envPool)
	var b [8]byte
	_, _ = rand.Read(b[:])
	opts := Options{
		ConfFile:  conf,
		User:      os.Getenv(envUser),
		Pool:      pool,
		Namespace: "casfs-test-" + fmt.Sprintf("%x", b),
	}
	t.Cleanup(func() { purge(t, opts) })
	return opts
}

// requireCluster skips t without a configured test cluster, or fails it if
// CASFS_REQUIRE_EXTERNAL is set. Tests that run the suite call it first, so a
// missing cluster is one failure, not one per subtest.
func requireCluster(t *testing.T) {
	t.Helper()
	if os.Getenv(envConf) == "" || os.Getenv(envPool) == "" {
		const msg = "no Ceph cluster configured (set CEPH_CONF and CASFS_CEPH_POOL, e.g. `. DIR/env` after integration/ceph/start-cluster.sh DIR)"
		if os.Getenv("CASFS_REQUIRE_EXTERNAL") != "" {
			t.Fatal("Ceph tests required (CASFS_REQUIRE_EXTERNAL is set) but " + msg)
		}
		t.Skip(msg)
	}
}

// purge removes every object of the store at opts.
func purge(t *testing.T, opts Options) {
	if err := Purge(context.Background(), opts); err != nil {
		t.Error(err)
	}
}

// initStore makes a store at opts with cfg.
func initStore(t *testing.T, opts Options, cfg chunkstore.Config) {
	t.Helper()
	c, err := Connect(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Init(context.Background(), c, cfg); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// optsOf remembers the options each store under test was opened with, so
// reopen can find its location behind an Encoded wrapper.
var optsOf sync.Map // chunkstore.Store → Options

// openSuite returns the suite's open function: a new store in a fresh
// namespace, raw or wrapped as casfs wraps it.
func openSuite(compression string) func(t *testing.T) chunkstore.Store {
	return func(t *testing.T) chunkstore.Store {
		opts := clusterOptions(t)
		cfg := chunkstore.DefaultConfig()
		if compression != "" {
			cfg.Compression = compression
		}
		initStore(t, opts, cfg)
		return wrap(t, mustOpen(t, opts), compression != "")
	}
}

// wrap returns s, or s under Encoded with its config's compression.
func wrap(t *testing.T, s *Store, encoded bool) chunkstore.Store {
	t.Helper()
	var out chunkstore.Store = s
	if encoded {
		cfg := s.Config()
		es, err := chunkstore.NewEncoded(s, cfg.Hash, cfg.Compression)
		if err != nil {
			t.Fatal(err)
		}
		out = es
	}
	optsOf.Store(out, s.Conn().Options())
	return out
}

func reopen(t *testing.T, s chunkstore.Store) chunkstore.Store {
	t.Helper()
	v, ok := optsOf.LoadAndDelete(s)
	if !ok {
		t.Fatalf("reopen: %v was not opened by this test", s.Properties().Name)
	}
	_, raw := s.(*Store)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return wrap(t, mustOpen(t, v.(Options)), !raw)
}

func TestConformance(t *testing.T) {
	requireCluster(t)
	chunkstoretest.RunReopen(t, openSuite(""), reopen)
}

// TestConformanceEncoded runs the suite over the stack casfs uses, for each
// compression setting.
func TestConformanceEncoded(t *testing.T) {
	requireCluster(t)
	for _, comp := range []string{chunkstore.CompressionZstd, chunkstore.CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			chunkstoretest.RunReopen(t, openSuite(comp), reopen)
		})
	}
}

// TestLargestChunk puts the largest chunk a chunker can make, framed, which
// is larger than the suite's: one object, one write op, one read.
func TestLargestChunk(t *testing.T) {
	s := openSuite(chunkstore.CompressionZstd)(t)
	defer s.Close()
	data := chunkstoretest.RandomBytes(42, chunkstore.MaxChunkSize)
	id := chunkstore.HashBLAKE3.Sum(data)
	ctx := context.Background()
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Fatalf("Get returned %d bytes that differ from the %d put", len(got), len(data))
	}
}

func TestInit(t *testing.T) {
	opts := clusterOptions(t)
	cfg := chunkstore.DefaultConfig()
	cfg.Compression = chunkstore.CompressionNone
	initStore(t, opts, cfg)

	s := mustOpen(t, opts)
	defer s.Close()
	got := s.Config()
	if len(got.ID) != 32 {
		t.Errorf("store id %q: want 32 hex digits", got.ID)
	}
	cfg.ID = got.ID
	if got != cfg {
		t.Errorf("Config() = %+v, want %+v", got, cfg)
	}
	if want := "rados://" + opts.Pool + "/" + opts.Namespace; s.Properties().Name != want {
		t.Errorf("Name = %q, want %q", s.Properties().Name, want)
	}

	c, err := Connect(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = Init(context.Background(), c, chunkstore.DefaultConfig())
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), opts.Pool) {
		t.Errorf("Init over a store: %v; want ErrExists naming the pool", err)
	}
	if s2 := mustOpen(t, opts); s2.Config() != got {
		t.Errorf("a second Init changed the config to %+v", s2.Config())
	} else {
		s2.Close()
	}

	bad := chunkstore.DefaultConfig()
	bad.Hash = "md5"
	if err := Init(context.Background(), c, bad); !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Errorf("Init with hash md5: %v", err)
	}
}

// TestNamespaces checks that stores in one pool under different namespaces
// do not see each other's chunks.
func TestNamespaces(t *testing.T) {
	a, b := clusterOptions(t), clusterOptions(t)
	initStore(t, a, chunkstore.DefaultConfig())
	initStore(t, b, chunkstore.DefaultConfig())
	sa, sb := mustOpen(t, a), mustOpen(t, b)
	defer sa.Close()
	defer sb.Close()
	data := []byte("only in a")
	id := chunkstore.HashBLAKE3.Sum(data)
	ctx := context.Background()
	if err := sa.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if ok, err := sb.Has(ctx, id); ok || err != nil {
		t.Errorf("store b has a's chunk: %v, %v", ok, err)
	}
	n := 0
	if err := sb.List(ctx, func(chunkstore.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("store b lists %d chunks (err %v); want 0", n, err)
	}
}

func TestOpenNoStore(t *testing.T) {
	opts := clusterOptions(t)
	_, err := Open(context.Background(), opts)
	if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), opts.Pool) || !strings.Contains(err.Error(), opts.Namespace) {
		t.Errorf("Open of an empty namespace: %v; want ErrNoStore naming the pool and namespace", err)
	}
}

func TestOpenUnknownFormat(t *testing.T) {
	opts := clusterOptions(t)
	initStore(t, opts, chunkstore.DefaultConfig())
	c, err := Connect(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := readObject(c.meta, configName)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["format"] = 99
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := c.meta.WriteFull(configName, b); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), opts)
	if !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Fatalf("Open of a format-99 store: %v; want ErrUnknownFormat", err)
	}
	if msg := err.Error(); !strings.Contains(msg, opts.Pool) || !strings.Contains(msg, configName) || !strings.Contains(msg, "99") {
		t.Errorf("error %q does not name the pool, the config object and the format", msg)
	}

	if err := c.meta.WriteFull(configName, []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err = Open(context.Background(), opts); !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Errorf("Open with a garbled config: %v; want ErrUnknownFormat", err)
	}
}

func TestOpenCancelled(t *testing.T) {
	opts := clusterOptions(t)
	initStore(t, opts, chunkstore.DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
}

// connectFails connects with opts and checks that it fails with want,
// naming each of words, within limit.
func connectFails(t *testing.T, opts Options, want error, limit time.Duration, words ...string) {
	t.Helper()
	start := time.Now()
	c, err := Connect(context.Background(), opts)
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatalf("Connect succeeded; want an error matching %v", want)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, want) {
		t.Errorf("Connect: %v; want an error matching %v", err, want)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Connect: %q does not say %q", err, w)
		}
	}
	if took > limit {
		t.Errorf("Connect took %v to fail; want at most %v", took, limit)
	}
}

// writeKeyring writes a keyring holding a random, well-formed cephx key for
// client.user: a key the cluster does not know.
func writeKeyring(t *testing.T, user string) string {
	t.Helper()
	// A cephx key: type (1, AES), creation time (sec, nsec), length, secret.
	var k [28]byte
	binary.LittleEndian.PutUint16(k[0:], 1)
	binary.LittleEndian.PutUint32(k[2:], uint32(time.Now().Unix()))
	binary.LittleEndian.PutUint16(k[10:], 16)
	_, _ = rand.Read(k[12:])
	p := filepath.Join(t.TempDir(), "keyring")
	body := fmt.Sprintf("[client.%s]\n\tkey = %s\n", user, base64.StdEncoding.EncodeToString(k[:]))
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConnectUnreachable needs no cluster: it points at a port where no
// monitor listens and checks that Connect gives up after Options.Timeout.
func TestConnectUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	dir := t.TempDir()
	conf := filepath.Join(dir, "ceph.conf")
	body := fmt.Sprintf("[global]\nmon host = 127.0.0.1:%d\nkeyring = %s\nadmin socket =\nlog file =\n",
		port, writeKeyring(t, "admin"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	connectFails(t, Options{ConfFile: conf, Pool: "p", Timeout: timeout}, ErrUnreachable,
		timeout+5*time.Second, "no monitor answered", conf)
}

// TestConnectNoConfig needs no cluster.
func TestConnectNoConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.conf")
	_, err := Connect(context.Background(), Options{ConfFile: missing, Pool: "p"})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Connect with a missing config file: %v; want an error naming it", err)
	}
	if _, err := Connect(context.Background(), Options{ConfFile: missing}); err == nil || !strings.Contains(err.Error(), "no pool") {
		t.Errorf("Connect without a pool: %v", err)
	}
}

func TestConnectNoPool(t *testing.T) {
	opts := clusterOptions(t)
	opts.Pool = "casfs-no-such-pool-" + opts.Namespace
	connectFails(t, opts, ErrNoPool, 5*time.Second, opts.Pool, "ceph osd pool create")
}

func TestConnectBadKey(t *testing.T) {
	opts := clusterOptions(t)
	user := opts.User
	if user == "" {
		user = DefaultUser
	}
	opts.Keyring = writeKeyring(t, user)
	opts.Timeout = 5 * time.Second
	connectFails(t, opts, ErrAuth, opts.Timeout+5*time.Second, "client."+user, opts.Keyring)
}

func TestConnectUnknownUser(t *testing.T) {
	opts := clusterOptions(t)
	opts.User = "casfs-nobody"
	opts.Timeout = 5 * time.Second
	connectFails(t, opts, ErrAuth, opts.Timeout+5*time.Second, "client.casfs-nobody")
}

// TestConcurrencyLimit needs no cluster: it checks the semaphore every
// librados call goes through, with calls that block until released.
func TestConcurrencyLimit(t *testing.T) {
	const limit, callers = 3, 12
	c := &Conn{sem: make(chan struct{}, limit)}
	var (
		mu             sync.Mutex
		inFlight, peak int
		ran            atomic.Int32
	)
	release := make(chan struct{})
	started := make(chan struct{}, callers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			errs <- c.call(ctx, func() error {
				mu.Lock()
				inFlight++
				peak = max(peak, inFlight)
				mu.Unlock()
				ran.Add(1)
				started <- struct{}{}
				<-release
				mu.Lock()
				inFlight--
				mu.Unlock()
				return nil
			})
		})
	}
	for range limit {
		<-started
	}
	// The other callers wait for a slot. Give them a chance to (wrongly)
	// start; none may.
	time.Sleep(50 * time.Millisecond)
	if n := ran.Load(); n != limit {
		t.Errorf("%d calls started with %d slots", n, limit)
	}
	// Cancel: the waiting callers give up without running, the running
	// ones finish and report the cancellation.
	cancel()
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call after cancel: %v; want context.Canceled", err)
		}
	}
	if p := peak; p > limit {
		t.Errorf("%d calls were in flight at once; the limit is %d", p, limit)
	}
	if n := ran.Load(); n != limit {
		t.Errorf("%d calls ran; want only the %d that had slots before the cancel", n, limit)
	}
	if len(c.sem) != 0 {
		t.Errorf("%d slots still taken after all calls returned", len(c.sem))
	}
}

// TestConcurrencyProperty checks that the limit is what the store reports.
func TestConcurrencyProperty(t *testing.T) {
	opts := clusterOptions(t)
	opts.Concurrency = 3
	initStore(t, opts, chunkstore.DefaultConfig())
	s := mustOpen(t, opts)
	defer s.Close()
	if p := s.Properties(); p.Concurrency != 3 || cap(s.c.sem) != 3 {
		t.Errorf("Concurrency = %d, semaphore %d; want 3", p.Concurrency, cap(s.c.sem))
	}
}

// TestCloseWaitsForCalls checks that Close waits for a call in flight
// before it frees the librados handles that call uses, and that calls after
// it fail with ErrClosed. Freeing them under the call crashed the process
// (a chunk cache's background fetch against a store being closed).
func TestCloseWaitsForCalls(t *testing.T) {
	opts := clusterOptions(t)
	initStore(t, opts, chunkstore.DefaultConfig())
	s := mustOpen(t, opts)
	id := chunkstore.HashBLAKE3.Sum([]byte("close"))
	if err := s.Put(context.Background(), id, []byte("close")); err != nil {
		t.Fatal(err)
	}
	inCall, release := make(chan struct{}), make(chan struct{})
	callErr := make(chan error, 1)
	go func() {
		callErr <- s.c.Call(context.Background(), func() error {
			close(inCall)
			<-release
			_, err := s.c.chunks.Stat(id.String()) // the handle Close would free
			return err
		})
	}()
	<-inCall
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a call was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-callErr; err != nil {
		t.Errorf("the call in flight during Close: %v", err)
	}
	<-closed
	if _, err := s.Get(context.Background(), id); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v; want ErrClosed", err)
	}
	s.Close() // again: nothing
}

// TestCloseUnderLoad closes a store while readers and writers hammer it:
// every call either works or says ErrClosed, and nothing crashes (the old
// Close crashed this test with a SIGSEGV in rados_read).
func TestCloseUnderLoad(t *testing.T) {
	opts := clusterOptions(t)
	initStore(t, opts, chunkstore.DefaultConfig())
	s := mustOpen(t, opts)
	var ids []chunkstore.ID
	for i := range 32 {
		b := []byte(fmt.Sprintf("load %d", i))
		id := chunkstore.HashBLAKE3.Sum(b)
		if err := s.Put(context.Background(), id, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	var calls atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				var err error
				if id := ids[(w+i)%len(ids)]; i%4 == 0 {
					err = s.Put(context.Background(), id, []byte("x"))
				} else {
					_, err = s.Get(context.Background(), id)
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("before Close: %v", err)
					return
				}
				calls.Add(1)
			}
		})
	}
	for calls.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	s.Close()
	wg.Wait()
}

// sizes records the sizes Get is asked for.
type sizes struct {
	chunkstore.Buffers
	got []int
}

func (s *sizes) Get(n int) []byte { s.got = append(s.got, n); return s.Buffers.Get(n) }

// TestGetBufferedHintReadsInPlace: with a size hint, a chunk is read
// straight into one buffer from the lender (no read into the store's own
// buffer and copy); a hint that is too small still gives the whole chunk.
func TestGetBufferedHintReadsInPlace(t *testing.T) {
	opts := clusterOptions(t)
	initStore(t, opts, chunkstore.DefaultConfig())
	s := mustOpen(t, opts)
	defer s.Close()
	ctx := context.Background()
	data := make([]byte, 300<<10)
	_, _ = rand.Read(data)
	id := chunkstore.HashBLAKE3.Sum(data)
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hint int
		want []int // the sizes asked of the lender
	}{
		{len(data), []int{len(data) + 1}},
		{len(data) + 100, []int{len(data) + 101}},
		{len(data) - 1, []int{len(data), len(data)}}, // too small: read again, unhinted
	} {
		l := chunkstoretest.NewLender(t)
		rec := &sizes{Buffers: l}
		got, buf, err := s.GetBuffered(ctx, id, chunkstore.WithSizeHint(rec, tc.hint))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("hint %d: %d bytes, %v", tc.hint, len(got), err)
		}
		if fmt.Sprint(rec.got) != fmt.Sprint(tc.want) {
			t.Errorf("hint %d: lender asked for %v; want %v", tc.hint, rec.got, tc.want)
		}
		l.Put(buf)
		l.Check()
	}
}
