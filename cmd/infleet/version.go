package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at link time by the Makefile and the Dockerfile:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)" ./cmd/infleet
//
// Left empty, they come from the module version and the VCS stamp Go writes into the binary
// (runtime/debug.ReadBuildInfo), as with `go install github.com/infleet/infleet/cmd/infleet@v1.2.3`.
var (
	version string
	commit  string
)

// buildVersion is what `infleet version` prints.
type buildVersion struct {
	Version, Commit, Go, Platform string
}

// currentVersion returns the binary's version, commit, Go version and platform.
func currentVersion() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, commit, info)
}

// versionOf picks the version and commit: the link-time values linkVersion and linkCommit first,
// then info (the main module's version, the vcs.revision stamp with "-dirty" when vcs.modified;
// info may be nil); "dev" and "unknown" when neither says.
func versionOf(linkVersion, linkCommit string, info *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: linkVersion, Commit: linkCommit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info != nil {
		if mv := info.Main.Version; v.Version == "" && mv != "" && mv != "(devel)" {
			v.Version = mv
		}
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if v.Commit == "" && rev != "" {
			v.Commit = rev
			if modified == "true" {
				v.Commit += "-dirty"
			}
		}
	}
	v.Version = cmp.Or(v.Version, "dev")
	v.Commit = cmp.Or(v.Commit, "unknown")
	return v
}

// runVersion is `infleet version` (and `infleet --version`).
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", "Prints the version, the commit it was built from and the Go version.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "version", "takes no arguments (got %q)", fs.Args())
	}
	v := currentVersion()
	fmt.Fprintf(stdout, "infleet %s\ncommit   %s\ngo       %s %s\n", v.Version, v.Commit, v.Go, v.Platform)
	return 0
}
