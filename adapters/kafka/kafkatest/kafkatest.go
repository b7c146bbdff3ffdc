// Package kafkatest starts in-process Kafka clusters (kfake, which speaks the real protocol)
// that require TLS and SASL, with throwaway certificates, for the tests of the Kafka
// transport and of the commands that wire it.
package kafkatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kfake's names of the SASL mechanisms (User.Mechanism).
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// User is a SASL user the cluster accepts.
type User struct {
	Mechanism string // Plain, ScramSHA256 or ScramSHA512
	Name      string
	Password  string
}

// Options says what a cluster requires.
type Options struct {
	// TLS makes the listener speak TLS only, with a certificate for 127.0.0.1 and localhost
	// signed by the Certs' CA.
	TLS bool
	// ClientCerts makes the TLS listener require a client certificate signed by the CA.
	ClientCerts bool
	// Users, when any, make every connection authenticate with SASL as one of them.
	Users []User
	// MSKIAMSecrets, when set, make the broker accept SASL AWS_MSK_IAM (which kfake does not
	// speak), verifying each payload's SigV4 signature with the secret access key of its
	// access key id, the map's key; Cluster.MSKIAMPayloads returns what it received. With it,
	// Users are ignored and unauthenticated clients are not refused.
	MSKIAMSecrets map[string]string
	// Partitions is the partition count of topics created without one (default 3).
	Partitions int
}

// Certs are a throwaway CA and certificates it signed, as PEM files under Dir.
type Certs struct {
	Dir string
	// CAFile is the CA's certificate: trust it to accept the cluster's.
	CAFile string
	// ClientCertFile and ClientKeyFile are a client certificate the cluster accepts.
	ClientCertFile, ClientKeyFile string
	// OtherCAFile is the certificate of a CA that signed nothing of the cluster's: trusting
	// only it fails the handshake.
	OtherCAFile string

	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	server tls.Certificate
}

// Cluster is a running cluster and the certificates to reach it.
type Cluster struct {
	Brokers []string
	Certs   *Certs

	msk *mskIAM
}

// Start runs a one-broker cluster that requires what opts says, stopped at t's cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	certs := NewCerts(t)
	kopts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(max(opts.Partitions, 3))}
	if opts.TLS {
		cfg := &tls.Config{Certificates: []tls.Certificate{certs.server}, MinVersion: tls.VersionTLS12}
		if opts.ClientCerts {
			pool := x509.NewCertPool()
			pool.AddCert(certs.ca)
			cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		kopts = append(kopts, kfake.TLS(cfg))
	}
	if len(opts.Users) > 0 && opts.MSKIAMSecrets == nil {
		kopts = append(kopts, kfake.EnableSASL())
		for _, u := range opts.Users {
			kopts = append(kopts, kfake.Superuser(u.Mechanism, u.Name, u.Password))
		}
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	out := &Cluster{Brokers: c.ListenAddrs(), Certs: certs}
	if opts.MSKIAMSecrets != nil {
		out.msk = &mskIAM{secrets: opts.MSKIAMSecrets}
		out.msk.install(c)
	}
	return out
}

// NewCerts makes a CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate and an unrelated CA, written as PEM files under a temporary directory of t.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{Dir: dir}
	var caDER []byte
	c.ca, c.caKey, caDER = newCA(t, "infleet test CA")
	c.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	_, _, otherDER := newCA(t, "unrelated test CA")
	c.OtherCAFile = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", otherDER)

	serverDER, serverKey := c.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	c.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}

	clientDER, clientKey := c.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "infleet-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	c.ClientCertFile = writePEM(t, dir, "client.pem", "CERTIFICATE", clientDER)
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	c.ClientKeyFile = writePEM(t, dir, "client-key.pem", "PRIVATE KEY", keyDER)
	return c
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, der
}

// sign issues tmpl, a leaf certificate, from the CA with a new key.
func (c *Certs) sign(t testing.TB, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca, &key.PublicKey, c.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
