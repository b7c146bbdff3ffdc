package models_test

import (
	"context"
	"fmt"
	"time"

	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// A model that always fails hands its calls to its fallback; the answer says who answered and
// which models were tried first.
func ExampleFleet_Client() {
	fleet, err := models.NewFleet(models.FleetConfig{
		Models: []models.ModelSpec{
			{Name: "main", ModelID: "main", Client: sim.New(sim.Config{FailRate: 1}), Fallbacks: []string{"backup"}},
			{Name: "backup", ModelID: "backup", Client: sim.New(sim.Config{})},
		},
		Policy: models.Policy{MaxAttempts: 2, BackoffBase: time.Millisecond},
	})
	if err != nil {
		panic(err)
	}
	resp, err := fleet.Client("main").Invoke(context.Background(), pipeline.ModelRequest{
		Task:     "classify",
		Messages: []messages.ChatMessage{{Role: "user", Content: "I love it"}},
	})
	fmt.Println(resp.Model, resp.Fallbacks, err)
	// Output: backup [main] <nil>
}
