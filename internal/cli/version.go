package cli

import "runtime/debug"

// Version describes the build of the running binary from what the Go
// toolchain stamped into it (runtime/debug.ReadBuildInfo): the main
// module's version, then the VCS revision and "dirty" when the checkout
// had uncommitted changes, e.g. "v0.0.0-20261202031000-22981bf2c12f+dirty
// revision 22981bf2c12fa5d5f9299b909b90b3106f021358 dirty". A binary
// built outside a checkout (or with -buildvcs=false) has no revision;
// `go run`, `go test` and plain `go build` outside a tagged version say
// "(devel)". imp2-bench writes this string into results.json's
// environment, so a result names the code that measured it.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	return version(bi)
}

func version(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		v += " revision " + rev
		if modified == "true" {
			v += " dirty"
		}
	}
	return v
}
