package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Bounds of an API key as sent in x-api-key.
const (
	minAPIKeyLen = 8
	maxAPIKeyLen = 512
)

// APIKeySpec is one configured API key: the secret in plain text or its SHA-256 (exactly one of
// Key and SHA256), and the principal a request with it acts as.
type APIKeySpec struct {
	// Key is the secret itself (development).
	Key string
	// SHA256 is the lowercase or uppercase hex SHA-256 of the secret (production).
	SHA256 string
	// Principal is who the key stands for; its ID is derived from the key's hash when empty.
	Principal Principal
}

// APIKeys verifies x-api-key headers. Only SHA-256 digests of the keys are kept, compared in
// constant time against the digest of the presented key (every configured key is compared, so
// the time taken says nothing about which key nearly matched). It never logs or returns a key.
// Safe for concurrent use.
type APIKeys struct {
	digests    [][sha256.Size]byte
	principals []Principal
}

var _ Verifier = (*APIKeys)(nil)

// NewAPIKeys returns a verifier of specs. It fails when a spec has neither or both of Key and
// SHA256, a malformed SHA256, or the same secret as another spec.
func NewAPIKeys(specs []APIKeySpec) (*APIKeys, error) {
	k := &APIKeys{}
	var errs []error
	for i, s := range specs {
		var d [sha256.Size]byte
		switch {
		case (s.Key == "") == (s.SHA256 == ""):
			errs = append(errs, fmt.Errorf("api key %d: give exactly one of key and key_sha256", i))
			continue
		case s.Key != "":
			d = sha256.Sum256([]byte(s.Key))
		default:
			b, err := hex.DecodeString(s.SHA256)
			if err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("api key %d: key_sha256 must be 64 hex digits (echo -n KEY | sha256sum)", i))
				continue
			}
			d = [sha256.Size]byte(b)
		}
		for j, o := range k.digests {
			if o == d {
				errs = append(errs, fmt.Errorf("api key %d: the same secret as api key %d; give every client its own key", i, j))
			}
		}
		p := s.Principal
		if p.ID == "" {
			p.ID = "key:" + hex.EncodeToString(d[:4])
		}
		if p.Limit.Key == "" {
			p.Limit.Key = "key:" + hex.EncodeToString(d[:8])
		}
		k.digests = append(k.digests, d)
		k.principals = append(k.principals, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// ParseAPIKey returns the key of an x-api-key header value: printable ASCII without spaces,
// 8 to 512 bytes, surrounding white space removed. The error never contains the value.
func ParseAPIKey(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) < minAPIKeyLen || len(v) > maxAPIKeyLen {
		return "", fmt.Errorf("an API key has %d to %d characters", minAPIKeyLen, maxAPIKeyLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' {
			return "", errors.New("an API key is printable ASCII without spaces")
		}
	}
	return v, nil
}

// errUnknownKey is the answer to a well-formed key that is not configured.
var errUnknownKey = errors.New("the API key is not valid")

// Verify implements Verifier for the x-api-key header.
func (k *APIKeys) Verify(r *http.Request) (Principal, error) {
	vals := r.Header.Values(HeaderAPIKey)
	if len(vals) == 0 {
		return Principal{}, ErrNoCredentials
	}
	if len(vals) > 1 {
		return Principal{}, errors.New("send one x-api-key header")
	}
	key, err := ParseAPIKey(vals[0])
	if err != nil {
		return Principal{}, err
	}
	return k.lookup(key)
}

func (k *APIKeys) lookup(key string) (Principal, error) {
	d := sha256.Sum256([]byte(key))
	found := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(d[:], k.digests[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, errUnknownKey
	}
	return k.principals[found], nil
}
