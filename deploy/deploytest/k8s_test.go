package deploytest

import (
	"cmp"
	"fmt"
	"io/fs"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/config"
)

// overlays returns the kustomize overlays under deploy/k8s/overlays.
func overlays(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(k8sDir, "overlays", "*", "kustomization.yaml"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no overlays under deploy/k8s/overlays: %v", err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

// components returns the kustomize components under deploy/k8s/components, which overlays may
// add (each is rendered with every overlay by the tests).
func components(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(k8sDir, "components", "*", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

// yamlFiles returns every YAML file under deploy/k8s.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(k8sDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("walk deploy/k8s: %v (%d files)", err, len(out))
	}
	return out
}

// TestManifestsAreWellFormed parses every YAML file under deploy/k8s: each is used by a
// kustomization, each manifest document names its apiVersion, kind and metadata.name, and each
// JSON patch is a list of operations.
func TestManifestsAreWellFormed(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	patches := map[string]bool{}
	for _, dir := range append(overlays(t), components(t)...) {
		m, p := kustomizeFiles(t, dir)
		for _, f := range m {
			used[filepath.Clean(f)] = true
		}
		for f, isJSON := range p {
			used[filepath.Clean(f)] = true
			patches[filepath.Clean(f)] = isJSON
		}
	}
	for _, f := range yamlFiles(t) {
		f = filepath.Clean(f)
		docs := readYAML(t, f)
		if filepath.Base(f) == "kustomization.yaml" {
			want := "Kustomization"
			if filepath.Base(filepath.Dir(filepath.Dir(f))) == "components" {
				want = "Component"
			}
			if k := str(docs[0], "kind"); k != want || str(docs[0], "apiVersion") == "" {
				t.Errorf("%s: kind %q, want a %s with an apiVersion", rel(f), k, want)
			}
			continue
		}
		if !used[f] {
			t.Errorf("%s: no overlay uses it; list it in a kustomization.yaml or delete it", rel(f))
		}
		if len(docs) == 0 {
			t.Errorf("%s: empty", rel(f))
		}
		if patches[f] {
			for i, op := range list(docs[0]) {
				if str(op, "op") == "" || !strings.HasPrefix(str(op, "path"), "/") {
					t.Errorf("%s: operation %d needs op and a /path", rel(f), i)
				}
			}
			continue
		}
		for i, d := range docs {
			for _, field := range []string{"apiVersion", "kind"} {
				if str(d, field) == "" {
					t.Errorf("%s: document %d has no %s", rel(f), i+1, field)
				}
			}
			if str(d, "metadata", "name") == "" {
				t.Errorf("%s: document %d (%s) has no metadata.name", rel(f), i+1, str(d, "kind"))
			}
		}
	}
}

// TestEnvNamesAreConfigKeys checks that every INFLEET_ variable the manifests set overrides a
// config key (or is one of the few other variables infleet reads), so that a typo or a renamed
// key cannot be ignored silently in a cluster.
func TestEnvNamesAreConfigKeys(t *testing.T) {
	t.Parallel()
	seen := 0
	for _, f := range yamlFiles(t) {
		for _, d := range readYAML(t, f) {
			for _, e := range envEntries(d) {
				if !strings.HasPrefix(e.name, config.EnvPrefix) {
					continue
				}
				seen++
				if unknown := config.UnknownEnv([]string{e.name + "=x"}); len(unknown) > 0 {
					t.Errorf("%s: %s is no config override (config.EnvNames lists them)", rel(f), e.name)
				} else if key, ok := config.EnvKey(e.name); ok {
					t.Logf("%s: %s sets %s", rel(f), e.name, key)
				}
			}
		}
	}
	if seen == 0 {
		t.Error("no INFLEET_ variable found in deploy/k8s: the secrets are expected to come in that way")
	}
}

// secretKeys are config keys whose values are secrets: they must come from a Secret, never
// from the ConfigMap.
var secretKeys = [][]string{
	{"store", "postgres", "dsn"},
	{"notify", "webhook", "secret"},
}

// TestOverlayConfigsLoad loads the config in each overlay's ConfigMap with the project's
// loader, with the INFLEET_ overrides the overlay's pods get (values from Secrets stand in as
// placeholders), and checks that it describes a fleet: shared transport, store and results,
// secrets kept out of the ConfigMap.
func TestOverlayConfigsLoad(t *testing.T) {
	t.Parallel()
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			manifests, patches := kustomizeFiles(t, dir)
			var docs []any
			for _, f := range manifests {
				docs = append(docs, readYAML(t, f)...)
			}
			var env []envEntry
			for _, d := range docs {
				env = append(env, envEntries(d)...)
			}
			for p := range patches {
				for _, d := range readYAML(t, p) {
					env = append(env, envEntries(d)...)
				}
			}
			data, source := fleetConfig(t, docs)
			if data == "" {
				t.Fatal("no ConfigMap infleet-config with an infleet.yaml key in the overlay")
			}
			cfg, err := config.LoadBytes([]byte(data), rel(dir)+": "+source, environ(env))
			if err != nil {
				t.Fatalf("the overlay's config does not load: %v", err)
			}
			checkFleetConfig(t, cfg, data)
		})
	}
}

// fleetConfig returns the infleet.yaml of the ConfigMap infleet-config among docs.
func fleetConfig(t *testing.T, docs []any) (data, source string) {
	t.Helper()
	for _, d := range docs {
		if str(d, "kind") == "ConfigMap" && str(d, "metadata", "name") == "infleet-config" {
			return str(d, "data", "infleet.yaml"), "ConfigMap infleet-config"
		}
	}
	return "", ""
}

// checkFleetConfig checks what every fleet config must be, beyond loading.
func checkFleetConfig(t *testing.T, cfg config.Config, raw string) {
	if cfg.Transport.Kind == config.TransportEmbedded || cfg.Store.Kind == config.StoreSQLite || cfg.Results.Kind == config.ResultsFile {
		t.Errorf("transport %s, store %s, results %s: a fleet of pods needs a shared transport, store and result store",
			cfg.Transport.Kind, cfg.Store.Kind, cfg.Results.Kind)
	}
	if !path.IsAbs(cfg.DataDir) {
		t.Errorf("data_dir %q: give an absolute path to a mounted volume (the root filesystem is read-only)", cfg.DataDir)
	}
	doc := decodeYAML(t, "infleet.yaml", []byte(raw))[0]
	for _, k := range secretKeys {
		if v := str(doc, k...); v != "" {
			t.Errorf("%s is in the ConfigMap; set it from the Secret with %s instead", strings.Join(k, "."),
				config.EnvPrefix+strings.ToUpper(strings.Join(k, "_")))
		}
	}
	for i, k := range list(doc, "auth", "api_keys") {
		if str(k, "key") != "" {
			t.Errorf("auth.api_keys[%d].key: a plain key in a ConfigMap; give key_sha256", i)
		}
	}
}

// objects indexes rendered documents by kind and name.
type objects map[string]map[string]any

func (o objects) get(kind, name string) any { return o[kind][name] }

func index(docs []any) objects {
	o := objects{}
	for _, d := range docs {
		kind := str(d, "kind")
		if o[kind] == nil {
			o[kind] = map[string]any{}
		}
		o[kind][str(d, "metadata", "name")] = d
	}
	return o
}

// TestRenderedOverlays builds each overlay and checks the fleet it describes: the processes
// run existing subcommands with the overlay's config, probes hit /healthz and /readyz on the
// port the process listens on, the pods are locked down and can write data_dir, the grace
// periods cover the shutdown's bounds, and the Service, budgets, KEDA ScaledObject and service
// accounts point at what exists.
func TestRenderedOverlays(t *testing.T) {
	t.Parallel()
	cmds := commands(t)
	bound := shutdownBound(t)
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			docs := render(t, dir)
			objs := index(docs)
			for i, d := range docs {
				if str(d, "apiVersion") == "" || str(d, "kind") == "" || str(d, "metadata", "name") == "" {
					t.Errorf("rendered document %d lacks apiVersion, kind or metadata.name", i+1)
				}
			}
			for role, want := range map[string]struct {
				replicas int // 0: left to the autoscaler
			}{"ingress": {replicas: 2}, "worker": {}} {
				name := "infleet-" + role
				dep := objs.get("Deployment", name)
				if dep == nil {
					t.Errorf("no Deployment %s", name)
					continue
				}
				n, set := num(dep, "spec", "replicas")
				switch {
				case want.replicas == 0 && set:
					t.Errorf("%s: replicas is set; the ScaledObject's autoscaler owns it (an apply would reset it)", name)
				case want.replicas != 0 && n != want.replicas:
					t.Errorf("%s: replicas %d, want %d", name, n, want.replicas)
				}
				checkDeployment(t, objs, name, role, cmds, bound)
			}
			for _, kind := range []string{"CronJob", "Job"} {
				for name, obj := range objs[kind] {
					spec := get(obj, "spec", "template", "spec")
					if kind == "CronJob" {
						spec = get(obj, "spec", "jobTemplate", "spec", "template", "spec")
					}
					checkPod(t, objs, kind+" "+name, "", spec, cmds)
				}
			}
			checkService(t, objs)
			checkBudgets(t, objs)
			checkScaledObject(t, objs, dir)
		})
	}
}

// flag returns the value of --name in args ("--name v" or "--name=v").
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// podFacts is what checkPod found out about a workload's pod, for the checks particular to its kind.
type podFacts struct {
	spec      any // the pod spec
	container any
	args      []string
	cfg       config.Config // as the process loads it
	env       []envEntry
}

// checkPod checks the pod of any workload running infleet: one container running an existing
// subcommand (role, when given) with --config from a mounted ConfigMap, a config that loads with
// the container's environment, the pod locked down, data_dir writable and the service account
// present (with an IAM role on AWS).
func checkPod(t *testing.T, objs objects, name, role string, pod any, cmds []string) (podFacts, bool) {
	containers := list(pod, "containers")
	if len(containers) != 1 {
		t.Errorf("%s: %d containers, want 1", name, len(containers))
		return podFacts{}, false
	}
	c := containers[0]
	if img := str(c, "image"); !strings.Contains(img, "/") {
		t.Errorf("%s: image %q: the overlay should name a registry (images: in kustomization.yaml)", name, img)
	}

	// The command: an existing subcommand, the config file from the ConfigMap.
	var args []string
	for _, a := range list(c, "args") {
		s, _ := a.(string)
		args = append(args, s)
	}
	if len(list(c, "command")) > 0 {
		t.Errorf("%s: command replaces the image's entrypoint (infleet); give args only", name)
	}
	if len(args) == 0 || !slices.Contains(cmds, args[0]) || role != "" && args[0] != role {
		t.Errorf("%s: args %q should start with the subcommand %s (infleet has %v)", name, args, cmp.Or(role, "to run"), cmds)
		return podFacts{}, false
	}
	mounts := map[string]any{} // mountPath -> volumeMount
	for _, m := range list(c, "volumeMounts") {
		mounts[str(m, "mountPath")] = m
	}
	volumes := map[string]any{}
	for _, v := range list(pod, "volumes") {
		volumes[str(v, "name")] = v
	}
	// volumeAt returns the volume mounted at the directory holding p, and the mount.
	volumeAt := func(p string) (vol, mount any) {
		for dir := path.Clean(p); ; dir = path.Dir(dir) {
			if m, ok := mounts[dir]; ok {
				return volumes[str(m, "name")], m
			}
			if dir == "/" || dir == "." {
				return nil, nil
			}
		}
	}
	cfgPath, ok := flag(args[1:], "config")
	if !ok {
		t.Errorf("%s: args %q give no --config", name, args)
		return podFacts{}, false
	}
	vol, _ := volumeAt(path.Dir(cfgPath))
	cmName := str(vol, "configMap", "name")
	cm := objs.get("ConfigMap", cmName)
	data := str(cm, "data", path.Base(cfgPath))
	if cm == nil || data == "" || get(vol, "configMap", "items") != nil {
		t.Errorf("%s: --config %s is not a key of a ConfigMap mounted at %s", name, cfgPath, path.Dir(cfgPath))
		return podFacts{}, false
	}

	// The config as this process loads it: the file and its environment.
	env := envEntries(get(c, "env"))
	for _, e := range env {
		if e.secret != "" && e.secret != "infleet-secrets" {
			t.Errorf("%s: %s comes from Secret %s; keep every secret in infleet-secrets", name, e.name, e.secret)
		}
	}
	cfg, err := config.LoadBytes([]byte(data), name+" "+cfgPath, environ(env))
	if err != nil {
		t.Errorf("%s: the config does not load with the pod's environment: %v", name, err)
		return podFacts{}, false
	}
	if cfg.Store.Kind == config.StorePostgres {
		i := slices.IndexFunc(env, func(e envEntry) bool { return e.name == "INFLEET_STORE_POSTGRES_DSN" })
		if i < 0 || env[i].secret == "" || env[i].optional {
			t.Errorf("%s: store.kind postgres: INFLEET_STORE_POSTGRES_DSN should come from a required Secret key", name)
		}
	}

	// Environment the config relies on: model API keys, the AWS region of the SDK's chain.
	hasEnv := func(names ...string) bool {
		return slices.ContainsFunc(env, func(e envEntry) bool { return slices.Contains(names, e.name) })
	}
	for _, m := range cfg.Models {
		if m.APIKeyEnv != "" && !hasEnv(m.APIKeyEnv) {
			t.Errorf("%s: model %s reads its API key from %s, which the container does not set", name, m.Name, m.APIKeyEnv)
		}
	}
	if (cfg.Transport.Kind == config.TransportSQS || cfg.Store.Kind == config.StoreDynamoDB || cfg.Results.Kind == config.ResultsS3) &&
		!hasEnv("AWS_REGION", "AWS_DEFAULT_REGION") {
		t.Errorf("%s: uses AWS services but sets no AWS_REGION", name)
	}

	// Locked down, yet data_dir is writable.
	if v, _ := get(pod, "securityContext", "runAsNonRoot").(bool); !v {
		t.Errorf("%s: securityContext.runAsNonRoot is not true", name)
	}
	if uid, ok := num(pod, "securityContext", "runAsUser"); ok && uid == 0 {
		t.Errorf("%s: runs as root", name)
	}
	sc := get(c, "securityContext")
	if v, _ := get(sc, "readOnlyRootFilesystem").(bool); !v {
		t.Errorf("%s: readOnlyRootFilesystem is not true", name)
	}
	if v, ok := get(sc, "allowPrivilegeEscalation").(bool); !ok || v {
		t.Errorf("%s: allowPrivilegeEscalation is not false", name)
	}
	if drop := list(sc, "capabilities", "drop"); !slices.Contains(drop, any("ALL")) {
		t.Errorf("%s: capabilities.drop %v lacks ALL", name, drop)
	}
	dataVol, dataMount := volumeAt(cfg.DataDir)
	if ro, _ := get(dataMount, "readOnly").(bool); dataVol == nil || ro || get(dataVol, "configMap") != nil || get(dataVol, "secret") != nil {
		t.Errorf("%s: data_dir %s is on no writable volume", name, cfg.DataDir)
	}

	// Identity: the service account exists; on AWS it carries an IAM role.
	saName := str(pod, "serviceAccountName")
	sa := objs.get("ServiceAccount", saName)
	if sa == nil {
		t.Errorf("%s: service account %q is not in the overlay", name, saName)
	}
	if cfg.Transport.Kind == config.TransportSQS || cfg.Store.Kind == config.StoreDynamoDB {
		if arn := stringMap(sa, "metadata", "annotations")["eks.amazonaws.com/role-arn"]; !strings.HasPrefix(arn, "arn:aws:iam::") {
			t.Errorf("%s: service account %s has no eks.amazonaws.com/role-arn annotation (IRSA)", name, saName)
		}
	}
	return podFacts{spec: pod, container: c, args: args, cfg: cfg, env: env}, true
}

// checkDeployment checks a long-running role beyond checkPod: the port it listens on is the
// one the probes use, /readyz and /healthz, resources for the scheduler and the autoscaler,
// and a grace period covering the shutdown's bounds.
func checkDeployment(t *testing.T, objs objects, name, role string, cmds []string, bound time.Duration) {
	dep := objs.get("Deployment", name)
	if sel, labels := stringMap(dep, "spec", "selector", "matchLabels"), stringMap(dep, "spec", "template", "metadata", "labels"); !subset(sel, labels) {
		t.Errorf("%s: selector %v does not match the pod labels %v", name, sel, labels)
	}
	p, ok := checkPod(t, objs, name, role, get(dep, "spec", "template", "spec"), cmds)
	if !ok {
		return
	}
	pod, c, args, cfg := p.spec, p.container, p.args, p.cfg

	// The port: what the process listens on is the container port the probes use.
	addr := cfg.Addr
	if a, ok := flag(args[1:], "addr"); ok {
		addr = a
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: listen address %q: %v", name, addr, err)
	}
	httpPort := ""
	for _, p := range list(c, "ports") {
		if str(p, "name") == "http" {
			n, _ := num(p, "containerPort")
			httpPort = itoa(n)
		}
	}
	if httpPort != port {
		t.Errorf("%s: listens on %s, but the container port named http is %q", name, addr, httpPort)
	}
	for probe, want := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"} {
		p := get(c, probe)
		if p == nil {
			if probe != "startupProbe" {
				t.Errorf("%s: no %s", name, probe)
			}
			continue
		}
		if got := str(p, "httpGet", "path"); got != want {
			t.Errorf("%s: %s path %q, want %s", name, probe, got, want)
		}
		pp := get(p, "httpGet", "port")
		if n, isNum := pp.(int); !(pp == "http" || isNum && itoa(n) == port) {
			t.Errorf("%s: %s port %v, want http or %s", name, probe, pp, port)
		}
	}

	// Resources: requests for scheduling and the autoscaler, a memory limit.
	for _, r := range []string{"cpu", "memory"} {
		if str(c, "resources", "requests", r) == "" {
			t.Errorf("%s: no %s request", name, r)
		}
	}
	if str(c, "resources", "limits", "memory") == "" {
		t.Errorf("%s: no memory limit", name)
	}

	// Shutdown: the grace period covers the preStop sleep and every bounded step.
	grace, ok := num(pod, "terminationGracePeriodSeconds")
	if !ok {
		grace = 30 // Kubernetes' default
	}
	preStop, _ := num(c, "lifecycle", "preStop", "sleep", "seconds")
	need := time.Duration(preStop)*time.Second + 2*bound // HTTP shutdown, closing clients
	why := fmt.Sprintf("preStop %ds + 2 x %s (HTTP shutdown, closing)", preStop, bound)
	if role == "worker" {
		// HTTP, the drain, the hand-back of cancelled jobs, the router's close, the clients.
		need = time.Duration(preStop)*time.Second + cfg.Workers.ShutdownTimeout + 4*bound
		why = fmt.Sprintf("preStop %ds + workers.shutdown_timeout %s + 4 x %s (HTTP, hand-back, router, closing)",
			preStop, cfg.Workers.ShutdownTimeout, bound)
	}
	if time.Duration(grace)*time.Second < need {
		t.Errorf("%s: terminationGracePeriodSeconds %d is under the shutdown's bound %s: %s", name, grace, need, why)
	}
}

func itoa(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// podLabels returns the pod template labels of every Deployment by name.
func podLabels(objs objects) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, d := range objs["Deployment"] {
		out[name] = stringMap(d, "spec", "template", "metadata", "labels")
	}
	return out
}

// selected returns the Deployments whose pods sel matches.
func selected(objs objects, sel map[string]string) []string {
	var out []string
	for name, labels := range podLabels(objs) {
		if subset(sel, labels) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func checkService(t *testing.T, objs objects) {
	svc := objs.get("Service", "infleet-ingress")
	if svc == nil {
		t.Error("no Service infleet-ingress")
		return
	}
	if got := selected(objs, stringMap(svc, "spec", "selector")); !slices.Equal(got, []string{"infleet-ingress"}) {
		t.Errorf("Service infleet-ingress selects the pods of %v, want only infleet-ingress", got)
	}
	for _, p := range list(svc, "spec", "ports") {
		if tp := get(p, "targetPort"); tp != "http" && tp != 8080 {
			t.Errorf("Service infleet-ingress targets port %v, want http", tp)
		}
	}
}

func checkBudgets(t *testing.T, objs objects) {
	for _, role := range []string{"ingress", "worker"} {
		name := "infleet-" + role
		pdb := objs.get("PodDisruptionBudget", name)
		if pdb == nil {
			t.Errorf("no PodDisruptionBudget %s", name)
			continue
		}
		if got := selected(objs, stringMap(pdb, "spec", "selector", "matchLabels")); !slices.Equal(got, []string{name}) {
			t.Errorf("PodDisruptionBudget %s selects the pods of %v, want only %s", name, got, name)
		}
	}
}
