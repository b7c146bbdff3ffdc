package ui

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Bounds of a session and its cookie.
const (
	// DefaultSessionTTL is how long a session lasts without use; each use extends it.
	DefaultSessionTTL = time.Hour
	// DefaultSessionMaxAge is how long a session lasts after login, however much it is used.
	DefaultSessionMaxAge = 12 * time.Hour
	// MinSessionKeyBytes is the least key material Config.SessionKey may hold.
	MinSessionKeyBytes = 32
	// MaxCredentialBytes is the longest credential a session keeps: the cookie that carries
	// it sealed must stay under the 4096 bytes browsers keep of a cookie.
	MaxCredentialBytes = 2048
	// maxFlashBytes bounds the one-time message a session carries to the next page.
	maxFlashBytes = 300
	// maxCookieBytes is the longest cookie value opened; anything longer is refused unread.
	maxCookieBytes = 4000
	// renewAfter is how old a cookie's expiry may get before a use seals it again with a new
	// one: renewing on every request would set a cookie on every answer.
	renewAfter = time.Minute
	// maxRevoked bounds the logged-out sessions a process remembers.
	maxRevoked = 10000
)

const cookieName = "infleet_console"

// sealVersion starts every sealed cookie; it and the cookie's name are the AEAD's additional
// data, so a value sealed for something else under the same key does not open here.
const sealVersion = "v1"

// session is one browser's: its CSRF token and, once logged in, its credential. It lives in
// the browser's cookie, sealed (AES-256-GCM) under the fleet's session key, so that any
// process holding the key serves it.
type session struct {
	// ID names the session in the process's list of logged-out sessions.
	ID   string `json:"i"`
	CSRF string `json:"c"`
	// APIKey or Bearer is the operator's credential (empty on the open console and before
	// login).
	APIKey string `json:"k,omitempty"`
	Bearer string `json:"b,omitempty"`
	Authed bool   `json:"a,omitempty"`
	// Login is when the operator logged in (or the session started), Unix seconds; the
	// session ends DefaultSessionMaxAge after it.
	Login int64 `json:"l"`
	// Expires is when the session ends unless used again, Unix seconds.
	Expires int64 `json:"e"`
	// Flash is a one-time message shown on the next page.
	Flash string `json:"f,omitempty"`
}

func (s *session) cred() credential { return credential{apiKey: s.APIKey, bearer: s.Bearer} }

// sessions seals sessions into cookies and opens them. The only state it keeps is the list of
// sessions logged out through this process, so that their live streams end and their cookies
// are refused here at once. Safe for concurrent use.
type sessions struct {
	aead   cipher.AEAD
	ttl    time.Duration
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	revoked map[string]int64 // session id: its expiry, Unix seconds
}

// errSessionKey is what New says of a key too short to seal sessions with.
var errSessionKey = errors.New("ui: the session key is shorter than 32 bytes (give console.session_key as base64 of at least 32 random bytes, e.g. openssl rand -base64 32)")

// newSessions returns sessions sealed under key (at least MinSessionKeyBytes; the AES-256
// key is derived from it with HKDF-SHA256).
func newSessions(key []byte, ttl, maxAge time.Duration) (*sessions, error) {
	if len(key) < MinSessionKeyBytes {
		return nil, errSessionKey
	}
	k, err := hkdf.Key(sha256.New, key, nil, "infleet console session "+sealVersion, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sessions{aead: aead, ttl: ttl, maxAge: maxAge, now: time.Now, revoked: map[string]int64{}}, nil
}

// RandomSessionKey returns a fresh key for one process's sessions, for when the fleet shares
// none: its sessions then open only in the process that made them.
func RandomSessionKey() []byte {
	b := make([]byte, MinSessionKeyBytes)
	_, _ = rand.Read(b)
	return b
}

func additionalData() []byte { return []byte(cookieName + " " + sealVersion) }

// seal returns sess as a cookie value: version, then base64url of nonce and ciphertext.
func (s *sessions) seal(sess *session) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sess); err != nil {
		return "", err
	}
	plain := buf.Bytes()
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := s.aead.Seal(nonce, nonce, plain, additionalData())
	v := sealVersion + "." + base64.RawURLEncoding.EncodeToString(sealed)
	if len(v) > maxCookieBytes {
		return "", errors.New("ui: the session does not fit in a cookie")
	}
	return v, nil
}

// open returns the session sealed in value, or nil when value was not sealed under this key,
// was changed, has expired or was logged out here.
func (s *sessions) open(value string) *session {
	if len(value) > maxCookieBytes {
		return nil
	}
	enc, ok := strings.CutPrefix(value, sealVersion+".")
	if !ok {
		return nil
	}
	sealed, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(sealed) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], additionalData())
	if err != nil {
		return nil
	}
	var sess session
	if json.Unmarshal(plain, &sess) != nil || sess.ID == "" || sess.CSRF == "" {
		return nil
	}
	if !s.alive(&sess) {
		return nil
	}
	return &sess
}

// alive reports whether sess has neither expired (idle or past its maximum age) nor been
// logged out through this process.
func (s *sessions) alive(sess *session) bool {
	now := s.now().Unix()
	if now >= sess.Expires || now >= sess.Login+int64(s.maxAge/time.Second) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, out := s.revoked[sess.ID]
	return !out
}

// get returns the request's live session, renewing its cookie on w when its expiry has aged,
// or nil.
func (s *sessions) get(w http.ResponseWriter, r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	sess := s.open(ck.Value)
	if sess == nil {
		return nil
	}
	if want := s.expiry(sess.Login); want-sess.Expires >= int64(renewAfter/time.Second) {
		sess.Expires = want
		s.save(w, r, sess)
	}
	return sess
}

// expiry is when a session used now ends: after the idle TTL, or at its maximum age.
func (s *sessions) expiry(login int64) int64 {
	return min(s.now().Add(s.ttl).Unix(), login+int64(s.maxAge/time.Second))
}

// start begins a session, sets its cookie on w and returns it.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, cred credential, authed bool) *session {
	now := s.now().Unix()
	sess := &session{ID: token(), CSRF: token(), APIKey: cred.apiKey, Bearer: cred.bearer, Authed: authed, Login: now}
	sess.Expires = s.expiry(now)
	s.save(w, r, sess)
	return sess
}

// save seals sess into the cookie set on w.
func (s *sessions) save(w http.ResponseWriter, r *http.Request, sess *session) {
	if len(sess.Flash) > maxFlashBytes {
		sess.Flash = sess.Flash[:maxFlashBytes]
	}
	v, err := s.seal(sess)
	if err != nil && sess.Flash != "" {
		// A message that does not fit is dropped rather than the session.
		sess.Flash = ""
		v, err = s.seal(sess)
	}
	if err != nil {
		// Login refuses a credential that does not fit (fits); the browser keeps its old
		// cookie.
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/ui/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// fits reports whether a session holding cred fits in a cookie.
func (s *sessions) fits(cred credential) bool {
	_, err := s.seal(&session{ID: token(), CSRF: token(), APIKey: cred.apiKey, Bearer: cred.bearer, Authed: true,
		Login: s.now().Unix(), Expires: s.now().Unix()})
	return err == nil
}

// end logs sess out: this process refuses it from now on, and the browser drops its cookie.
// Other processes cannot hear of it: a copy of the cookie opens there until it expires.
func (s *sessions) end(w http.ResponseWriter, r *http.Request, sess *session) {
	s.mu.Lock()
	now := s.now().Unix()
	if len(s.revoked) >= maxRevoked {
		for id, exp := range s.revoked {
			if exp <= now {
				delete(s.revoked, id)
			}
		}
	}
	if len(s.revoked) < maxRevoked {
		// Another process may have renewed it: it could live until its maximum age.
		s.revoked[sess.ID] = sess.Login + int64(s.maxAge/time.Second)
	}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
