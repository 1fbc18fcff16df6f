package chunker

import (
	"errors"
	"io"
)

// errBadCount is returned for a reader that claims to have read more bytes
// than it was given room for, or fewer than none.
var errBadCount = errors.New("chunker: reader returned an impossible byte count")

// maxEmptyReads is how many reads in a row may return no data and no error
// before fill gives up with io.ErrNoProgress, as bufio does: a reader that
// never makes progress would otherwise spin forever.
const maxEmptyReads = 100

// fill reads from r into buf until buf is full, the stream ends or r fails.
// It returns how many bytes it read, whether the stream ended (io.EOF, even
// when it came with data) and any other error. Readers may return fewer
// bytes than asked for at any time; fill keeps reading, like io.ReadFull.
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	empty := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		if m < 0 || m > len(buf)-n {
			return n, false, errBadCount
		}
		n += m
		switch {
		case err == io.EOF:
			return n, true, nil
		case err != nil:
			return n, false, err
		case m == 0:
			empty++
			if empty >= maxEmptyReads {
				return n, false, io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return n, false, nil
}
