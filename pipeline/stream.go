package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/infleet/infleet/messages"
)

// DefaultStreamResumes bounds how many times RunStream resumes one call's broken stream. A
// stream is only resumed when the broken call added text, so each resume makes progress.
const DefaultStreamResumes = 8

// Stream is the answer of a streaming job as it arrives: the text received so far over all
// the job's model calls in one attempt, and where each new piece of it goes. A model client
// finds it with StreamFromContext; when there is one, it streams and passes the text on through
// Write, and a call after a break (its own resume, or a retry of the pipeline) starts from
// Resume's prefix. A Stream is safe for concurrent use; its publish function is called with
// its lock held, one delta after the other, and must not block.
type Stream struct {
	mu      sync.Mutex
	text    strings.Builder
	skip    string
	publish func(delta string)
}

// NewStream returns an empty Stream that hands each delta of text to publish (nil: none).
func NewStream(publish func(delta string)) *Stream {
	return &Stream{publish: publish}
}

type streamKey struct{}

// ContextWithStream returns ctx carrying s: model calls made with it stream into s.
func ContextWithStream(ctx context.Context, s *Stream) context.Context {
	return context.WithValue(ctx, streamKey{}, s)
}

// StreamFromContext returns the Stream of ctx, or nil when the call is not streamed.
func StreamFromContext(ctx context.Context) *Stream {
	s, _ := ctx.Value(streamKey{}).(*Stream)
	return s
}

// Resume begins one model call and returns the prefix it continues from: the text so far
// without its trailing white space (which models given an assistant prefix refuse or
// repeat), or "" when nothing came yet. The white space cut off is not written twice: the
// next Write drops it from the start of the new call's text when the model repeats it.
func (s *Stream) Resume() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := s.text.String()
	prefix := strings.TrimRightFunc(text, isSpace)
	s.skip = text[len(prefix):]
	return prefix
}

// Write appends the next piece of the current call's answer and publishes it.
func (s *Stream) Write(chunk string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.skip != "" && chunk != "" {
		if chunk[0] != s.skip[0] {
			s.skip = ""
			break
		}
		chunk, s.skip = chunk[1:], s.skip[1:]
	}
	if chunk == "" {
		return
	}
	s.skip = ""
	s.text.WriteString(chunk)
	if s.publish != nil {
		s.publish(chunk)
	}
}

// Text returns everything written so far.
func (s *Stream) Text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text.String()
}

// Complete publishes what text adds to the text written so far, when text starts with it:
// the end of an answer that did not arrive as a stream (a cached answer, a model whose API
// does not stream). It reports false, publishing nothing, when text does not continue it.
func (s *Stream) Complete(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	have := s.text.String()
	if !strings.HasPrefix(text, have) {
		return false
	}
	if rest := text[len(have):]; rest != "" {
		s.text.WriteString(rest)
		if s.publish != nil {
			s.publish(rest)
		}
	}
	return true
}

func isSpace(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' }

// StreamCallFunc makes one streaming model call: prefix, when not empty, goes last as the
// assistant's message for the model to continue, and each piece of the answer goes to write
// as it arrives. It returns the usage and stop reason when the stream ended as it should, and
// an error (a *ModelError for the model's own failures) otherwise, also after some text came.
type StreamCallFunc func(ctx context.Context, prefix string, write func(string)) (ModelResponse, error)

// RunStream makes the calls of one streamed answer into s: call once, and again from the text
// so far whenever a stream breaks with a retryable error after adding text, at most resumes
// times. The response's Text is the whole answer and its Usage the sum of every call's.
func RunStream(ctx context.Context, s *Stream, resumes int, call StreamCallFunc) (ModelResponse, error) {
	var usage messages.Usage
	for n := 0; ; n++ {
		before := len(s.Text())
		resp, err := call(ctx, s.Resume(), s.Write)
		usage = usage.Add(resp.Usage)
		if err == nil {
			resp.Text, resp.Usage = s.Text(), usage
			return resp, nil
		}
		var me *ModelError
		if ctx.Err() != nil || n >= resumes || len(s.Text()) == before || !errors.As(err, &me) || !me.Kind.Retryable() {
			return ModelResponse{Usage: usage}, err
		}
	}
}
