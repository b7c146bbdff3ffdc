package deploytest

import (
	"cmp"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/infleet/infleet/config"
)

// kedaAPI is the API version of KEDA's ScaledObject and TriggerAuthentication.
const kedaAPI = "keda.sh/v1alpha1"

// promComponent is the component that scales the workers on infleet_queue_depth instead.
var promComponent = filepath.Join(k8sDir, "components", "keda-prometheus")

// workerConfig loads the config the rendered worker Deployment's process reads: the ConfigMap
// infleet-config with the container's environment.
func workerConfig(t *testing.T, objs objects) (config.Config, []envEntry, bool) {
	t.Helper()
	containers := list(objs.get("Deployment", "infleet-worker"), "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Error("no worker Deployment with one container")
		return config.Config{}, nil, false
	}
	env := envEntries(get(containers[0], "env"))
	data := str(objs.get("ConfigMap", "infleet-config"), "data", "infleet.yaml")
	cfg, err := config.LoadBytes([]byte(data), "ConfigMap infleet-config", environ(env))
	if err != nil {
		t.Errorf("the worker's config does not load: %v", err)
		return config.Config{}, nil, false
	}
	return cfg, env, true
}

// positive reports whether s is a positive integer, as KEDA's string thresholds are.
func positive(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0
}

// checkScaledObject checks the worker's autoscaling: one KEDA ScaledObject scaling the worker
// Deployment, no HorizontalPodAutoscaler of its own beside it (the ScaledObject makes one; two
// would fight), and triggers that watch the very queues, brokers, group and region the
// workers use.
func checkScaledObject(t *testing.T, objs objects, dir string) {
	t.Helper()
	for name, hpa := range objs["HorizontalPodAutoscaler"] {
		if str(hpa, "spec", "scaleTargetRef", "name") == "infleet-worker" {
			t.Errorf("HorizontalPodAutoscaler %s scales infleet-worker beside the ScaledObject, which makes its own: drop it", name)
		}
	}
	so := objs.get("ScaledObject", "infleet-worker")
	if so == nil {
		t.Error("no KEDA ScaledObject infleet-worker")
		return
	}
	if v := str(so, "apiVersion"); v != kedaAPI {
		t.Errorf("ScaledObject infleet-worker: apiVersion %q, want %s", v, kedaAPI)
	}
	ref := get(so, "spec", "scaleTargetRef")
	if kind := cmp.Or(str(ref, "kind"), "Deployment"); kind != "Deployment" || str(ref, "name") != "infleet-worker" || objs.get("Deployment", str(ref, "name")) == nil {
		t.Errorf("ScaledObject infleet-worker scales %s %q, want Deployment infleet-worker", kind, str(ref, "name"))
	}
	lo, _ := num(so, "spec", "minReplicaCount")
	hi, _ := num(so, "spec", "maxReplicaCount")
	if lo < 1 || hi <= lo {
		t.Errorf("ScaledObject infleet-worker: replicas %d to %d; keep at least one worker and room to grow", lo, hi)
	}
	if get(so, "spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown") == nil {
		t.Error("ScaledObject infleet-worker: no scale-down behaviour; removing workers fast cuts running jobs short")
	}
	cfg, env, ok := workerConfig(t, objs)
	if !ok {
		return
	}
	triggers := list(so, "spec", "triggers")
	names := map[string]bool{}
	for _, tr := range triggers {
		if n := str(tr, "name"); n == "" || names[n] {
			t.Errorf("ScaledObject infleet-worker: trigger name %q missing or repeated (KEDA needs each unique)", n)
		} else {
			names[n] = true
		}
	}
	switch cfg.Transport.Kind {
	case config.TransportSQS:
		checkSQSTriggers(t, objs, cfg, env, triggers)
	case config.TransportKafka:
		checkKafkaTriggers(t, cfg, triggers)
	default:
		t.Errorf("%s: transport.kind %s has no queue-backlog scaler here; use the keda-prometheus component", rel(dir), cfg.Transport.Kind)
	}
}

// checkSQSTriggers wants one aws-sqs-queue trigger per priority queue, in the workers' region,
// authenticated as the workers' own IAM role.
func checkSQSTriggers(t *testing.T, objs objects, cfg config.Config, env []envEntry, triggers []any) {
	region := ""
	for _, e := range env {
		if e.name == "AWS_REGION" {
			region = e.value
		}
	}
	q := cfg.Transport.SQS.Queues
	want := []string{path.Base(q.High), path.Base(q.Normal), path.Base(q.Low)}
	var got []string
	for _, tr := range triggers {
		if typ := str(tr, "type"); typ != "aws-sqs-queue" {
			t.Errorf("trigger %s: type %q, want aws-sqs-queue on the SQS transport", str(tr, "name"), typ)
			continue
		}
		md := get(tr, "metadata")
		u, err := url.Parse(str(md, "queueURL"))
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if err != nil || u.Scheme != "https" || len(parts) != 2 || len(parts[0]) != 12 {
			t.Errorf("trigger %s: queueURL %q is not https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE", str(tr, "name"), str(md, "queueURL"))
			continue
		}
		got = append(got, parts[1])
		if r := str(md, "awsRegion"); r != region || u.Host != "sqs."+region+".amazonaws.com" {
			t.Errorf("trigger %s: awsRegion %q and queue host %s, want the workers' AWS_REGION %q", str(tr, "name"), r, u.Host, region)
		}
		if !positive(str(md, "queueLength")) {
			t.Errorf("trigger %s: queueLength %q is not a positive integer", str(tr, "name"), str(md, "queueLength"))
		}
		auth := objs.get("TriggerAuthentication", str(tr, "authenticationRef", "name"))
		if str(auth, "spec", "podIdentity", "provider") != "aws" || str(auth, "spec", "podIdentity", "identityOwner") != "workload" {
			t.Errorf("trigger %s: authenticationRef %q is no TriggerAuthentication with podIdentity provider aws, identityOwner workload",
				str(tr, "name"), str(tr, "authenticationRef", "name"))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the SQS triggers watch queues %v, the workers consume %v", got, want)
	}
}

// checkKafkaTriggers wants one kafka trigger per priority topic, on the workers' brokers and
// consumer group.
func checkKafkaTriggers(t *testing.T, cfg config.Config, triggers []any) {
	k := cfg.Transport.Kafka
	want := []string{k.Topics.High, k.Topics.Normal, k.Topics.Low}
	var got []string
	for _, tr := range triggers {
		if typ := str(tr, "type"); typ != "kafka" {
			t.Errorf("trigger %s: type %q, want kafka on the Kafka transport", str(tr, "name"), typ)
			continue
		}
		md := get(tr, "metadata")
		got = append(got, str(md, "topic"))
		if b := str(md, "bootstrapServers"); b != strings.Join(k.Brokers, ",") {
			t.Errorf("trigger %s: bootstrapServers %q, want transport.kafka.brokers %q", str(tr, "name"), b, strings.Join(k.Brokers, ","))
		}
		if g := str(md, "consumerGroup"); g != k.Group {
			t.Errorf("trigger %s: consumerGroup %q, want transport.kafka.group %q", str(tr, "name"), g, k.Group)
		}
		if !positive(str(md, "lagThreshold")) {
			t.Errorf("trigger %s: lagThreshold %q is not a positive integer", str(tr, "name"), str(md, "lagThreshold"))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the Kafka triggers watch topics %v, the workers consume %v", got, want)
	}
}

// TestKEDAPrometheusComponent renders each overlay with components/keda-prometheus and checks
// that the ScaledObject then scales on one Prometheus query of a metric infleet exports, in the
// overlay's namespace, with the overlay's replica bounds kept.
func TestKEDAPrometheusComponent(t *testing.T) {
	t.Parallel()
	metrics := exportedMetrics(t)
	for _, dir := range overlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			plain := index(render(t, dir))
			objs := index(render(t, dir, promComponent))
			so := objs.get("ScaledObject", "infleet-worker")
			for _, f := range []string{"minReplicaCount", "maxReplicaCount"} {
				a, _ := num(so, "spec", f)
				b, _ := num(plain.get("ScaledObject", "infleet-worker"), "spec", f)
				if a != b {
					t.Errorf("with the component %s is %d, without %d: the component should change the triggers only", f, a, b)
				}
			}
			triggers := list(so, "spec", "triggers")
			if len(triggers) != 1 || str(triggers[0], "type") != "prometheus" {
				t.Fatalf("with the component the triggers are %v, want one prometheus trigger", triggers)
			}
			md := get(triggers[0], "metadata")
			if u, err := url.Parse(str(md, "serverAddress")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Errorf("serverAddress %q is not an http(s) URL", str(md, "serverAddress"))
			}
			if !positive(str(md, "threshold")) {
				t.Errorf("threshold %q is not a positive integer", str(md, "threshold"))
			}
			query := str(md, "query")
			used := regexp.MustCompile(`\binfleet_[a-z0-9_]+`).FindAllString(query, -1)
			if !slices.Contains(used, "infleet_queue_depth") {
				t.Errorf("query %q does not read infleet_queue_depth", query)
			}
			for _, m := range used {
				if !metrics[m] {
					t.Errorf("query %q reads %s, which pipeline/telemetry does not export", query, m)
				}
			}
			ns := str(objs.get("Deployment", "infleet-worker"), "metadata", "namespace")
			if !strings.Contains(query, `namespace="`+ns+`"`) {
				t.Errorf("query %q does not select the overlay's namespace %q", query, ns)
			}
		})
	}
}

// exportedMetrics returns the names of the Prometheus metrics pipeline/telemetry declares.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "pipeline", "telemetry", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources in pipeline/telemetry: %v", err)
	}
	out := map[string]bool{}
	re := regexp.MustCompile(`Name:\s*"(infleet_[a-z0-9_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			out[m[1]] = true
		}
	}
	if !out["infleet_queue_depth"] {
		t.Fatal("pipeline/telemetry declares no infleet_queue_depth metric: has it been renamed? update components/keda-prometheus and this test")
	}
	return out
}

// TestKafkaSASLComponent renders the kafka overlay with components/kafka-sasl and checks
// that every kafka trigger then authenticates with a TriggerAuthentication the render holds, whose
// every parameter is one KEDA's kafka scaler reads, and that the pods get the SASL password from
// a required Secret key.
func TestKafkaSASLComponent(t *testing.T) {
	t.Parallel()
	objs := index(render(t, filepath.Join(k8sDir, "overlays", "kafka"), filepath.Join(k8sDir, "components", "kafka-sasl")))
	auth := objs.get("TriggerAuthentication", "infleet-kafka")
	if auth == nil {
		t.Fatal("the render holds no TriggerAuthentication infleet-kafka")
	}
	known := map[string]bool{"sasl": true, "username": true, "password": true, "tls": true, "ca": true, "cert": true, "key": true, "keyPassword": true}
	refs := list(auth, "spec", "secretTargetRef")
	if len(refs) == 0 {
		t.Fatal("TriggerAuthentication infleet-kafka names no secret")
	}
	for _, r := range refs {
		if !known[str(r, "parameter")] {
			t.Errorf("TriggerAuthentication parameter %q is not one of KEDA's kafka scaler", str(r, "parameter"))
		}
	}
	for _, name := range []string{"infleet-worker", "infleet-ingress"} {
		containers := list(objs.get("Deployment", name), "spec", "template", "spec", "containers")
		if len(containers) == 0 {
			t.Fatalf("the render holds no Deployment %s", name)
		}
		found := false
		for _, e := range list(containers[0], "env") {
			if str(e, "name") == "INFLEET_TRANSPORT_KAFKA_SASL_PASSWORD" {
				found = str(e, "valueFrom", "secretKeyRef", "key") != "" && get(e, "valueFrom", "secretKeyRef", "optional") == nil
			}
		}
		if !found {
			t.Errorf("%s: INFLEET_TRANSPORT_KAFKA_SASL_PASSWORD should come from a required Secret key", name)
		}
	}
	triggers := list(objs.get("ScaledObject", "infleet-worker"), "spec", "triggers")
	if len(triggers) == 0 {
		t.Fatal("the ScaledObject has no triggers")
	}
	for _, tr := range triggers {
		if str(tr, "type") != "kafka" {
			continue
		}
		if got := str(tr, "authenticationRef", "name"); got != "infleet-kafka" {
			t.Errorf("trigger %s authenticates with %q, want infleet-kafka", str(tr, "name"), got)
		}
	}
}
