package config

import (
	"strings"
	"testing"
)

// TestConsoleSessionKey reads console.session_key from the environment in any base64 alphabet,
// and refuses one that is not base64 or too short by naming the setting, never the key.
func TestConsoleSessionKey(t *testing.T) {
	t.Parallel()
	for _, enc := range []string{"c3+/" + strings.Repeat("AAAA", 10), "c3-_" + strings.Repeat("AAAA", 10)} {
		c, err := Load("", []string{"INFLEET_CONSOLE_SESSION_KEY=" + enc})
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if b, ok := c.Console.SessionKeyBytes(); !ok || len(b) != 33 {
			t.Fatalf("%s: key of %d bytes, ok %v", enc, len(b), ok)
		}
	}
	if b, ok := (Console{}).SessionKeyBytes(); b != nil || !ok {
		t.Fatalf("unset key: %v %v", b, ok)
	}
	for secret, want := range map[string]string{
		"c2hvcnQta2V5":                    "decodes to 9 bytes, fewer than 32",
		"not base64 at all, this one (!)": "is not base64",
	} {
		_, err := Load("", []string{"INFLEET_CONSOLE_SESSION_KEY=" + secret})
		problems := problemsOf(t, err)
		if len(problems) != 1 || problems[0].Field != "console.session_key" || !strings.Contains(problems[0].Message, want) {
			t.Fatalf("%q: problems %v, want console.session_key %q", secret, problems, want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error repeats the key: %v", err)
		}
	}
}
