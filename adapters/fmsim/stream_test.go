package fmsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

const streamQuestion = "please explain in some detail how the tides follow the moon around the earth"

// streamServer serves s over a real connection, which a dropped stream cuts.
func streamServer(t *testing.T, s *Server) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	return srv.URL
}

// chatStreamBody is a streaming chat request for the question, resumed after prefix when
// prefix is not empty.
func chatStreamBody(prefix string) string {
	msgs := []map[string]string{{"role": "user", "content": streamQuestion}}
	if prefix != "" {
		msgs = append(msgs, map[string]string{"role": "assistant", "content": prefix})
	}
	b, _ := json.Marshal(map[string]any{"model": "m", "messages": msgs, "stream": true, "stream_options": map[string]bool{"include_usage": true}})
	return string(b)
}

// readChat reads a chat completion's server-sent events: the content chunks, whether
// [DONE] came, the finish reason and the completion tokens, and the read error, if any.
func readChat(t *testing.T, url, body string) (chunks []string, done bool, finish string, out int, err error) {
	t.Helper()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta        struct{ Content string } `json:"delta"`
				FinishReason *string                  `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if c.Object != "chat.completion.chunk" {
			t.Fatalf("object %q, want chat.completion.chunk", c.Object)
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != "" {
				chunks = append(chunks, ch.Delta.Content)
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			out = c.Usage.CompletionTokens
		}
	}
	return chunks, done, finish, out, sc.Err()
}

func TestChatStreamsTheAnswerInChunks(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	url := streamServer(t, s)
	whole := s.answerText(t)
	chunks, done, finish, out, err := readChat(t, url, chatStreamBody(""))
	if err != nil || !done || finish != "stop" {
		t.Fatalf("stream ended with err %v, done %v, finish %q", err, done, finish)
	}
	if len(chunks) < 5 || strings.Join(chunks, "") != whole {
		t.Fatalf("chunks %q join to %q, want %q in several chunks", chunks, strings.Join(chunks, ""), whole)
	}
	if out != tokens(countWords(whole)) {
		t.Errorf("completion tokens %d, want %d", out, tokens(countWords(whole)))
	}
}

func TestDroppedChatStreamResumesFromItsPrefix(t *testing.T) {
	t.Parallel()
	s := New(Config{Faults: Faults{DropStreamAfter: 3}})
	url := streamServer(t, s)
	whole := New(Config{}).answerText(t)
	var got string
	for call := 0; ; call++ {
		if call > 10 {
			t.Fatalf("no end after %d calls; have %q", call, got)
		}
		// A resumed call sends the prefix without its trailing white space, as Anthropic
		// models require; the continuation starts with it.
		prefix := strings.TrimRight(got, " ")
		chunks, done, _, _, err := readChat(t, url, chatStreamBody(prefix))
		got = prefix + strings.Join(chunks, "")
		if done {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if err == nil && len(chunks) != 3 {
			t.Fatalf("call %d: %d chunks before the drop, want 3", call, len(chunks))
		}
	}
	if got != whole {
		t.Fatalf("resumed answer %q, want %q", got, whole)
	}
	st := s.Stats()
	if st.DroppedStreams == 0 || st.ResumedStreams != st.Streams-1 {
		t.Errorf("stats: %d streams, %d resumed, %d dropped; want every call after the first resumed and some dropped", st.Streams, st.ResumedStreams, st.DroppedStreams)
	}
}

// answerText is the chat answer to streamQuestion.
func (s *Server) answerText(t *testing.T) string {
	t.Helper()
	text, _, _ := chatText(t, s, streamQuestion)
	return text
}

func TestConverseStreamSpeaksTheAWSEventStream(t *testing.T) {
	t.Parallel()
	s := New(Config{Faults: Faults{DropStreamAfter: 4}})
	url := streamServer(t, s)
	body := `{"messages":[{"role":"user","content":[{"text":"` + streamQuestion + `"}]}]}`
	resp, err := http.Post(url+"/model/m/converse-stream", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.amazon.eventstream" {
		t.Fatalf("content type %q", ct)
	}
	dec := eventstream.NewDecoder()
	var events, chunks []string
	for {
		msg, err := dec.Decode(resp.Body, nil)
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "EOF") {
				t.Logf("decode ended with %v", err)
			}
			break
		}
		events = append(events, msg.Headers.Get(":event-type").String())
		if msg.Headers.Get(":event-type").String() == "contentBlockDelta" {
			var d struct{ Delta struct{ Text string } }
			if err := json.Unmarshal(msg.Payload, &d); err != nil {
				t.Fatal(err)
			}
			chunks = append(chunks, d.Delta.Text)
		}
	}
	want := []string{"messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta"}
	if !slices.Equal(events, want) {
		t.Fatalf("events %q, want %q then the drop", events, want)
	}
	if whole := s.answerText(t); !strings.HasPrefix(whole, strings.Join(chunks, "")) {
		t.Fatalf("chunks %q are not the start of %q", chunks, whole)
	}
}

func TestChunksJoinToTheText(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "one", " lead", "a  b\nc ", "fmsim [ab12]: x y"} {
		if got := strings.Join(Chunks(text), ""); got != text {
			t.Errorf("Chunks(%q) join to %q", text, got)
		}
	}
	if got := Chunks("a b  c"); !slices.Equal(got, []string{"a", " b", "  c"}) {
		t.Errorf("Chunks = %q", got)
	}
}
