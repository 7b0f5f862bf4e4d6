// Package ptytest opens pseudo-terminals for tests of what a program does
// when its output is a terminal (imp2-record and imp2-replay refuse to
// write a binary trace to one).
package ptytest
