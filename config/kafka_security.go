package config

import "strings"

// SASL mechanisms of transport.kafka.sasl.mechanism and notify.kafka.sasl.mechanism.
const (
	KafkaSASLPlain       = "plain"
	KafkaSASLScramSHA256 = "scram-sha-256"
	KafkaSASLScramSHA512 = "scram-sha-512"
	KafkaSASLAWSMSKIAM   = "aws-msk-iam"
)

// KafkaTLS configures TLS to the brokers. It is on when Enabled is true or any file, the
// server name or insecure_skip_verify is set; off by default (plaintext).
type KafkaTLS struct {
	// Enabled turns TLS on with the system's CA roots. Default false.
	Enabled bool `yaml:"enabled,omitempty"`
	// CAFile is a PEM file of the CAs that sign the brokers' certificates, trusted instead of
	// the system's roots. Default "" (the system's roots).
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile and KeyFile are a PEM client certificate and its key, for brokers that
	// authenticate clients by certificate (mTLS). Both or neither. Default "".
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// ServerName is the name the brokers' certificates must carry. Default "" (each broker's
	// host).
	ServerName string `yaml:"server_name,omitempty"`
	// InsecureSkipVerify accepts any broker certificate: anyone on the path can read and change
	// the traffic. Refused unless AllowInsecure is also true. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
	// AllowInsecure is the explicit consent that insecure_skip_verify, and SASL plain without
	// TLS, need: for test clusters only. Default false.
	AllowInsecure bool `yaml:"allow_insecure,omitempty"`
}

// On reports whether t turns TLS on.
func (t KafkaTLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// KafkaSASL configures SASL authentication to the brokers. Off when Mechanism is "".
type KafkaSASL struct {
	// Mechanism is plain, scram-sha-256, scram-sha-512 or aws-msk-iam. Default "" (none).
	Mechanism string `yaml:"mechanism,omitempty"`
	// Username and Password are the credentials of plain and the scram mechanisms. Password is
	// a secret: set it through the environment (INFLEET_TRANSPORT_KAFKA_SASL_PASSWORD); it is
	// never logged. Default "".
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	// AWSRegion is the MSK cluster's region for aws-msk-iam, whose credentials come from the
	// AWS SDK's default chain (environment, profile, web identity, ECS or EC2 role). Default ""
	// (the SDK's region: AWS_REGION or the profile's).
	AWSRegion string `yaml:"aws_region,omitempty"`
}

// checkKafkaSecurity checks transport.kafka's and notify.kafka's tls and sasl sections.
func (c *Config) checkKafkaSecurity(p *problems) {
	checkKafkaTLSAndSASL(p, "transport.kafka", c.Transport.Kafka.TLS, c.Transport.Kafka.SASL)
	n := c.Notify.Kafka
	checkKafkaTLSAndSASL(p, "notify.kafka", n.TLS, n.SASL)
	if len(n.Brokers) == 0 && (n.TLS != KafkaTLS{} || n.SASL != KafkaSASL{}) {
		p.add("notify.kafka.brokers", "is required with notify.kafka.tls or notify.kafka.sasl: on the transport's cluster, events use transport.kafka.tls and transport.kafka.sasl")
	}
}

// checkKafkaTLSAndSASL reports the problems of one tls and sasl pair under prefix.
func checkKafkaTLSAndSASL(p *problems, prefix string, t KafkaTLS, s KafkaSASL) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		p.add(prefix+".tls.key_file", "is required with %s.tls.cert_file (the client certificate's private key, PEM)", prefix)
	case t.KeyFile != "" && t.CertFile == "":
		p.add(prefix+".tls.cert_file", "is required with %s.tls.key_file (the client certificate, PEM)", prefix)
	}
	if t.InsecureSkipVerify && !t.AllowInsecure {
		p.add(prefix+".tls.insecure_skip_verify", "turns off the check of the brokers' certificates, so anyone on the path can read and change the traffic: give %s.tls.ca_file instead, or also set %s.tls.allow_insecure: true if this is a test cluster", prefix, prefix)
	}
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			p.add(prefix+".sasl.mechanism", "is required when a username or password is set (plain, scram-sha-256 or scram-sha-512)")
		}
	case KafkaSASLPlain, KafkaSASLScramSHA256, KafkaSASLScramSHA512:
		if s.Username == "" {
			p.add(prefix+".sasl.username", "is required with mechanism %s", s.Mechanism)
		}
		if s.Password == "" {
			p.add(prefix+".sasl.password", "is required with mechanism %s (set it through INFLEET_%s_SASL_PASSWORD rather than in the file)", s.Mechanism, envName(prefix))
		}
		if s.Mechanism == KafkaSASLPlain && !t.On() && !t.AllowInsecure {
			p.add(prefix+".sasl.mechanism", "plain sends the password in clear without TLS: set %s.tls.enabled: true (or a ca_file), or %s.tls.allow_insecure: true if this is a test cluster", prefix, prefix)
		}
		if s.AWSRegion != "" {
			p.add(prefix+".sasl.aws_region", "is only for mechanism aws-msk-iam; remove it")
		}
	case KafkaSASLAWSMSKIAM:
		if s.Username != "" || s.Password != "" {
			p.add(prefix+".sasl.username", "is not used by aws-msk-iam, which signs with the AWS credential chain (environment, profile, IAM role): remove username and password")
		}
		if !t.On() {
			p.add(prefix+".sasl.mechanism", "aws-msk-iam needs TLS (MSK's IAM listener, port 9098, speaks TLS only): set %s.tls.enabled: true", prefix)
		}
	default:
		p.add(prefix+".sasl.mechanism", "%q is unknown: use plain, scram-sha-256, scram-sha-512 or aws-msk-iam", s.Mechanism)
	}
}

// envName turns a dotted key prefix into its environment variable's middle part.
func envName(prefix string) string {
	return strings.ToUpper(strings.ReplaceAll(prefix, ".", "_"))
}
