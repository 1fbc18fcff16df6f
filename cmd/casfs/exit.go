package main

import (
	"errors"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/local"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// Exit codes, in one place. Scripts can tell "the data is damaged" and "the
// store is busy" from other failures.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitDamaged = 3 // fsck found problems, or corrupt data was met
	exitInUse   = 4 // the store is locked by another casfs process
	// exitInterrupted is what shells report for a command ended by
	// SIGINT; casfs stops cleanly on SIGINT or SIGTERM and says so.
	exitInterrupted = 130
)

// errDamaged wraps a report of problems found (fsck).
var errDamaged = errors.New("damage found")

func exitCode(err error) int {
	switch {
	case errors.Is(err, errDamaged), errors.Is(err, chunkstore.ErrCorrupt), errors.Is(err, recipe.ErrInvalid),
		// A chunk a version needs is gone from the store: damage, as fsck
		// says too.
		errors.Is(err, chunkstore.ErrNotFound):
		return exitDamaged
	case errors.Is(err, local.ErrLocked), errors.Is(err, versions.ErrInUse):
		return exitInUse
	}
	return exitError
}
