package fmsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Chunks splits text into the chunks fmsim streams it in: one word each, with the white
// space before it, so that the chunks joined are text again.
func Chunks(text string) []string {
	var out []string
	start := 0
	inSpace := true
	for i, r := range text {
		space := unicode.IsSpace(r)
		if space && !inSpace && i > start {
			out = append(out, text[start:i])
			start = i
		}
		inSpace = space
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// prefill separates an assistant prefix, the last message of a resumed call, from the prompt.
// The answer to such a call is the rest of the answer to the prompt without it: what follows
// the prefix (the prefix may lack the white space it ended on, which the rest then starts
// with). A prefix the full answer does not start with gets the full answer.
func prefill(p prompt) (prompt, string) {
	n := len(p.messages)
	if n < 2 || p.messages[n-1].role != "assistant" {
		return p, ""
	}
	prefix := p.messages[n-1].text
	p.messages = p.messages[:n-1]
	return p, prefix
}

// continuation is what follows prefix in text.
func continuation(text, prefix string) string {
	if prefix == "" || !strings.HasPrefix(text, prefix) {
		return text
	}
	return text[len(prefix):]
}

// streamer writes the chunks of one streamed answer, waiting ChunkInterval between them, and
// breaks the connection after DropStreamAfter of them.
type streamer struct {
	s     *Server
	w     http.ResponseWriter
	rc    *http.ResponseController
	f     Faults
	sent  int
	first bool
}

func (s *Server) newStreamer(w http.ResponseWriter, model, prefix string) *streamer {
	s.statsMu.Lock()
	s.stats.Streams++
	if prefix != "" {
		s.stats.ResumedStreams++
	}
	s.statsMu.Unlock()
	return &streamer{s: s, w: w, rc: http.NewResponseController(w), f: s.faultsFor(model), first: true}
}

// chunk writes one text chunk's frame, which write appends; it returns false when the
// client left or the server closed.
func (st *streamer) chunk(r *http.Request, frame []byte) bool {
	if !st.first && !st.s.wait(r.Context(), st.f.ChunkInterval) {
		return false
	}
	st.first = false
	if st.f.DropStreamAfter > 0 && st.sent >= st.f.DropStreamAfter {
		st.s.statsMu.Lock()
		st.s.stats.DroppedStreams++
		st.s.statsMu.Unlock()
		// Cut the connection (HTTP/1) or reset the stream (HTTP/2) without the stream's end.
		panic(http.ErrAbortHandler)
	}
	st.sent++
	return st.write(frame)
}

func (st *streamer) write(frame []byte) bool {
	if _, err := st.w.Write(frame); err != nil {
		return false
	}
	return st.rc.Flush() == nil
}

// converseStream is Bedrock's ConverseStream: the Converse answer as an AWS event stream of
// messageStart, one contentBlockDelta per chunk, contentBlockStop, messageStop and metadata.
func (s *Server) converseStream(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("modelId")
	p, err := converseRequestPrompt(w, r)
	if err != nil {
		s.record(APIConverse, model, OutcomeBadRequest, r)
		bedrockError(w, http.StatusBadRequest, "ValidationException", "Malformed input request: "+err.Error())
		return
	}
	p, prefix := prefill(p)
	s.run(w, r, APIConverse, model, p, func(d decision) { s.bedrockFail(w, d) }, func(a reply) {
		text := continuation(a.text, prefix)
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.Header().Set("X-Amzn-RequestId", "fmsim")
		w.WriteHeader(http.StatusOK)
		st := s.newStreamer(w, model, prefix)
		enc := eventstream.NewEncoder()
		frame := func(event string, payload any) []byte {
			body, err := json.Marshal(payload)
			if err != nil {
				panic(err) // maps of strings and numbers are always JSON
			}
			var buf bytes.Buffer
			msg := eventstream.Message{Payload: body}
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
			msg.Headers.Set(":event-type", eventstream.StringValue(event))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
			if err := enc.Encode(&buf, msg); err != nil {
				panic(err) // a bytes.Buffer takes every write
			}
			return buf.Bytes()
		}
		if !st.write(frame("messageStart", map[string]string{"role": "assistant"})) {
			return
		}
		for _, c := range Chunks(text) {
			if !st.chunk(r, frame("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]string{"text": c}})) {
				return
			}
		}
		out := tokens(countWords(text))
		end := frame("contentBlockStop", map[string]int{"contentBlockIndex": 0})
		end = append(end, frame("messageStop", map[string]string{"stopReason": a.stopReason()})...)
		end = append(end, frame("metadata", map[string]any{
			"usage":   map[string]int{"inputTokens": a.in, "outputTokens": out, "totalTokens": a.in + out},
			"metrics": map[string]int64{"latencyMs": 0},
		})...)
		_ = st.write(end)
	})
}

// chatStream is a chat completion with "stream": true: server-sent events of
// chat.completion.chunk objects, one per chunk, the finish reason, the usage when
// stream_options.include_usage asks for it, and "data: [DONE]".
func (s *Server) chatStream(w http.ResponseWriter, r *http.Request, req chatRequest, p prompt) {
	p, prefix := prefill(p)
	s.run(w, r, APIChat, req.Model, p, func(d decision) { s.chatFail(w, d) }, func(a reply) {
		text := continuation(a.text, prefix)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		st := s.newStreamer(w, req.Model, prefix)
		id, created := "chatcmpl-fmsim-"+a.requestTag, time.Now().Unix()
		event := func(choices []any, usage any) []byte {
			chunk := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model, "choices": choices}
			if usage != nil {
				chunk["usage"] = usage
			}
			body, err := json.Marshal(chunk)
			if err != nil {
				panic(err) // maps of strings and numbers are always JSON
			}
			return append(append([]byte("data: "), body...), "\n\n"...)
		}
		delta := func(d map[string]string, finish any) []any {
			return []any{map[string]any{"index": 0, "delta": d, "finish_reason": finish}}
		}
		if !st.write(event(delta(map[string]string{"role": "assistant", "content": ""}, nil), nil)) {
			return
		}
		for _, c := range Chunks(text) {
			if !st.chunk(r, event(delta(map[string]string{"content": c}, nil), nil)) {
				return
			}
		}
		end := event(delta(map[string]string{}, a.finishReason()), nil)
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			out := tokens(countWords(text))
			end = append(end, event([]any{}, map[string]int{"prompt_tokens": a.in, "completion_tokens": out, "total_tokens": a.in + out})...)
		}
		_ = st.write(append(end, "data: [DONE]\n\n"...))
	})
}
