// Package integration drives real casfs mounts with real programs: cp, diff,
// tar, sha256sum, git, sqlite3, stress-ng's filesystem stressors, dbench's
// file-server load and shell redirections, each run as its own process
// against a `casfs mount` that runs as a subprocess too, the way a user
// runs it.
//
// It holds only tests. TestMain builds the casfs binary once into a temp
// directory (with -race when CASFS_INTEGRATION_RACE is set: about 3× slower,
// so CI runs the plain build and leaves data races to the in-process tests of
// package fs).
//
// Words used here:
//
//   - A mount is one `casfs mount STORE MNT` process, started in its own
//     session with stdin from /dev/null, its stderr kept and printed when a
//     test fails. It is ready when MNT appears in /proc/self/mountinfo as a
//     fuse.casfs mount and answers statfs (which the kernel never answers
//     from its cache, unlike stat), and every mount is unmounted when its
//     test ends: by
//     SIGTERM, then, if casfs does not exit in time, by a lazy unmount and
//     SIGKILL (and the test fails). A casfs that was not killed on purpose
//     must exit 0.
//   - A stale mount is what a SIGKILLed casfs leaves: MNT stays listed and
//     every access fails with ENOTCONN until it is unmounted.
//
// Nothing waits a fixed time: every wait polls a condition (a mount listed,
// a log line, a process gone) until a deadline, so a slow machine takes
// longer and a broken casfs fails instead of hanging.
//
// External tools (fusermount3 and /dev/fuse, git, sqlite3, tar, diff,
// sha256sum, stress-ng, dbench) are required when CASFS_REQUIRE_EXTERNAL is
// set, as scripts/test.sh does in CI: a missing one fails the test there,
// and skips it, with the reason, elsewhere. scripts/install-deps.sh
// installs them.
package integration
