package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/config"
)

var (
	dockerfilePath   = filepath.Join(root, "deploy", "Dockerfile")
	dockerignorePath = filepath.Join(root, "deploy", "Dockerfile.dockerignore")
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line  int
	cmd   string // upper case: FROM, RUN, COPY...
	flags []string
	args  string // the rest, flags removed
}

// stage is one FROM and the instructions after it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile reads the Dockerfile into stages: enough of the syntax for these checks
// (comments, line continuations, --flags), not a full parser.
func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatalf("read deploy/Dockerfile: %v", err)
	}
	var insts []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		body, cont := strings.CutSuffix(line, "\\")
		cur.WriteString(body + " ")
		if cont {
			continue
		}
		fields := strings.Fields(cur.String())
		cur.Reset()
		inst := instruction{line: start, cmd: strings.ToUpper(fields[0])}
		rest := fields[1:]
		for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
			inst.flags = append(inst.flags, rest[0])
			rest = rest[1:]
		}
		inst.args = strings.Join(rest, " ")
		insts = append(insts, inst)
	}
	var stages []stage
	for _, in := range insts {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("deploy/Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if len(stages) < 2 {
		t.Fatalf("deploy/Dockerfile has %d stages, want a builder and a final stage", len(stages))
	}
	return stages
}

// find returns the instructions cmd of s.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last returns the last instruction cmd of s, as Docker applies it.
func (s stage) last(t *testing.T, cmd string) instruction {
	t.Helper()
	all := s.find(cmd)
	if len(all) == 0 {
		t.Fatalf("deploy/Dockerfile: the final stage has no %s", cmd)
	}
	return all[len(all)-1]
}

// execForm decodes a JSON-array (exec form) argument.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(in.args), &out); err != nil || len(out) == 0 {
		t.Fatalf("deploy/Dockerfile:%d: %s %s: use the exec form, a JSON array (no shell in distroless)", in.line, in.cmd, in.args)
	}
	return out
}

// goVersion returns go.mod's go line ("1.26.0").
func goVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("read go.mod: %v", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go line")
	return ""
}

// versionParts splits "1.26.3" into numbers; it stops at the first part that is not one.
func versionParts(v string) []int {
	var out []int
	for p := range strings.SplitSeq(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

// TestDockerfileBuilder checks the build stage: the Go release go.mod asks for, a static build
// of ./cmd/infleet with a module cache.
func TestDockerfileBuilder(t *testing.T) {
	t.Parallel()
	build := parseDockerfile(t)[0]
	repo, tag, _ := strings.Cut(build.image, ":")
	if repo != "golang" && repo != "docker.io/library/golang" {
		t.Fatalf("deploy/Dockerfile: the builder is %s, want golang:<go.mod's go version>", build.image)
	}
	tag, _, _ = strings.Cut(tag, "-") // 1.26-bookworm
	want, got := versionParts(goVersion(t)), versionParts(tag)
	if len(got) < 2 || len(want) < 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("deploy/Dockerfile: builder golang:%s, but go.mod says go %s; move them together", tag, goVersion(t))
	} else if len(got) > 2 && len(want) > 2 && got[2] < want[2] {
		t.Errorf("deploy/Dockerfile: builder golang:%s is older than go.mod's go %s", tag, goVersion(t))
	}

	var buildRun instruction
	for _, in := range build.find("RUN") {
		if strings.Contains(in.args, "go build") {
			buildRun = in
		}
	}
	if buildRun.cmd == "" {
		t.Fatal("deploy/Dockerfile: the builder has no RUN ... go build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "./cmd/infleet"} {
		if !strings.Contains(buildRun.args, want) {
			t.Errorf("deploy/Dockerfile:%d: the go build lacks %s", buildRun.line, want)
		}
	}
	if !slices.ContainsFunc(buildRun.flags, func(f string) bool {
		return strings.HasPrefix(f, "--mount=type=cache") && strings.Contains(f, "target=/go/pkg/mod")
	}) {
		t.Errorf("deploy/Dockerfile:%d: the go build has no module cache mount (--mount=type=cache,target=/go/pkg/mod)", buildRun.line)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "infleet", "main.go")); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/infleet, which is gone: %v", err)
	}
}

// TestDockerfileImage checks the final stage: distroless, non-root, the binary as entrypoint
// and `serve` as the default command, the default port exposed, the data under the volume.
func TestDockerfileImage(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t)
	build, final := stages[0], stages[len(stages)-1]
	if final.image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("deploy/Dockerfile: the final stage is %s, want gcr.io/distroless/static-debian12:nonroot", final.image)
	}

	// The binary the builder writes is the one copied and run.
	var out string
	for _, in := range build.find("RUN") {
		if _, after, ok := strings.Cut(in.args, "go build"); ok {
			if f := strings.Fields(after); slices.Contains(f, "-o") {
				out = f[slices.Index(f, "-o")+1]
			}
		}
	}
	entry := execForm(t, final.last(t, "ENTRYPOINT"))
	copied := false
	for _, in := range final.find("COPY") {
		f := strings.Fields(in.args)
		fromBuild := slices.Contains(in.flags, "--from="+build.name)
		if fromBuild && len(f) == 2 && f[0] == out && f[1] == entry[0] {
			copied = true
		}
	}
	if path.Base(entry[0]) != "infleet" || len(entry) != 1 || !copied {
		t.Errorf("deploy/Dockerfile: ENTRYPOINT %q should be the binary the builder wrote (%s), copied from stage %s", entry, out, build.name)
	}
	cmd := execForm(t, final.last(t, "CMD"))
	if cmd[0] != "serve" || !slices.Contains(commands(t), cmd[0]) {
		t.Errorf("deploy/Dockerfile: CMD %q, want [\"serve\", ...]", cmd)
	}

	_, port, _ := net.SplitHostPort(config.DefaultAddr)
	if got := final.last(t, "EXPOSE").args; strings.TrimSuffix(got, "/tcp") != port {
		t.Errorf("deploy/Dockerfile: EXPOSE %s, but infleet listens on %s by default", got, config.DefaultAddr)
	}
	user := final.last(t, "USER").args
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("deploy/Dockerfile: USER %s, want a numeric non-root uid (runAsNonRoot can verify it)", user)
	}
	var volumes []string
	if err := json.Unmarshal([]byte(final.last(t, "VOLUME").args), &volumes); err != nil {
		volumes = strings.Fields(final.last(t, "VOLUME").args)
	}
	workdir := final.last(t, "WORKDIR").args
	dataDir := path.Join(workdir, config.DefaultDataDir)
	if !slices.Contains(volumes, "/var/lib/infleet") || !strings.HasPrefix(dataDir, "/var/lib/infleet/") {
		t.Errorf("deploy/Dockerfile: VOLUME %v, WORKDIR %s: the default data_dir (%s) should land under the volume /var/lib/infleet", volumes, workdir, dataDir)
	}
}

// goPackage is the part of `go list -json` these tests read.
type goPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	EmbedFiles []string
	Module     *struct{ Path string }
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// TestBuildContext lists what `go build ./cmd/infleet` reads, as the Dockerfile builds it
// (linux, no cgo), and checks that the binary builds without cgo and that
// deploy/Dockerfile.dockerignore leaves every file it needs in the build context.
func TestBuildContext(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "list", "-deps", "-e", "-json=ImportPath,Dir,GoFiles,EmbedFiles,Module,Error,DepsErrors", "./cmd/infleet")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("%s does not build with CGO_ENABLED=0 on linux (the image is distroless/static): %s", p.ImportPath, p.Error.Err)
		}
		if p.Module == nil || p.Module.Path != "github.com/infleet/infleet" {
			continue
		}
		dir, err := filepath.Rel(abs, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range slices.Concat(p.GoFiles, p.EmbedFiles) {
			needed = append(needed, filepath.ToSlash(filepath.Join(dir, f)))
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	patterns := readDockerignore(t)
	for _, f := range needed {
		if p := ignoredBy(patterns, f); p != "" {
			t.Errorf("deploy/Dockerfile.dockerignore: %q leaves %s out of the build context, and the build needs it", p, f)
		}
	}
	for _, f := range []string{".git/HEAD", "bin/infleet", "deploy/k8s/base/kustomization.yaml", "infleet", "adapters/sqs/testdata/x"} {
		if ignoredBy(patterns, f) == "" {
			t.Errorf("deploy/Dockerfile.dockerignore sends %s to the builder; leave it out", f)
		}
	}
}

// ignorePattern is one line of a .dockerignore.
type ignorePattern struct {
	text   string
	negate bool
	re     *regexp.Regexp
}

func readDockerignore(t *testing.T) []ignorePattern {
	t.Helper()
	data, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatalf("read deploy/Dockerfile.dockerignore: %v", err)
	}
	var out []ignorePattern
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{text: line}
		line, p.negate = strings.CutPrefix(line, "!")
		line = strings.TrimPrefix(path.Clean(strings.TrimSpace(line)), "/")
		p.re = regexp.MustCompile("^" + globRegexp(line) + "$")
		out = append(out, p)
	}
	return out
}

// globRegexp translates a .dockerignore pattern as BuildKit reads it: ** spans directories,
// * and ? stay within one.
func globRegexp(pat string) string {
	var sb strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case strings.HasPrefix(pat[i:], "**/"):
			sb.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(pat[i:], "**"):
			sb.WriteString(".*")
			i++
		case c == '*':
			sb.WriteString("[^/]*")
		case c == '?':
			sb.WriteString("[^/]")
		default:
			sb.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return sb.String()
}

// ignoredBy returns the pattern that leaves file (slash-separated, from the context root) out,
// or "": a pattern matching the file or one of its parent directories counts, and the last
// matching pattern wins.
func ignoredBy(patterns []ignorePattern, file string) string {
	by := ""
	for _, p := range patterns {
		matched := false
		for f := file; f != "." && f != "/"; f = path.Dir(f) {
			if p.re.MatchString(f) {
				matched = true
				break
			}
		}
		if !matched {
			continue
		}
		by = p.text
		if p.negate {
			by = ""
		}
	}
	return by
}
