package dynamodb_test

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"gopkg.in/yaml.v3"

	"github.com/infleet/infleet/adapters/dynamodb"
)

// templatePath is the CloudFormation template of the AWS fleet.
const templatePath = "../../deploy/aws/cloudformation.yaml"

type cfnKey struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

type cfnTemplate struct {
	Parameters map[string]struct {
		Default any `yaml:"Default"`
	} `yaml:"Parameters"`
	Resources map[string]struct {
		Type       string    `yaml:"Type"`
		Properties yaml.Node `yaml:"Properties"`
	} `yaml:"Resources"`
}

type cfnTable struct {
	BillingMode          string `yaml:"BillingMode"`
	AttributeDefinitions []struct {
		AttributeName string `yaml:"AttributeName"`
		AttributeType string `yaml:"AttributeType"`
	} `yaml:"AttributeDefinitions"`
	KeySchema              []cfnKey `yaml:"KeySchema"`
	GlobalSecondaryIndexes []struct {
		IndexName  string   `yaml:"IndexName"`
		KeySchema  []cfnKey `yaml:"KeySchema"`
		Projection struct {
			ProjectionType string `yaml:"ProjectionType"`
		} `yaml:"Projection"`
	} `yaml:"GlobalSecondaryIndexes"`
	TimeToLiveSpecification struct {
		AttributeName string `yaml:"AttributeName"`
		Enabled       bool   `yaml:"Enabled"`
	} `yaml:"TimeToLiveSpecification"`
}

func readTemplate(t *testing.T) cfnTemplate {
	t.Helper()
	raw, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var tpl cfnTemplate
	if err := yaml.Unmarshal(raw, &tpl); err != nil {
		t.Fatalf("%s is not plain YAML (use long-form intrinsic functions, not !Ref): %v", templatePath, err)
	}
	return tpl
}

// TestCloudFormationTableMatchesEnsureTable keeps the table of deploy/aws in step with the one
// EnsureTable creates: same keys, attribute types, indexes, projection and TTL attribute.
func TestCloudFormationTableMatchesEnsureTable(t *testing.T) {
	t.Parallel()
	tpl := readTemplate(t)
	var tables []cfnTable
	for _, r := range tpl.Resources {
		if r.Type == "AWS::DynamoDB::Table" {
			var tab cfnTable
			if err := r.Properties.Decode(&tab); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, tab)
		}
	}
	if len(tables) != 1 {
		t.Fatalf("%s declares %d DynamoDB tables, want 1", templatePath, len(tables))
	}
	got := tables[0]
	want := dynamodb.TableDefinition("x")

	if got.BillingMode != string(want.BillingMode) {
		t.Errorf("BillingMode %s, EnsureTable uses %s", got.BillingMode, want.BillingMode)
	}
	var gotAttrs, wantAttrs []string
	for _, a := range got.AttributeDefinitions {
		gotAttrs = append(gotAttrs, a.AttributeName+":"+a.AttributeType)
	}
	for _, a := range want.AttributeDefinitions {
		wantAttrs = append(wantAttrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	slices.Sort(gotAttrs)
	slices.Sort(wantAttrs)
	if !slices.Equal(gotAttrs, wantAttrs) {
		t.Errorf("AttributeDefinitions %v, EnsureTable uses %v", gotAttrs, wantAttrs)
	}
	var wantKeys []string
	for _, k := range want.KeySchema {
		wantKeys = append(wantKeys, fmt.Sprint(aws.ToString(k.AttributeName), ":", k.KeyType))
	}
	if g := keys(got.KeySchema); !slices.Equal(g, wantKeys) {
		t.Errorf("KeySchema %v, EnsureTable uses %v", g, wantKeys)
	}
	var gotIdx, wantIdx []string
	for _, i := range got.GlobalSecondaryIndexes {
		gotIdx = append(gotIdx, fmt.Sprint(i.IndexName, keys(i.KeySchema), i.Projection.ProjectionType))
	}
	for _, i := range want.GlobalSecondaryIndexes {
		var ks []cfnKey
		for _, k := range i.KeySchema {
			ks = append(ks, cfnKey{AttributeName: aws.ToString(k.AttributeName), KeyType: string(k.KeyType)})
		}
		wantIdx = append(wantIdx, fmt.Sprint(aws.ToString(i.IndexName), keys(ks), i.Projection.ProjectionType))
	}
	slices.Sort(gotIdx)
	slices.Sort(wantIdx)
	if !slices.Equal(gotIdx, wantIdx) {
		t.Errorf("GlobalSecondaryIndexes\n  %v\nEnsureTable creates\n  %v", gotIdx, wantIdx)
	}
	if ttl := got.TimeToLiveSpecification; ttl.AttributeName != "expires_at" || !ttl.Enabled {
		t.Errorf("TimeToLiveSpecification %+v, EnsureTable enables TTL on expires_at", ttl)
	}
}

func keys(ks []cfnKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.AttributeName+":"+k.KeyType)
	}
	return out
}

// TestCloudFormationQueues checks the three priority queues: 60 s visibility and a redrive
// policy to the dead-letter queue after 10 receives, the defaults of transport.sqs.
func TestCloudFormationQueues(t *testing.T) {
	t.Parallel()
	tpl := readTemplate(t)
	if d := fmt.Sprint(tpl.Parameters["VisibilityTimeoutSeconds"].Default); d != "60" {
		t.Errorf("VisibilityTimeoutSeconds defaults to %s, want 60", d)
	}
	if d := fmt.Sprint(tpl.Parameters["MaxReceiveCount"].Default); d != "10" {
		t.Errorf("MaxReceiveCount defaults to %s, want 10", d)
	}
	for _, name := range []string{"HighQueue", "NormalQueue", "LowQueue"} {
		var q struct {
			VisibilityTimeout map[string]string `yaml:"VisibilityTimeout"`
			RedrivePolicy     struct {
				DeadLetterTargetArn map[string][]string `yaml:"deadLetterTargetArn"`
				MaxReceiveCount     map[string]string   `yaml:"maxReceiveCount"`
			} `yaml:"RedrivePolicy"`
		}
		r, ok := tpl.Resources[name]
		if !ok || r.Type != "AWS::SQS::Queue" {
			t.Fatalf("%s: no SQS queue %s", templatePath, name)
		}
		if err := r.Properties.Decode(&q); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.VisibilityTimeout["Ref"] != "VisibilityTimeoutSeconds" || q.RedrivePolicy.MaxReceiveCount["Ref"] != "MaxReceiveCount" ||
			!slices.Equal(q.RedrivePolicy.DeadLetterTargetArn["Fn::GetAtt"], []string{"DeadLetterQueue", "Arn"}) {
			t.Errorf("%s: visibility %v, redrive %+v; want the parameters and the DeadLetterQueue", name, q.VisibilityTimeout, q.RedrivePolicy)
		}
	}
}
