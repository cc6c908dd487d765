//go:build !race

package engine

// raceDetector is true in binaries built with -race.
const raceDetector = false
