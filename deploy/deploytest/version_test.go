package deploytest

import (
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// linkedVars are the cmd/infleet variables the builds set with -ldflags -X, printed by
// `infleet version`.
var linkedVars = []string{"version", "commit"}

// TestBuildsLinkVersion checks that `infleet version` exists and that both builds, the Makefile's
// and the Dockerfile's, link in the version and the commit, into variables that exist: a renamed
// variable would make -X a silent no-op.
func TestBuildsLinkVersion(t *testing.T) {
	t.Parallel()
	if !slices.Contains(commands(t), "version") {
		t.Error("cmd/infleet has no version subcommand")
	}
	declared := map[string]bool{}
	for _, f := range parseMain(t) {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
					for _, n := range vs.Names {
						declared[n.Name] = true
					}
				}
			}
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var dockerBuild string
	for _, in := range parseDockerfile(t)[0].find("RUN") {
		if strings.Contains(in.args, "go build") {
			dockerBuild = in.args
		}
	}
	for _, v := range linkedVars {
		if !declared[v] {
			t.Errorf("cmd/infleet declares no package-level string variable %s for -X main.%s", v, v)
		}
		if !strings.Contains(string(makefile), "-X main."+v+"=") {
			t.Errorf("Makefile: the build does not link -X main.%s=...", v)
		}
		if !strings.Contains(dockerBuild, "-X main."+v+"=") {
			t.Errorf("deploy/Dockerfile: the go build does not link -X main.%s=...", v)
		}
	}
	if !strings.Contains(string(makefile), `-ldflags "$(LDFLAGS)"`) {
		t.Error(`Makefile: the build target does not pass -ldflags "$(LDFLAGS)"`)
	}
}
