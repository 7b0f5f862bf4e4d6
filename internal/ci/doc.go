// Package ci holds no code: its tests check the CI engine's files that no
// go build reads (.github/workflows), so that a broken workflow fails
// `make test` here instead of a run on the CI engine.
package ci
