package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the request header carrying a webhook's signature.
const SignatureHeader = "Infleet-Signature"

// ErrInvalidSignature is matched (errors.Is) by every error Verify returns.
var ErrInvalidSignature = errors.New("invalid webhook signature")

// Sign returns the Infleet-Signature header value for body sent at t:
// "t=UNIX,v1=HEX(HMAC-SHA256(secret, UNIX + "." + body))", UNIX being t in whole seconds.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks that header, an Infleet-Signature value, signs body with secret, and, when
// tolerance is positive, that its timestamp is within tolerance of now (which bounds replays
// of a captured request). The header may carry several v1 values (as during a secret
// rotation); one matching is enough. Every error matches ErrInvalidSignature. Receivers call
// Verify on the raw request body, before decoding it.
func Verify(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed element %q (want t=UNIX,v1=HEX)", ErrInvalidSignature, part)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: v1 is not hexadecimal", ErrInvalidSignature)
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: header %s lacks t or v1 (want t=UNIX,v1=HEX)", ErrInvalidSignature, SignatureHeader)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a Unix time", ErrInvalidSignature, ts)
	}
	if tolerance > 0 {
		if age := now.Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
			return fmt.Errorf("%w: timestamp is %s away from now, beyond the %s tolerance (check both clocks)",
				ErrInvalidSignature, age.Round(time.Second), tolerance)
		}
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches (check the shared secret and that the body is verified unmodified)", ErrInvalidSignature)
}
