package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/infleet/infleet/schemas"
)

// problems collects semantic problems in the order they are found.
type problems []schemas.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, schemas.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// semantic checks the rules the schema cannot express. It expects defaults applied.
func (c *Config) semantic() *ValidationError {
	var p problems
	c.checkModels(&p)
	c.checkRoutes(&p)
	c.checkTransport(&p)

	switch c.Store.Kind {
	case StoreDynamoDB:
		if c.Store.DynamoDB.Table == "" {
			p.add("store.dynamodb.table", "is required when store.kind is dynamodb (e.g. infleet-jobs)")
		}
		if c.HTTP.MaxBodyBytes > MaxDynamoDBBodyBytes {
			p.add("http.max_body_bytes", "is %d, but a DynamoDB item (which holds the job) is at most 400 KB: set it to %d or less and send larger inputs as input.s3_uri",
				c.HTTP.MaxBodyBytes, MaxDynamoDBBodyBytes)
		}
	case StorePostgres:
		if c.Store.Postgres.DSN == "" {
			p.add("store.postgres.dsn", "is required when store.kind is postgres (postgres://user:pass@host:5432/db)")
		}
	}
	if c.Results.Kind == ResultsS3 && c.Results.S3.Bucket == "" {
		p.add("results.s3.bucket", "is required when results.kind is s3 (e.g. infleet-results)")
	}

	rb := c.Workers.RetryBackoff
	if rb.Initial > rb.Max {
		p.add("workers.retry_backoff.initial", "is %s, more than workers.retry_backoff.max (%s); lower it or raise max", rb.Initial, rb.Max)
	}

	for _, sg := range []struct {
		side string
		g    GuardrailPolicies
	}{{"input", c.Guardrails.Input}, {"output", c.Guardrails.Output}} {
		side, g := sg.side, sg.g
		if tc := g.TopicClassifier; tc != nil {
			field := "guardrails." + side + ".topic_classifier"
			if _, ok := c.Model(tc.Model); !ok {
				p.add(field+".model", "names model %s, which is not configured; %s", tc.Model, c.modelHint())
			}
			if len(g.DeniedTopics) == 0 {
				p.add(field, "classifies against guardrails.%s.denied_topics, which is empty; add the topics", side)
			}
		}
	}

	for i, t := range c.Triggers.S3 {
		if t.Model != "" {
			if _, ok := c.Model(t.Model); !ok {
				p.add("triggers.s3["+strconv.Itoa(i)+"].model", "names model %s, which is not configured; %s", t.Model, c.modelHint())
			}
		}
	}

	keys := map[string]int{}
	for i, k := range c.Auth.APIKeys {
		field := "auth.api_keys[" + strconv.Itoa(i) + "]"
		if (k.Key == "") == (k.KeySHA256 == "") {
			p.add(field+".key", "give exactly one of key (plain text, for development) and key_sha256 (its SHA-256 in hex)")
		}
		if k.Key != "" {
			if j, dup := keys[k.Key]; dup {
				p.add(field+".key", "is the same as auth.api_keys[%d].key; give every client its own key", j)
			}
			keys[k.Key] = i
		}
		for j, m := range k.Models {
			if _, ok := c.Model(m); m != "*" && !ok {
				p.add(field+".models["+strconv.Itoa(j)+"]", "names model %s, which is not configured; use \"*\" or %s", m, c.modelHint())
			}
		}
	}

	if j := c.Auth.JWT; j.JWKSURL != "" && j.Issuer == "" {
		p.add("auth.jwt.issuer", "is required with auth.jwt.jwks_url; set it to the iss claim of the tokens")
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		p.add("http.tls_cert_file", "and http.tls_key_file go together; set both or neither")
	}
	if h := c.HTTP; h.MaxInflightBodyBytes < h.MaxBodyBytes {
		p.add("http.max_inflight_body_bytes", "is %d, less than http.max_body_bytes (%d), so the largest body could never be read; raise it to at least %d",
			h.MaxInflightBodyBytes, h.MaxBodyBytes, h.MaxBodyBytes)
	}
	if h := c.HTTP; h.WriteTimeout < h.ReadTimeout {
		p.add("http.write_timeout", "is %s, shorter than http.read_timeout (%s): a body that arrives in time could not be answered; make it at least %s",
			h.WriteTimeout, h.ReadTimeout, h.ReadTimeout)
	}
	if h := c.HTTP; h.ReadHeaderTimeout > h.ReadTimeout {
		p.add("http.read_header_timeout", "is %s, longer than http.read_timeout (%s), which bounds the head too; lower it or raise read_timeout",
			h.ReadHeaderTimeout, h.ReadTimeout)
	}

	if ma := c.Metrics.Auth; (ma.Username == "") != (ma.PasswordEnv == "") {
		p.add("metrics.auth.username", "and metrics.auth.password_env go together (HTTP basic auth); set both or neither")
	}

	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

func (c *Config) modelHint() string {
	names := make([]string, len(c.Models))
	for i, m := range c.Models {
		names[i] = m.Name
	}
	return "configured models: " + strings.Join(names, ", ")
}

func (c *Config) checkModels(p *problems) {
	seen := map[string]int{}
	for i, m := range c.Models {
		field := "models[" + strconv.Itoa(i) + "]"
		if j, dup := seen[m.Name]; dup {
			p.add(field+".name", "%s is already the name of models[%d]; model names must be unique", m.Name, j)
		} else {
			seen[m.Name] = i
		}
		switch m.Provider {
		case ProviderOpenAI:
			if m.BaseURL == "" {
				p.add(field+".base_url", "is required for provider openai (e.g. http://127.0.0.1:9000/v1)")
			}
			if m.ModelID == "" {
				p.add(field+".model_id", "is required for provider openai (e.g. gpt-4o-mini)")
			}
		case ProviderBedrock:
			if m.ModelID == "" {
				p.add(field+".model_id", "is required for provider bedrock (e.g. anthropic.claude-sonnet-4-20250514)")
			}
		}
		for j, fb := range m.Fallbacks {
			ff := field + ".fallbacks[" + strconv.Itoa(j) + "]"
			switch {
			case fb == m.Name:
				p.add(ff, "is the model itself; name another model")
			case slices.Index(m.Fallbacks, fb) < j:
				p.add(ff, "repeats %s; list each fallback once", fb)
			default:
				if _, ok := c.Model(fb); !ok {
					p.add(ff, "names model %s, which is not configured; %s", fb, c.modelHint())
				}
			}
		}
	}
}

func (c *Config) checkRoutes(p *problems) {
	tasks := make([]string, 0, len(c.Routes))
	for task := range c.Routes {
		tasks = append(tasks, task)
	}
	slices.Sort(tasks)
	for _, task := range tasks {
		model := c.Routes[task]
		field := "routes." + task
		if !identOK(task) {
			field = "routes[" + strconv.Quote(task) + "]"
			p.add(field, "is not a task name: it must start with a letter or digit and contain only letters, digits and . _ : -")
		}
		if _, ok := c.Model(model); !ok {
			p.add(field, "names model %s, which is not configured; %s", model, c.modelHint())
		}
	}
	if _, ok := c.Routes[DefaultRoute]; !ok {
		p.add("routes.default", "is required: name the model of tasks without a route of their own (e.g. default: %s)", c.Models[0].Name)
	}
}

func (c *Config) checkTransport(p *problems) {
	// distinct reports names used for more than one priority or for the dead letters.
	distinct := func(fields, names []string) {
		seen := map[string]string{}
		for i, name := range names {
			if other, dup := seen[name]; dup {
				p.add(fields[i], "%s is also %s; every priority and the dead letters need their own", name, other)
				continue
			}
			seen[name] = fields[i]
		}
	}
	switch t := c.Transport; t.Kind {
	case TransportSQS:
		distinct(
			[]string{"transport.sqs.queues.high", "transport.sqs.queues.normal", "transport.sqs.queues.low", "transport.sqs.dead_letter_queue"},
			[]string{t.SQS.Queues.High, t.SQS.Queues.Normal, t.SQS.Queues.Low, t.SQS.DeadLetterQueue})
	case TransportKafka:
		if len(t.Kafka.Brokers) == 0 {
			p.add("transport.kafka.brokers", "is required when transport.kind is kafka (e.g. [\"127.0.0.1:9092\"] or INFLEET_TRANSPORT_KAFKA_BROKERS=host1:9092,host2:9092)")
		}
		distinct(
			[]string{"transport.kafka.topics.high", "transport.kafka.topics.normal", "transport.kafka.topics.low", "transport.kafka.dead_letter_topic"},
			[]string{t.Kafka.Topics.High, t.Kafka.Topics.Normal, t.Kafka.Topics.Low, t.Kafka.DeadLetterTopic})
	}
}

// identOK matches the schema's task and model names: ^[A-Za-z0-9][A-Za-z0-9._:-]*$, at most 128.
func identOK(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		alnum := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
		if !alnum && (i == 0 || (ch != '.' && ch != '_' && ch != ':' && ch != '-')) {
			return false
		}
	}
	return true
}
