package ops

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestArchiveLineIsTheEntryMarshalled checks that appendArchiveLine writes what json.Marshal
// of the entry reads back as, for bodies copied as they are, bodies over several lines, no
// body and no metadata, strings that need escapes and a time with a zone, byte for byte where
// the body is one line already and holds no <, > or &, and that a body over several lines that is not JSON leaves
// nothing.
func TestArchiveLineIsTheEntryMarshalled(t *testing.T) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 456789000, time.UTC)
	for name, e := range map[string]ArchiveEntry{
		"full": {AcceptedAt: at, JobID: "j1", Task: "summarize", Priority: messages.PriorityHigh, Tenant: "acme",
			Body: json.RawMessage(`{"task":"summarize","input":{"text":"<b>&"}}`), Metadata: map[string]string{"b": "2", "a": "1"}},
		"lines":   {AcceptedAt: at, JobID: "j2", Task: "t", Body: json.RawMessage("{\n  \"task\": \"t\"\r\n}")},
		"nothing": {AcceptedAt: at, JobID: "j3", Task: "t"},
		"escapes": {AcceptedAt: at.In(time.FixedZone("x", 3600)), JobID: "j4", Task: "a<b>&c", Priority: messages.PriorityLow, Tenant: `q"u\o\te`,
			Body: json.RawMessage(`{}`), Metadata: map[string]string{"zé": "\u2028\x01\t", "k": "ünïcödé \xff", "": "empty"}},
	} {
		var b bytes.Buffer
		b.WriteString("before\n")
		if err := appendArchiveLine(&b, e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		line, ok := bytes.CutPrefix(b.Bytes(), []byte("before\n"))
		if !ok || bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("%s: not one line: %q", name, line)
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		// json.Marshal compacts a body and escapes its <, > and &; the line keeps it as stored.
		if name != "lines" && !bytes.ContainsAny(e.Body, "<>&") && !bytes.Equal(line, append(want, '\n')) {
			t.Errorf("%s: the line is not json.Marshal's:\n got %s\nwant %s", name, line, want)
		}
		var got, wantAny any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%s: %q is not JSON: %v", name, line, err)
		}
		_ = json.Unmarshal(want, &wantAny)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(wantAny)
		if !bytes.Equal(g, w) {
			t.Errorf("%s:\n got %s\nwant %s", name, g, w)
		}
	}
	var b bytes.Buffer
	b.WriteString("kept\n")
	if err := appendArchiveLine(&b, ArchiveEntry{JobID: "bad", Body: json.RawMessage("{\n")}); err == nil {
		t.Error("a body over several lines that is not JSON: no error")
	}
	if b.String() != "kept\n" {
		t.Errorf("after a refused entry the buffer holds %q", b.String())
	}
}
