package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
)

// noAWSCredentials empties the SDK's default credential chain for the test: no environment
// keys, no profile or shared files, no web identity, no container or instance metadata.
func noAWSCredentials(t *testing.T) {
	t.Helper()
	missing := filepath.Join(t.TempDir(), "missing")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_DEFAULT_PROFILE": "", "AWS_CONFIG_FILE": missing, "AWS_SHARED_CREDENTIALS_FILE": missing,
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "eu-west-1",
	} {
		t.Setenv(k, v)
	}
}

// sqsConfig is a config on the SQS transport with endpoint as its endpoint override, loaded with
// the given environment.
func sqsConfig(t *testing.T, endpoint string, environ ...string) config.Config {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(`
transport: {kind: sqs, sqs: {queues: {high: h, normal: n, low: l}, dead_letter_queue: d, endpoint: "`+endpoint+`"}}
`), "test", environ)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	return cfg
}

// TestAWSCredentialsNonLoopbackEndpointUsesTheChain checks that an endpoint override that is not
// a loopback address (a VPC endpoint, a proxy) gets no placeholder credentials: with an empty
// credential chain start-up fails naming the section, the chain and the emulator opt-in.
func TestAWSCredentialsNonLoopbackEndpointUsesTheChain(t *testing.T) {
	noAWSCredentials(t)
	cfg := sqsConfig(t, "https://vpce-0abc.sqs.eu-west-1.vpce.amazonaws.com")
	a, err := newApp(context.Background(), cfg, configSource{}, zerolog.Nop())
	if err == nil {
		_ = a.close()
		t.Fatal("start-up succeeded without credentials against a non-loopback endpoint")
	}
	for _, part := range []string{"transport.sqs", "no AWS credentials", "default credential chain", "IRSA", "INFLEET_AWS_EMULATOR=true"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("start-up error %q does not mention %q", err, part)
		}
	}
	// The same without any endpoint (AWS itself): the chain's failure, no emulator hint.
	cfg = sqsConfig(t, "")
	if _, _, err := newAWSClients(cfg).config(context.Background(), "transport.sqs"); err == nil ||
		!strings.Contains(err.Error(), "default credential chain") || strings.Contains(err.Error(), "EMULATOR") {
		t.Errorf("without an endpoint: %v, want the chain's failure and no emulator hint", err)
	}
}

// TestAWSCredentialsPlaceholdersForEmulators checks when placeholder credentials sign: a
// loopback endpoint, or any endpoint with INFLEET_AWS_EMULATOR=true; credentials in the
// environment win over them.
func TestAWSCredentialsPlaceholdersForEmulators(t *testing.T) {
	noAWSCredentials(t)
	ctx := context.Background()
	keyOf := func(cfg config.Config) string {
		t.Helper()
		ac, _, err := newAWSClients(cfg).config(ctx, "transport.sqs")
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		creds, err := ac.Credentials.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return creds.AccessKeyID
	}
	for _, endpoint := range []string{"http://127.0.0.1:4566", "http://localhost:4566", "http://[::1]:4566"} {
		if got := keyOf(sqsConfig(t, endpoint)); got != "infleet" {
			t.Errorf("%s: access key %q, want the placeholder", endpoint, got)
		}
	}
	remote := "http://localstack:4566"
	if got := keyOf(sqsConfig(t, remote, config.EnvAWSEmulator+"=true")); got != "infleet" {
		t.Errorf("%s with %s=true: access key %q, want the placeholder", remote, config.EnvAWSEmulator, got)
	}
	if _, _, err := newAWSClients(sqsConfig(t, remote, config.EnvAWSEmulator+"=false")).config(ctx, "transport.sqs"); err == nil {
		t.Errorf("%s with %s=false: credentials found, want the chain's failure", remote, config.EnvAWSEmulator)
	}
	if _, err := config.LoadBytes([]byte("{}"), "test", []string{config.EnvAWSEmulator + "=maybe"}); err == nil ||
		!strings.Contains(err.Error(), config.EnvAWSEmulator) {
		t.Errorf("%s=maybe: %v, want an error naming the variable", config.EnvAWSEmulator, err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	if got := keyOf(sqsConfig(t, "http://127.0.0.1:4566")); got != "AKIDFROMENV" {
		t.Errorf("loopback with AWS_ACCESS_KEY_ID set: access key %q, want the environment's", got)
	}
}
