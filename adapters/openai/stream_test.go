package openai_test

import (
	"errors"
	"testing"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/fmsim/fmsimtest"
	"github.com/infleet/infleet/pipeline"
)

const longQuestion = "tell me how the tides of the sea follow the moon as it goes around the earth"

func TestChatStreamResumesADroppedStreamFromItsPrefix(t *testing.T) {
	t.Parallel()
	whole, err := setup(t, fmsim.Config{}).client(t).Invoke(t.Context(), request(longQuestion))
	if err != nil {
		t.Fatal(err)
	}
	for _, drop := range []int{0, 2, 5} {
		b := setup(t, fmsim.Config{Faults: fmsim.Faults{DropStreamAfter: drop}})
		var d fmsimtest.Deltas
		resp, err := b.client(t).Invoke(pipeline.ContextWithStream(t.Context(), pipeline.NewStream(d.Add)), request(longQuestion))
		if err != nil {
			t.Fatalf("drop after %d: %v", drop, err)
		}
		fmsimtest.CheckResumed(t, b.sim, drop, whole.Text, resp.Text, &d)
		if resp.StopReason != "end_turn" || resp.Usage.OutputTokens == 0 || resp.Usage.InputTokens == 0 {
			t.Errorf("drop after %d: stop %q usage %+v", drop, resp.StopReason, resp.Usage)
		}
	}
}

func TestChatStreamMapsAnErrorBeforeTheStream(t *testing.T) {
	t.Parallel()
	b := setup(t, fmsim.Config{Faults: fmsim.Faults{ThrottleRate: 1}})
	_, err := b.client(t).Invoke(pipeline.ContextWithStream(t.Context(), pipeline.NewStream(nil)), request("hi"))
	var me *pipeline.ModelError
	if !errors.As(err, &me) || me.Kind != pipeline.ModelThrottled || me.RetryAfter == 0 {
		t.Fatalf("err = %v, want throttled with a retry-after", err)
	}
}
