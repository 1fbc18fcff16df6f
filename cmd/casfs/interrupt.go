package main

import (
	"context"
	"io"
)

// interruptible returns a reader of r whose Read returns ctx's error as
// soon as ctx ends, even while a Read of r is blocked. Standard input on a
// terminal, or a pipe whose writer is silent, blocks in read(2), which no
// signal interrupts here (Go restarts it): without this, Ctrl-C would not
// stop `casfs put` reading it, and the store would stay locked until the
// input ended.
//
// One goroutine reads r ahead into two buffers of its own, which Read
// copies out. A read still blocked when ctx ends is left behind: put is
// then on its way to exit.
func interruptible(ctx context.Context, r io.Reader) io.Reader {
	c := &ctxReader{ctx: ctx, full: make(chan chunk, 1), free: make(chan []byte, 2)}
	for range 2 {
		c.free <- make([]byte, 1<<20)
	}
	go c.fill(r)
	return c
}

type chunk struct {
	buf []byte // what was read; its backing array goes back to free
	err error
}

type ctxReader struct {
	ctx  context.Context
	full chan chunk
	free chan []byte
	cur  chunk // the chunk Read is copying out of
	rest []byte
	err  error // sticky
}

func (c *ctxReader) fill(r io.Reader) {
	for {
		var buf []byte
		select {
		case buf = <-c.free:
		case <-c.ctx.Done():
			return
		}
		n, err := r.Read(buf[:cap(buf)])
		select {
		case c.full <- chunk{buf[:n], err}:
		case <-c.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *ctxReader) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.cur.buf != nil {
			c.free <- c.cur.buf[:0]
			c.cur.buf = nil
		}
		select {
		case c.cur = <-c.full:
			c.rest, c.err = c.cur.buf, c.cur.err
		case <-c.ctx.Done():
			c.err = c.ctx.Err()
			return 0, c.err
		}
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}
