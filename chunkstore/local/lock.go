package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is matched (errors.Is) by the error Open returns when another
// open store holds the lock; the error is a *LockedError.
var ErrLocked = errors.New("store is locked")

// Holder describes the process that has a store open. It is written into the
// lock file so that the next process to try can say who is in the way.
type Holder struct {
	PID      int       `json:"pid"`
	Host     string    `json:"host"`
	Owner    string    `json:"owner,omitempty"` // Options.Owner
	Since    time.Time `json:"since"`
	ReadOnly bool      `json:"read_only,omitempty"`
}

// LockedError reports a store held by someone else.
type LockedError struct {
	Dir    string
	Holder *Holder // nil if the holder has not (yet) written who it is
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h == nil {
		// The holder writes its info right after taking the lock, so this
		// is a race with an Open in progress or a damaged lock file.
		return fmt.Sprintf("store %s is in use by another process (which has not recorded who it is)", e.Dir)
	}
	who := h.Owner
	if who == "" {
		who = "another casfs process"
	}
	mode := ""
	if h.ReadOnly {
		mode = ", read-only"
	}
	return fmt.Sprintf("store %s is in use by %s (pid %d on host %s, since %s%s)",
		e.Dir, who, h.PID, h.Host, h.Since.Local().Format(time.RFC3339), mode)
}

// Is makes errors.Is(err, ErrLocked) true for a *LockedError.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// lockStore takes the exclusive lock on path and records the holder in it.
// The returned file holds the lock until it is closed.
func lockStore(dir, path string, opts Options) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	writable := err == nil
	if err != nil && opts.ReadOnly && (errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) {
		// A read-only store on read-only media still gets locked;
		// flock works on a read-only descriptor. It just cannot say
		// who holds it.
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Dir: dir, Holder: readHolder(f)}
		}
		return nil, fmt.Errorf("lock store %s: flock %s: %w", dir, path, err)
	}
	if writable {
		host, _ := os.Hostname()
		h := Holder{
			PID:      os.Getpid(),
			Host:     host,
			Owner:    opts.Owner,
			Since:    time.Now().Round(time.Second),
			ReadOnly: opts.ReadOnly,
		}
		// The flock is the lock; who holds it is only for messages. On a
		// full disk it cannot be written, and failing here would stop
		// fsck and gc, the very commands that free space.
		if err := writeHolder(f, &h); err != nil {
			slog.Warn("could not record the lock holder", "path", path, "err", err)
		}
	}
	return f, nil
}

// unlockStore clears the holder info and releases the lock.
func unlockStore(f *os.File) error {
	// Clearing is cosmetic (the next holder overwrites it), so a failure,
	// e.g. on a read-only descriptor, is not worth reporting.
	_ = f.Truncate(0)
	// Closing the last descriptor releases the flock.
	return f.Close()
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), how)
			if ferr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

func writeHolder(f *os.File, h *Holder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt(append(b, '\n'), 0)
	return err
}

// readHolder returns the holder recorded in f, or nil if there is none.
func readHolder(f *os.File) *Holder {
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	var h Holder
	if n == 0 || json.Unmarshal(b[:n], &h) != nil || h.PID == 0 {
		return nil
	}
	return &h
}
