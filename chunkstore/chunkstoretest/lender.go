package chunkstoretest

import (
	"sync"
	"testing"
)

// Lender is a chunkstore.Buffers that checks its borrowers: it fills what
// it lends with junk (nobody may count on lent memory being zeroed), fails
// the test on a Put of a buffer it did not lend or that came back already,
// and Check fails it for buffers not given back.
type Lender struct {
	t   testing.TB
	mu  sync.Mutex
	out map[*byte]bool
}

// NewLender returns a Lender reporting to t.
func NewLender(t testing.TB) *Lender { return &Lender{t: t, out: map[*byte]bool{}} }

// Get lends a buffer of length n.
func (l *Lender) Get(n int) []byte {
	b := make([]byte, n, max(n, 1))
	for i := range b {
		b[i] = 0xa5
	}
	l.mu.Lock()
	l.out[&b[:1][0]] = true
	l.mu.Unlock()
	return b
}

// Put takes a lent buffer back.
func (l *Lender) Put(b []byte) {
	l.t.Helper()
	if cap(b) == 0 {
		l.t.Errorf("Put of an empty buffer, which this Lender never lends")
		return
	}
	k := &b[:1][0]
	l.mu.Lock()
	lent := l.out[k]
	delete(l.out, k)
	l.mu.Unlock()
	if !lent {
		l.t.Errorf("Put of a buffer (cap %d) that is not lent: never, or given back already", cap(b))
	}
}

// Check fails the test if any buffer is still lent.
func (l *Lender) Check() {
	l.t.Helper()
	l.mu.Lock()
	n := len(l.out)
	l.mu.Unlock()
	if n > 0 {
		l.t.Errorf("%d lent buffers not given back", n)
	}
}
