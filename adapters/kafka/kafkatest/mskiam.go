package kafkatest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MSKIAMMechanism is the SASL name of Amazon MSK's IAM authentication.
const MSKIAMMechanism = "AWS_MSK_IAM"

// mskIAM is a broker's side of AWS_MSK_IAM: it checks the SigV4 signature of each payload with
// the secret of its access key, computed here from the signing rules (not with the SDK whose
// signing is under test), and keeps every payload it was sent.
type mskIAM struct {
	secrets map[string]string // access key id -> secret access key

	mu       sync.Mutex
	payloads []MSKIAMPayload
}

// MSKIAMPayload is one AWS_MSK_IAM authentication as the broker received it.
type MSKIAMPayload struct {
	// Fields are the payload's JSON object.
	Fields map[string]string
	// Err is why the broker refused it; nil when accepted.
	Err error
}

// MSKIAMPayloads returns the AWS_MSK_IAM authentications the cluster received, oldest first.
// It is nil for a cluster started without Options.MSKIAMSecrets.
func (c *Cluster) MSKIAMPayloads() []MSKIAMPayload {
	if c.msk == nil {
		return nil
	}
	c.msk.mu.Lock()
	defer c.msk.mu.Unlock()
	return slices.Clone(c.msk.payloads)
}

// install makes c answer the SASL handshake for AWS_MSK_IAM and verify its authentications.
// kfake's own SASL stays off: a client that skips authentication is not refused.
func (m *mskIAM) install(c *kfake.Cluster) {
	c.ControlKey(kmsg.SASLHandshake.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.SASLHandshakeRequest)
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{MSKIAMMechanism}
		if req.Mechanism != MSKIAMMechanism {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return resp, nil, true
	})
	c.ControlKey(kmsg.SASLAuthenticate.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.SASLAuthenticateRequest)
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		fields, err := m.verify(req.SASLAuthBytes, time.Now())
		m.mu.Lock()
		m.payloads = append(m.payloads, MSKIAMPayload{Fields: fields, Err: err})
		m.mu.Unlock()
		if err != nil {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := err.Error()
			resp.ErrorMessage = &msg
			return resp, nil, true
		}
		resp.SASLAuthBytes = []byte(`{"version":"2020_10_22","request-id":"kafkatest"}`)
		return resp, nil, true
	})
}

// verify checks an AWS_MSK_IAM payload as MSK documents it: a JSON object of the query of a
// presigned GET kafka://<host>/?Action=kafka-cluster:Connect, signed for the kafka-cluster
// service with the host header only.
func (m *mskIAM) verify(payload []byte, now time.Time) (map[string]string, error) {
	var fields map[string]string
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, fmt.Errorf("payload is not a JSON object of strings: %w", err)
	}
	for k, want := range map[string]string{
		"version": "2020_10_22", "action": "kafka-cluster:Connect",
		"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-signedheaders": "host",
	} {
		if fields[k] != want {
			return fields, fmt.Errorf("%s is %q, want %q", k, fields[k], want)
		}
	}
	for _, k := range []string{"host", "user-agent", "x-amz-credential", "x-amz-date", "x-amz-expires", "x-amz-signature"} {
		if fields[k] == "" {
			return fields, fmt.Errorf("%s is missing", k)
		}
	}
	scope := strings.Split(fields["x-amz-credential"], "/")
	if len(scope) != 5 || scope[3] != "kafka-cluster" || scope[4] != "aws4_request" {
		return fields, fmt.Errorf("x-amz-credential %q is not <key>/<date>/<region>/kafka-cluster/aws4_request", fields["x-amz-credential"])
	}
	secret, ok := m.secrets[scope[0]]
	if !ok {
		return fields, fmt.Errorf("access key %s is unknown", scope[0])
	}
	at, err := time.Parse("20060102T150405Z", fields["x-amz-date"])
	if err != nil || !strings.HasPrefix(fields["x-amz-date"], scope[1]) {
		return fields, fmt.Errorf("x-amz-date %q is not the credential's day in yyyyMMddTHHmmssZ", fields["x-amz-date"])
	}
	if d := now.Sub(at); d > 5*time.Minute || d < -5*time.Minute {
		return fields, fmt.Errorf("x-amz-date %s is %s away from now", at, d)
	}
	query := url.Values{"Action": {fields["action"]}}
	for k, name := range map[string]string{
		"x-amz-algorithm": "X-Amz-Algorithm", "x-amz-credential": "X-Amz-Credential", "x-amz-date": "X-Amz-Date",
		"x-amz-expires": "X-Amz-Expires", "x-amz-signedheaders": "X-Amz-SignedHeaders", "x-amz-security-token": "X-Amz-Security-Token",
	} {
		if v, ok := fields[k]; ok {
			query.Set(name, v)
		}
	}
	canonical := strings.Join([]string{
		"GET", "/", canonicalQuery(query), "host:" + fields["host"] + "\n", "host",
		hex.EncodeToString(sha(nil)), // the hash of the empty body
	}, "\n")
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", fields["x-amz-date"], strings.Join(scope[1:], "/"), hex.EncodeToString(sha([]byte(canonical)))}, "\n")
	key := []byte("AWS4" + secret)
	for _, part := range scope[1:] {
		key = mac(key, part)
	}
	if want := hex.EncodeToString(mac(key, toSign)); !hmac.Equal([]byte(want), []byte(fields["x-amz-signature"])) {
		return fields, errors.New("x-amz-signature does not match the signing rules with the access key's secret")
	}
	return fields, nil
}

// canonicalQuery encodes q as SigV4 wants: keys sorted, every byte but A-Z a-z 0-9 - _ . ~
// percent-encoded.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, uriEncode(k)+"="+uriEncode(q.Get(k)))
	}
	return strings.Join(parts, "&")
}

func uriEncode(s string) string {
	var sb strings.Builder
	for _, b := range []byte(s) {
		switch {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_', b == '.', b == '~':
			sb.WriteByte(b)
		default:
			fmt.Fprintf(&sb, "%%%02X", b)
		}
	}
	return sb.String()
}

func sha(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
