package bedrock_test

import (
	"strings"
	"testing"

	"github.com/infleet/infleet/adapters/bedrock"
	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/fmsim/fmsimtest"
	"github.com/infleet/infleet/pipeline"
)

const longQuestion = "tell me how the tides of the sea follow the moon as it goes around the earth"

func TestConverseStreamResumesADroppedStreamFromItsPrefix(t *testing.T) {
	t.Parallel()
	for _, drop := range []int{0, 2, 5} {
		b := setup(t, fmsim.Config{Faults: fmsim.Faults{DropStreamAfter: drop}})
		c := b.client(t, claude, bedrock.APIConverse)
		whole, err := setup(t, fmsim.Config{}).client(t, claude, bedrock.APIConverse).Invoke(t.Context(), request(longQuestion))
		if err != nil {
			t.Fatal(err)
		}
		var d fmsimtest.Deltas
		st := pipeline.NewStream(d.Add)
		resp, err := c.Invoke(pipeline.ContextWithStream(t.Context(), st), request(longQuestion))
		if err != nil {
			t.Fatalf("drop after %d: %v", drop, err)
		}
		fmsimtest.CheckResumed(t, b.sim, drop, whole.Text, resp.Text, &d)
		if resp.StopReason != "end_turn" || resp.Usage.OutputTokens == 0 || resp.Usage.InputTokens == 0 {
			t.Errorf("drop after %d: stop %q usage %+v", drop, resp.StopReason, resp.Usage)
		}
	}
}

func TestConverseStreamGivesUpAfterItsResumes(t *testing.T) {
	t.Parallel()
	// One chunk per call and more chunks than resumes: the stream breaks for good.
	b := setup(t, fmsim.Config{Faults: fmsim.Faults{DropStreamAfter: 1}})
	c := b.client(t, claude, bedrock.APIConverse)
	long := strings.Repeat("word ", 40)
	st := pipeline.NewStream(nil)
	_, err := c.Invoke(pipeline.ContextWithStream(t.Context(), st), request(long))
	me, ok := err.(*pipeline.ModelError)
	if !ok || me.Kind != pipeline.ModelUnavailable {
		t.Fatalf("err = %v, want an unavailable model error", err)
	}
	if got := b.sim.Stats().Streams; got != pipeline.DefaultStreamResumes+1 {
		t.Errorf("streams = %d, want %d", got, pipeline.DefaultStreamResumes+1)
	}
	// The text so far stays: a retry of the pipeline resumes from it.
	if st.Text() == "" || st.Resume() == "" {
		t.Errorf("stream lost its text")
	}
}
