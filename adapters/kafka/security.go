package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	signer "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/aws_msk_iam_v2"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms (SASLOptions.Mechanism).
const (
	// SASLPlain sends the username and password as they are: use it over TLS only.
	SASLPlain = "plain"
	// SASLScramSHA256 and SASLScramSHA512 prove the password without sending it (RFC 5802).
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
	// SASLAWSMSKIAM signs each connection with AWS credentials (SigV4), for Amazon MSK's
	// IAM access control.
	SASLAWSMSKIAM = "aws-msk-iam"
)

// dialTimeout bounds the TCP connect, TLS handshake and SASL exchange of one connection.
const dialTimeout = 10 * time.Second

// TLSOptions describes the client side of TLS to the brokers. The zero value is plaintext.
type TLSOptions struct {
	// Enabled turns TLS on with the system's roots; setting any other field turns it on too.
	Enabled bool
	// CAFile is a PEM file of the CAs that sign the brokers' certificates, trusted instead of
	// the system's roots. Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for brokers that
	// authenticate clients by certificate (mTLS). Both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name the brokers' certificates must carry. Default: each broker's
	// host.
	ServerName string
	// InsecureSkipVerify accepts any certificate: the traffic is encrypted but anyone on the
	// path can read and change it. For tests only.
	InsecureSkipVerify bool
}

// on reports whether opts asks for TLS.
func (opts TLSOptions) on() bool {
	return opts.Enabled || opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" ||
		opts.ServerName != "" || opts.InsecureSkipVerify
}

// NewTLSConfig returns the client TLS configuration opts describes, reading its files now,
// or nil when opts asks for no TLS. Errors name the file and what is wrong with it.
func NewTLSConfig(opts TLSOptions) (*tls.Config, error) {
	if !opts.on() {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         opts.ServerName,
		InsecureSkipVerify: opts.InsecureSkipVerify, //nolint:gosec // refused by config validation unless the operator opts in
	}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case opts.CertFile != "" && opts.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s and key %s: %w", opts.CertFile, opts.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case opts.CertFile != "" || opts.KeyFile != "":
		return nil, errors.New("a client certificate needs both its certificate file and its key file")
	}
	return cfg, nil
}

// SASLOptions describes the SASL authentication of every connection. The zero value
// authenticates none.
type SASLOptions struct {
	// Mechanism is SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLAWSMSKIAM, or "" for none.
	Mechanism string
	// Username and Password are the credentials of plain and the scram mechanisms.
	Username string
	Password string
	// AWSCredentials sign aws-msk-iam connections (config.LoadDefaultConfig's chain, say);
	// AWSRegion is the cluster's region. Both required for aws-msk-iam.
	AWSCredentials aws.CredentialsProvider
	AWSRegion      string
}

// NewSASLMechanism returns the mechanism opts describes, or nil when opts.Mechanism is "".
func NewSASLMechanism(opts SASLOptions) (sasl.Mechanism, error) {
	needPassword := func() error {
		if opts.Username == "" || opts.Password == "" {
			return fmt.Errorf("%s needs a username and a password", opts.Mechanism)
		}
		return nil
	}
	switch opts.Mechanism {
	case "":
		return nil, nil
	case SASLPlain:
		if err := needPassword(); err != nil {
			return nil, err
		}
		return plain.Mechanism{Username: opts.Username, Password: opts.Password}, nil
	case SASLScramSHA256, SASLScramSHA512:
		if err := needPassword(); err != nil {
			return nil, err
		}
		algo := scram.SHA256
		if opts.Mechanism == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, opts.Username, opts.Password)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opts.Mechanism, err)
		}
		return m, nil
	case SASLAWSMSKIAM:
		if opts.AWSCredentials == nil || opts.AWSRegion == "" {
			return nil, errors.New("aws-msk-iam needs AWS credentials and the cluster's region (set AWS_REGION or the region setting)")
		}
		return &aws_msk_iam_v2.Mechanism{Signer: signer.NewSigner(), Credentials: opts.AWSCredentials, Region: opts.AWSRegion}, nil
	default:
		return nil, fmt.Errorf("SASL mechanism %q is unknown (use %s, %s, %s or %s)",
			opts.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLAWSMSKIAM)
	}
}

// newTransport returns the round tripper of kafka-go Writers and Clients with tlsCfg and
// mech, or nil (kafka-go's default transport) when both are nil.
func newTransport(tlsCfg *tls.Config, mech sasl.Mechanism) kafkago.RoundTripper {
	if tlsCfg == nil && mech == nil {
		return nil
	}
	return &kafkago.Transport{TLS: tlsCfg, SASL: mech, DialTimeout: dialTimeout}
}

// newDialer returns the dialer of kafka-go Readers and consumer groups with tlsCfg and mech,
// or nil (kafka-go's default dialer) when both are nil.
func newDialer(tlsCfg *tls.Config, mech sasl.Mechanism) *kafkago.Dialer {
	if tlsCfg == nil && mech == nil {
		return nil
	}
	return &kafkago.Dialer{Timeout: dialTimeout, DualStack: true, TLS: tlsCfg, SASLMechanism: mech}
}

// closeTransport closes the idle connections of a transport made by newTransport.
func closeTransport(rt kafkago.RoundTripper) {
	if t, ok := rt.(*kafkago.Transport); ok {
		t.CloseIdleConnections()
	}
}
