package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/infleet/infleet/config"
)

var (
	cfnPath      = filepath.Join(root, "deploy", "aws", "cloudformation.yaml")
	cfnReadme    = filepath.Join(root, "deploy", "aws", "README.md")
	awsConfigMap = filepath.Join(k8sDir, "overlays", "aws", "configmap.yaml")
)

// cfnDecode decodes a CloudFormation template written in YAML, turning the short forms of the
// intrinsic functions (!Ref X, !GetAtt A.B, !Sub ..., !If [...]) into their long forms
// ({"Ref": X}, {"Fn::GetAtt": [A, B]}, ...), so that templates in either style read alike.
func cfnDecode(data []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var conv func(n *yaml.Node) (any, error)
	conv = func(n *yaml.Node) (any, error) {
		tag := n.Tag
		var v any
		switch n.Kind {
		case yaml.DocumentNode:
			return conv(n.Content[0])
		case yaml.AliasNode:
			return conv(n.Alias)
		case yaml.MappingNode:
			m := map[string]any{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				c, err := conv(n.Content[i+1])
				if err != nil {
					return nil, err
				}
				m[n.Content[i].Value] = c
			}
			v = m
		case yaml.SequenceNode:
			l := []any{}
			for _, c := range n.Content {
				cv, err := conv(c)
				if err != nil {
					return nil, err
				}
				l = append(l, cv)
			}
			v = l
		default:
			if strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
				v = n.Value
			} else if err := n.Decode(&v); err != nil {
				return nil, err
			}
		}
		if !strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "!!") {
			return v, nil
		}
		fn := strings.TrimPrefix(tag, "!")
		switch fn {
		case "Ref", "Condition":
			return map[string]any{fn: v}, nil
		case "GetAtt":
			if s, ok := v.(string); ok {
				res, attr, _ := strings.Cut(s, ".")
				v = []any{res, attr}
			}
		}
		return map[string]any{"Fn::" + fn: v}, nil
	}
	return conv(&doc)
}

// template is a decoded CloudFormation template with what the checks look up.
type template struct {
	doc       any
	resources map[string]any
	params    map[string]any
}

func loadTemplate(t *testing.T) template {
	t.Helper()
	data, err := os.ReadFile(cfnPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := cfnDecode(data)
	if err != nil {
		t.Fatalf("deploy/aws/cloudformation.yaml: %v", err)
	}
	res, _ := get(doc, "Resources").(map[string]any)
	params, _ := get(doc, "Parameters").(map[string]any)
	if len(res) == 0 {
		t.Fatal("deploy/aws/cloudformation.yaml has no Resources")
	}
	return template{doc: doc, resources: res, params: params}
}

// ofType returns the logical ids of the resources of type typ, sorted.
func (tp template) ofType(typ string) []string {
	var out []string
	for id, r := range tp.resources {
		if str(r, "Type") == typ {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// subVar matches the ${Name} and ${Name.Attr} variables of Fn::Sub (not ${!Literal}).
var subVar = regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(\.[A-Za-z0-9.]+)?\}`)

// resolve evaluates v where it depends only on parameters' defaults: a literal, a Ref to a
// parameter or Fn::Sub over parameters. ok is false otherwise.
func (tp template) resolve(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case map[string]any:
		if r, ok := v["Ref"].(string); ok {
			d, ok := get(tp.params, r, "Default").(string)
			return d, ok
		}
		if s, ok := v["Fn::Sub"].(string); ok {
			ok := true
			out := subVar.ReplaceAllStringFunc(s, func(m string) string {
				name := subVar.FindStringSubmatch(m)
				d, isStr := get(tp.params, name[1], "Default").(string)
				if name[2] != "" || !isStr {
					ok = false
				}
				return d
			})
			return out, ok
		}
	}
	return "", false
}

// getAtt returns the resource and attribute of {"Fn::GetAtt": [res, attr]}.
func getAtt(v any) (res, attr string) {
	l, _ := get(v, "Fn::GetAtt").([]any)
	if len(l) == 2 {
		res, _ = l[0].(string)
		attr, _ = l[1].(string)
	}
	return res, attr
}

// TestCloudFormationReferencesResolve checks that every Ref, Fn::GetAtt, Fn::Sub variable and
// condition in the template names something the template declares.
func TestCloudFormationReferencesResolve(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	conds, _ := get(tp.doc, "Conditions").(map[string]any)
	known := func(name string) bool {
		_, isRes := tp.resources[name]
		_, isParam := tp.params[name]
		return isRes || isParam || strings.HasPrefix(name, "AWS::")
	}
	refs := 0
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				switch k {
				case "Ref":
					refs++
					if s, _ := c.(string); !known(s) {
						t.Errorf("%s: Ref %v names no parameter or resource", at, c)
					}
				case "Fn::GetAtt":
					refs++
					if res, attr := getAtt(v); tp.resources[res] == nil || attr == "" {
						t.Errorf("%s: Fn::GetAtt %v names no resource", at, c)
					}
				case "Fn::Sub":
					s, _ := c.(string)
					for _, m := range subVar.FindAllStringSubmatch(s, -1) {
						refs++
						if !known(m[1]) || m[2] != "" && tp.resources[m[1]] == nil {
							t.Errorf("%s: Fn::Sub %q: ${%s%s} names nothing declared", at, s, m[1], m[2])
						}
					}
				case "Condition", "Fn::If":
					// A resource's Condition and Fn::If name a condition; an IAM statement's
					// Condition is a mapping, not a name.
					name, isName := c.(string)
					if l, ok := c.([]any); ok && k == "Fn::If" && len(l) == 3 {
						name, isName = l[0].(string)
					}
					if _, ok := conds[name]; isName && !ok {
						t.Errorf("%s: condition %q is not in Conditions", at, name)
					}
				}
				walk(c, at+"."+k)
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s[%d]", at, i))
			}
		}
	}
	walk(tp.resources, "Resources")
	walk(get(tp.doc, "Outputs"), "Outputs")
	if refs < 50 {
		t.Errorf("found only %d references; the walk is broken", refs)
	}
}

// objectCreated reports whether pattern selects S3's "Object Created" events, as the worker
// decodes them (source aws.s3, detail-type Object Created).
func objectCreated(pattern any) bool {
	return slices.Equal(list(pattern, "source"), []any{"aws.s3"}) && slices.Equal(list(pattern, "detail-type"), []any{"Object Created"})
}

// TestCloudFormationEventBridge checks the EventBridge part of the template: the bus infleet
// puts its events on and replays onto, the archive of the events that become jobs, the rule
// that forwards the trigger bucket's "Object Created" events from the default bus (where S3
// sends them) and the rule that delivers them to a job queue the queue policy opens to it,
// and the roles' permissions on all of that.
func TestCloudFormationEventBridge(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	buses := tp.ofType("AWS::Events::EventBus")
	if len(buses) != 1 {
		t.Fatalf("%d EventBridge buses (%v), want one", len(buses), buses)
	}
	bus := buses[0]
	isBus := func(v any) bool { res, attr := getAtt(v); return res == bus && attr == "Arn" }

	// The archive records the bus's Object Created events.
	archives := tp.ofType("AWS::Events::Archive")
	if len(archives) != 1 {
		t.Fatalf("%d EventBridge archives, want one", len(archives))
	}
	archive := tp.resources[archives[0]]
	if !isBus(get(archive, "Properties", "SourceArn")) || !objectCreated(get(archive, "Properties", "EventPattern")) {
		t.Errorf("archive %s should record the Object Created events of bus %s", archives[0], bus)
	}
	if get(archive, "Properties", "RetentionDays") == nil {
		t.Errorf("archive %s keeps events forever; give it RetentionDays", archives[0])
	}

	// Rules: one forwarding from the default bus to ours, one from ours to a queue.
	queues := tp.ofType("AWS::SQS::Queue")
	var forward, deliver string
	for _, id := range tp.ofType("AWS::Events::Rule") {
		r := get(tp.resources[id], "Properties")
		if !objectCreated(get(r, "EventPattern")) || str(r, "State") != "ENABLED" {
			continue
		}
		targets := list(r, "Targets")
		if len(targets) != 1 {
			t.Errorf("rule %s: %d targets, want one", id, len(targets))
			continue
		}
		onBus := get(r, "EventBusName")
		switch res, _ := getAtt(get(targets[0], "Arn")); {
		case (onBus == nil || onBus == "default") && res == bus:
			forward = id
			if names := list(r, "EventPattern", "detail", "bucket", "name"); len(names) != 1 || str(names[0], "Ref") != "TriggerBucketName" {
				t.Errorf("rule %s forwards the Object Created events of buckets %v, want those of TriggerBucketName", id, names)
			}
			role, _ := getAtt(get(targets[0], "RoleArn"))
			checkForwardRole(t, tp, role, isBus)
		case str(onBus, "Ref") == bus && slices.Contains(queues, res):
			deliver = id
			checkQueueOpenToRule(t, tp, res, id)
		}
	}
	if forward == "" {
		t.Errorf("no rule on the default bus sends S3 Object Created events to bus %s", bus)
	}
	if deliver == "" {
		t.Errorf("no rule on bus %s sends S3 Object Created events to a job queue", bus)
	}

	// The roles put events on the bus; the ingress role replays the archive.
	// PutEvents sends; DescribeEventBus is the notifier's start-up and readiness check.
	for _, policy := range []string{"WorkerPolicy", "IngressPolicy"} {
		for _, action := range []string{"events:PutEvents", "events:DescribeEventBus"} {
			if !allows(tp, policy, action, isBus) {
				t.Errorf("%s does not allow %s on bus %s", policy, action, bus)
			}
		}
	}
	isArchive := func(v any) bool { res, _ := getAtt(v); return res == archives[0] }
	for _, action := range []string{"events:StartReplay", "events:DescribeArchive"} {
		if !allows(tp, "IngressPolicy", action, isArchive) {
			t.Errorf("IngressPolicy does not allow %s on archive %s (infleet replay --archive)", action, archives[0])
		}
	}
}

// TestCloudFormationJobTableActions wants the ingress and the workers allowed every DynamoDB
// call the job store makes on the job table: the job writes, List's index queries, and
// JobStats's counter writes (UpdateItem) and reads (BatchGetItem) behind GET /v1/stats.
func TestCloudFormationJobTableActions(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	isTable := func(v any) bool { res, attr := getAtt(v); return res == "JobTable" && attr == "Arn" }
	for _, policy := range []string{"WorkerPolicy", "IngressPolicy"} {
		for _, action := range []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
			"dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"} {
			if !allows(tp, policy, action, isTable) {
				t.Errorf("%s does not allow %s on the job table", policy, action)
			}
		}
	}
}

// allows reports whether the managed policy id has an Allow statement with action on a
// resource match accepts.
func allows(tp template, id, action string, match func(any) bool) bool {
	for _, st := range list(tp.resources[id], "Properties", "PolicyDocument", "Statement") {
		if str(st, "Effect") != "Allow" {
			continue
		}
		actions := list(st, "Action")
		if a := str(st, "Action"); a != "" {
			actions = []any{a}
		}
		resources := list(st, "Resource")
		if r := get(st, "Resource"); resources == nil && r != nil {
			resources = []any{r}
		}
		if slices.Contains(actions, any(action)) && slices.ContainsFunc(resources, match) {
			return true
		}
	}
	return false
}

// checkForwardRole wants role to be assumable by EventBridge and to allow PutEvents on the bus.
func checkForwardRole(t *testing.T, tp template, role string, isBus func(any) bool) {
	r := get(tp.resources[role], "Properties")
	if str(tp.resources[role], "Type") != "AWS::IAM::Role" {
		t.Errorf("the forwarding rule's RoleArn is not an IAM role of the template")
		return
	}
	trusted := false
	for _, st := range list(r, "AssumeRolePolicyDocument", "Statement") {
		trusted = trusted || str(st, "Principal", "Service") == "events.amazonaws.com" && str(st, "Action") == "sts:AssumeRole"
	}
	if !trusted {
		t.Errorf("role %s: events.amazonaws.com may not assume it", role)
	}
	put := false
	for _, p := range list(r, "Policies") {
		for _, st := range list(p, "PolicyDocument", "Statement") {
			put = put || str(st, "Effect") == "Allow" && str(st, "Action") == "events:PutEvents" && isBus(get(st, "Resource"))
		}
	}
	if !put {
		t.Errorf("role %s does not allow events:PutEvents on the bus", role)
	}
}

// checkQueueOpenToRule wants a queue policy letting EventBridge send to queue from rule only.
func checkQueueOpenToRule(t *testing.T, tp template, queue, rule string) {
	for _, id := range tp.ofType("AWS::SQS::QueuePolicy") {
		for _, st := range list(tp.resources[id], "Properties", "PolicyDocument", "Statement") {
			res, _ := getAtt(get(st, "Resource"))
			src, _ := getAtt(get(st, "Condition", "ArnEquals", "aws:SourceArn"))
			if str(st, "Effect") == "Allow" && str(st, "Principal", "Service") == "events.amazonaws.com" &&
				str(st, "Action") == "sqs:SendMessage" && res == queue && src == rule {
				return
			}
		}
	}
	t.Errorf("no queue policy lets events.amazonaws.com send to %s from rule %s (aws:SourceArn)", queue, rule)
}

// TestCloudFormationNamesMatchConfig loads the infleet configs that go with the stack (the one in
// deploy/aws/README.md and the Kubernetes aws overlay's) and checks that the names they use are
// the ones the template creates with its default Prefix: queues, dead-letter queue, table,
// topic and bus.
func TestCloudFormationNamesMatchConfig(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	name := func(id, prop string) string {
		v, ok := tp.resolve(get(tp.resources[id], "Properties", prop))
		if !ok || v == "" {
			t.Fatalf("%s.%s does not resolve from the parameters' defaults", id, prop)
		}
		return v
	}
	want := map[string]string{
		"transport.sqs.queues.high":       name("HighQueue", "QueueName"),
		"transport.sqs.queues.normal":     name("NormalQueue", "QueueName"),
		"transport.sqs.queues.low":        name("LowQueue", "QueueName"),
		"transport.sqs.dead_letter_queue": name("DeadLetterQueue", "QueueName"),
		"store.dynamodb.table":            name("JobTable", "TableName"),
		"notify.sns.topic_arn (topic)":    name("EventTopic", "TopicName"),
		"notify.eventbridge.bus":          name(tp.ofType("AWS::Events::EventBus")[0], "Name"),
	}
	readme, err := os.ReadFile(cfnReadme)
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := bytes.Cut(readme, []byte("## The matching infleet config"))
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(after)
	if block == nil {
		t.Fatal(`deploy/aws/README.md: no yaml block under "## The matching infleet config"`)
	}
	cm, err := os.ReadFile(awsConfigMap)
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string][]byte{
		"deploy/aws/README.md": block[1],
		rel(awsConfigMap):      []byte(str(decodeYAML(t, rel(awsConfigMap), cm)[0], "data", "infleet.yaml")),
	}
	for source, data := range configs {
		cfg, err := config.LoadBytes(data, source, nil)
		if err != nil {
			t.Errorf("%s: the config does not load: %v", source, err)
			continue
		}
		got := map[string]string{
			"transport.sqs.queues.high":       cfg.Transport.SQS.Queues.High,
			"transport.sqs.queues.normal":     cfg.Transport.SQS.Queues.Normal,
			"transport.sqs.queues.low":        cfg.Transport.SQS.Queues.Low,
			"transport.sqs.dead_letter_queue": cfg.Transport.SQS.DeadLetterQueue,
			"store.dynamodb.table":            cfg.Store.DynamoDB.Table,
			"notify.sns.topic_arn (topic)":    cfg.Notify.SNS.TopicARN[strings.LastIndex(cfg.Notify.SNS.TopicARN, ":")+1:],
			"notify.eventbridge.bus":          cfg.Notify.EventBridge.Bus,
		}
		for key, w := range want {
			if got[key] != w {
				t.Errorf("%s: %s is %q, the stack creates %q", source, key, got[key], w)
			}
		}
	}
}

// TestCFNDecodeShortForms checks that the decoder reads the short intrinsic-function tags as
// their long forms, so the checks hold whichever style the template is written in.
func TestCFNDecodeShortForms(t *testing.T) {
	t.Parallel()
	doc, err := cfnDecode([]byte(`
a: !Ref Prefix
b: !GetAtt Queue.Arn
c: !Sub "${Prefix}-high"
d: !If [HasBucket, !Ref Bucket, !Ref "AWS::NoValue"]
e: {Condition: HasBucket}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": map[string]any{"Ref": "Prefix"},
		"b": map[string]any{"Fn::GetAtt": []any{"Queue", "Arn"}},
		"c": map[string]any{"Fn::Sub": "${Prefix}-high"},
		"d": map[string]any{"Fn::If": []any{"HasBucket", map[string]any{"Ref": "Bucket"}, map[string]any{"Ref": "AWS::NoValue"}}},
		"e": map[string]any{"Condition": "HasBucket"},
	}
	if got, w := fmt.Sprint(doc), fmt.Sprint(want); got != w {
		t.Errorf("decoded\n%s\nwant\n%s", got, w)
	}
}
