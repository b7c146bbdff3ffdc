package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// statements returns the statements of managed policy id with every Fn::If on condition taken
// as true (its first branch) and the others left out.
func statements(tp template, id, condition string) []any {
	var out []any
	for _, st := range list(tp.resources[id], "Properties", "PolicyDocument", "Statement") {
		if l, ok := get(st, "Fn::If").([]any); ok {
			if len(l) == 3 && l[0] == condition {
				out = append(out, l[1])
			}
			continue
		}
		out = append(out, st)
	}
	return out
}

// grants reports whether one of sts allows action on a resource match accepts, and returns
// that statement.
func grants(sts []any, action string, match func(any) bool) (any, bool) {
	for _, st := range sts {
		actions := list(st, "Action")
		if a := str(st, "Action"); a != "" {
			actions = []any{a}
		}
		resources := list(st, "Resource")
		if r := get(st, "Resource"); resources == nil && r != nil {
			resources = []any{r}
		}
		if str(st, "Effect") == "Allow" && slices.Contains(actions, any(action)) && slices.ContainsFunc(resources, match) {
			return st, true
		}
	}
	return nil, false
}

// hasAction reports whether statement st names action, or, when action ends in ":", an
// action of that service.
func hasAction(st any, action string) bool {
	actions := list(st, "Action")
	if a := str(st, "Action"); a != "" {
		actions = []any{a}
	}
	return slices.ContainsFunc(actions, func(a any) bool {
		s, _ := a.(string)
		return s == action || strings.HasSuffix(action, ":") && strings.HasPrefix(s, action)
	})
}

// subIs matches an Fn::Sub of exactly s.
func subIs(s string) func(any) bool {
	return func(v any) bool { return str(v, "Fn::Sub") == s }
}

const (
	batchObjects = "arn:${AWS::Partition}:s3:::${BatchInferenceBucketName}/${BatchInferencePrefix}*"
	batchBucket  = "arn:${AWS::Partition}:s3:::${BatchInferenceBucketName}"
)

// TestCloudFormationBatchInference wants, with BatchInferenceBucketName set (and nothing without
// it): the workers allowed every Bedrock control-plane call the batch provider makes
// (adapters/bedrock/batchjobs.go) and the rest of the batch job API, iam:PassRole on the
// stack's batch service role alone and to Bedrock alone, and the batch prefix's objects; the
// service role trusted by Bedrock for the account's model invocation jobs and allowed the same
// prefix; the ingress allowed none of it.
func TestCloudFormationBatchInference(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	if d, ok := get(tp.params, "BatchInferenceBucketName", "Default").(string); !ok || d != "" {
		t.Errorf("BatchInferenceBucketName defaults to %q, want empty (batch inference off)", d)
	}
	const cond = "HasBatchInference"
	sts := statements(tp, "WorkerPolicy", cond)

	// The calls the provider makes, read from its source, and the rest of the batch job API.
	src, err := os.ReadFile(filepath.Join(root, "adapters", "bedrock", "batchjobs.go"))
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]bool{"CreateModelInvocationJob": true, "GetModelInvocationJob": true, "ListModelInvocationJobs": true, "StopModelInvocationJob": true}
	for _, m := range regexp.MustCompile(`\.api\.([A-Z][A-Za-z]+)\(`).FindAllStringSubmatch(string(src), -1) {
		calls[m[1]] = true
	}
	if len(calls) != 4 {
		t.Errorf("the batch provider calls %v; the policy covers the four model invocation job calls only", calls)
	}
	jobs := subIs("arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*")
	for call := range calls {
		match := jobs
		if call == "ListModelInvocationJobs" {
			match = func(v any) bool { return v == "*" } // List names no resource
		}
		if _, ok := grants(sts, "bedrock:"+call, match); !ok {
			t.Errorf("WorkerPolicy does not allow bedrock:%s on model invocation jobs", call)
		}
	}
	if _, ok := grants(sts, "bedrock:CreateModelInvocationJob", subIs("arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/*")); !ok {
		t.Error("WorkerPolicy does not allow bedrock:CreateModelInvocationJob on the foundation models")
	}
	isRole := func(v any) bool { res, attr := getAtt(v); return res == "BatchInferenceRole" && attr == "Arn" }
	if st, ok := grants(sts, "iam:PassRole", isRole); !ok {
		t.Error("WorkerPolicy does not allow iam:PassRole on BatchInferenceRole")
	} else if got := str(st, "Condition", "StringEquals", "iam:PassedToService"); got != "bedrock.amazonaws.com" {
		t.Errorf("iam:PassRole on the batch role: iam:PassedToService %q, want bedrock.amazonaws.com", got)
	}
	for _, st := range sts {
		if hasAction(st, "iam:PassRole") && !isRole(get(st, "Resource")) {
			t.Errorf("WorkerPolicy passes a role other than BatchInferenceRole: %v", get(st, "Resource"))
		}
	}
	for _, action := range []string{"s3:GetObject", "s3:PutObject"} {
		if _, ok := grants(sts, action, subIs(batchObjects)); !ok {
			t.Errorf("WorkerPolicy does not allow %s under the batch prefix", action)
		}
	}
	if st, ok := grants(sts, "s3:ListBucket", subIs(batchBucket)); !ok || str(st, "Condition", "StringLike", "s3:prefix", "Fn::Sub") != "${BatchInferencePrefix}*" {
		t.Error("WorkerPolicy does not allow s3:ListBucket on the batch bucket, limited to the batch prefix")
	}
	// Nothing of it without the bucket.
	for _, st := range statements(tp, "WorkerPolicy", "") {
		if hasAction(st, "iam:PassRole") || hasAction(st, "bedrock:") {
			t.Errorf("WorkerPolicy allows %v without BatchInferenceBucketName", get(st, "Action"))
		}
	}
	for _, st := range statements(tp, "IngressPolicy", cond) {
		if hasAction(st, "iam:PassRole") || hasAction(st, "bedrock:") {
			t.Errorf("IngressPolicy allows %v", get(st, "Action"))
		}
	}

	// The service role.
	role := tp.resources["BatchInferenceRole"]
	if str(role, "Type") != "AWS::IAM::Role" || str(role, "Condition") != cond {
		t.Fatalf("BatchInferenceRole is not an IAM role made under %s", cond)
	}
	trusted := false
	for _, st := range list(role, "Properties", "AssumeRolePolicyDocument", "Statement") {
		trusted = trusted || str(st, "Effect") == "Allow" && str(st, "Principal", "Service") == "bedrock.amazonaws.com" &&
			str(st, "Action") == "sts:AssumeRole" && str(st, "Condition", "StringEquals", "aws:SourceAccount", "Ref") == "AWS::AccountId"
	}
	if !trusted {
		t.Error("BatchInferenceRole: bedrock.amazonaws.com may not assume it, or not for this account only")
	}
	var rsts []any
	for _, p := range list(role, "Properties", "Policies") {
		rsts = append(rsts, list(p, "PolicyDocument", "Statement")...)
	}
	for _, action := range []string{"s3:GetObject", "s3:PutObject"} {
		if _, ok := grants(rsts, action, subIs(batchObjects)); !ok {
			t.Errorf("BatchInferenceRole does not allow %s under the batch prefix", action)
		}
	}
	if _, ok := grants(rsts, "s3:ListBucket", subIs(batchBucket)); !ok {
		t.Error("BatchInferenceRole does not allow s3:ListBucket on the batch bucket")
	}
	if res, _ := getAtt(get(tp.doc, "Outputs", "BatchInferenceRoleArn", "Value")); res != "BatchInferenceRole" {
		t.Error("no output BatchInferenceRoleArn (batch_inference.role_arn)")
	}
}

// TestCloudFormationBedrockModels wants, with BedrockModels "true" (the default): the workers
// allowed every Bedrock runtime call the model provider makes (adapters/bedrock: Converse and
// InvokeModel under bedrock:InvokeModel, ConverseStream under
// bedrock:InvokeModelWithResponseStream) on the foundation models of every region and the
// account's inference profiles, and ApplyGuardrail on the account's guardrails; the ingress
// none of it; and with "false" the workers none of it either.
func TestCloudFormationBedrockModels(t *testing.T) {
	t.Parallel()
	tp := loadTemplate(t)
	if d, ok := get(tp.params, "BedrockModels", "Default").(string); !ok || d != "true" {
		t.Errorf("BedrockModels defaults to %q, want \"true\"", d)
	}
	const cond = "CallsBedrock"
	sts := statements(tp, "WorkerPolicy", cond)
	var src []byte
	for _, f := range []string{"bedrock.go", "stream.go"} {
		b, err := os.ReadFile(filepath.Join(root, "adapters", "bedrock", f))
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	action := map[string]string{
		"Converse": "bedrock:InvokeModel", "InvokeModel": "bedrock:InvokeModel",
		"ConverseStream": "bedrock:InvokeModelWithResponseStream", "InvokeModelWithResponseStream": "bedrock:InvokeModelWithResponseStream",
	}
	calls := regexp.MustCompile(`\.api\.([A-Z][A-Za-z]+)\(`).FindAllStringSubmatch(string(src), -1)
	if len(calls) == 0 {
		t.Fatal("found no Bedrock runtime call in adapters/bedrock")
	}
	for _, m := range calls {
		a, ok := action[m[1]]
		if !ok {
			t.Errorf("the Bedrock provider calls %s, which this test does not map to an IAM action", m[1])
			continue
		}
		for _, res := range []string{
			"arn:${AWS::Partition}:bedrock:*::foundation-model/*",
			"arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/*",
		} {
			if _, ok := grants(sts, a, subIs(res)); !ok {
				t.Errorf("WorkerPolicy does not allow %s (for %s) on %s", a, m[1], res)
			}
		}
	}
	if _, ok := grants(sts, "bedrock:ApplyGuardrail", subIs("arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:guardrail/*")); !ok {
		t.Error("WorkerPolicy does not allow bedrock:ApplyGuardrail on the account's guardrails")
	}
	for _, st := range statements(tp, "IngressPolicy", cond) {
		if hasAction(st, "bedrock:") {
			t.Errorf("IngressPolicy allows %v", get(st, "Action"))
		}
	}
	if c := list(tp.doc, "Conditions", "CallsBedrock", "Fn::Equals"); len(c) != 2 || get(c[0], "Ref") != "BedrockModels" || c[1] != "true" {
		t.Errorf("condition CallsBedrock = %v, want BedrockModels equal to \"true\"", c)
	}
}
