package ui

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sealedOf returns the console cookie's value set on rec.
func sealedOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == cookieName {
			return ck.Value
		}
	}
	t.Fatalf("no %s cookie set: %v", cookieName, rec.Header())
	return ""
}

func testSessions(t *testing.T, key []byte, now *time.Time) *sessions {
	t.Helper()
	s, err := newSessions(key, time.Hour, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return *now }
	return s
}

// TestSealedSessions opens a session under the key that sealed it, in another process's
// sessions too, and refuses it changed, under another key, expired idle or past its maximum
// age, logged out, or too long to be a cookie. The credential never shows in the cookie.
func TestSealedSessions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	key := bytes.Repeat([]byte("k"), 32)
	one, other := testSessions(t, key, &now), testSessions(t, key, &now)
	stranger := testSessions(t, bytes.Repeat([]byte("x"), 32), &now)

	secret := "k_live_" + strings.Repeat("s", MaxCredentialBytes-7)
	rec := httptest.NewRecorder()
	sess := one.start(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil), credential{apiKey: secret}, true)
	sess.Flash = strings.Repeat("f", 2*maxFlashBytes)
	rec = httptest.NewRecorder()
	one.save(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil), sess)
	value := sealedOf(t, rec)
	if len(value) > maxCookieBytes || strings.Contains(value, "k_live_") {
		t.Fatalf("cookie of %d bytes (at most %d), credential in sight: %v", len(value), maxCookieBytes, strings.Contains(value, "k_live_"))
	}
	if ck := rec.Result().Cookies()[0]; !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/ui/" {
		t.Fatalf("cookie attributes: %+v", ck)
	}
	got := other.open(value)
	if got == nil || got.APIKey != secret || !got.Authed || got.CSRF != sess.CSRF || len(got.Flash) != maxFlashBytes {
		t.Fatalf("another process with the key opened %+v", got)
	}
	if stranger.open(value) != nil {
		t.Fatal("a process with another key opened the session")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(value, "v1."))
	for _, i := range []int{0, len(raw) / 2, len(raw) - 1} {
		tampered := bytes.Clone(raw)
		tampered[i] ^= 1
		if one.open("v1."+base64.RawURLEncoding.EncodeToString(tampered)) != nil {
			t.Fatalf("a cookie with byte %d changed opened", i)
		}
	}
	for _, bad := range []string{"", "v1.", "v2." + strings.TrimPrefix(value, "v1."), value + "A", strings.Repeat("A", maxCookieBytes+1)} {
		if one.open(bad) != nil {
			t.Fatalf("%.20q… opened", bad)
		}
	}

	// Idle: used within the hour it lives on, renewed; an hour untouched it is over.
	later := now.Add(59 * time.Minute)
	now = later
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/ui/", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: value})
	if one.get(rec, req) == nil {
		t.Fatal("a session used after 59 minutes was refused")
	}
	renewed := sealedOf(t, rec)
	now = later.Add(time.Hour)
	if one.open(renewed) != nil || one.open(value) != nil {
		t.Fatal("a session idle for an hour opened")
	}
	now = later.Add(59 * time.Minute)
	if one.open(renewed) == nil || one.open(value) != nil {
		t.Fatal("renewal did not extend the session, or the old cookie lives on")
	}
	// However much it is used, it ends 12 hours after login.
	sess = other.open(renewed)
	sess.Expires = now.Add(24 * time.Hour).Unix()
	rec = httptest.NewRecorder()
	other.save(rec, req, sess)
	now = time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	if one.open(sealedOf(t, rec)) != nil {
		t.Fatal("a session 12 hours after login opened")
	}

	// Logged out through one process, it is refused there; another cannot know.
	now = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	sess = one.open(value)
	rec = httptest.NewRecorder()
	one.end(rec, req, sess)
	if one.open(value) != nil || other.open(value) == nil {
		t.Fatal("logout: refused by the process that logged out, still open elsewhere, was not so")
	}
	if ck := rec.Result().Cookies()[0]; ck.MaxAge >= 0 || ck.Value != "" {
		t.Fatalf("logout left the cookie: %+v", ck)
	}
	if !one.fits(credential{apiKey: secret}) || one.fits(credential{apiKey: strings.Repeat("\x01", MaxCredentialBytes)}) {
		t.Fatal("fits: the longest plain credential should fit and one of control characters, escaped six-fold, not")
	}
	if _, err := newSessions(key[:31], time.Hour, time.Hour); err == nil {
		t.Fatal("a 31-byte key was taken")
	}
}

// TestConsoleRefusesAnExpiredSession sends a browser with an expired, a foreign and a changed
// cookie to the login page, and a POST with any of them is refused.
func TestConsoleRefusesAnExpiredSession(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte("k"), 32)
	h, err := New(Config{API: http.NotFoundHandler(), Auth: true, SessionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	seal := func(key []byte, expires time.Time) string {
		s := testSessions(t, key, &now)
		v, err := s.seal(&session{ID: token(), CSRF: "csrf", APIKey: "k_ops", Authed: true, Login: now.Unix(), Expires: expires.Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	live := seal(key, now.Add(time.Hour))
	for name, value := range map[string]string{
		"expired": seal(key, now.Add(-time.Second)),
		"foreign": seal(bytes.Repeat([]byte("x"), 32), now.Add(time.Hour)),
		"changed": live[:len(live)-2] + map[bool]string{true: "AA", false: "BA"}[strings.HasSuffix(live, "BA")],
	} {
		req := httptest.NewRequest(http.MethodGet, "/ui/jobs", nil)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: value})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/login" {
			t.Fatalf("%s cookie: GET /ui/jobs answered %d to %q", name, rec.Code, rec.Header().Get("Location"))
		}
		req = httptest.NewRequest(http.MethodPost, "/ui/logout", strings.NewReader("csrf=csrf"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: cookieName, Value: value})
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("%s cookie: POST /ui/logout answered %d", name, rec.Code)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/ui/logout", strings.NewReader("csrf=csrf"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: cookieName, Value: live})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/login" {
		t.Fatalf("live cookie: POST /ui/logout answered %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}
