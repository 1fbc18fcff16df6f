//go:build race

package fs

// raceEnabled says the race detector is on: Go code runs 5-10 times slower.
const raceEnabled = true
