package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/infleet/infleet/adapters/bedrock"
	"github.com/infleet/infleet/adapters/openai"
	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
)

// newModel builds the plain provider client of one configured model, with no retries,
// breaker or limits of its own: the resilience layer wraps what it returns. Errors say which
// setting or environment variable to fix.
func (a *app) newModel(ctx context.Context, cfg config.Config, m config.Model) (pipeline.Model, error) {
	model := pipeline.Model{Name: m.Name, ModelID: cmp.Or(m.ModelID, m.Name)}
	switch m.Provider {
	case config.ProviderSim:
		model.Client = sim.New(sim.Config{Latency: m.Latency, Dist: m.LatencyDist, P99: m.LatencyP99, FailRate: m.FailRate})
	case config.ProviderOpenAI:
		var key string
		if m.APIKeyEnv != "" {
			key = strings.TrimSpace(os.Getenv(m.APIKeyEnv))
			if key == "" {
				return model, fmt.Errorf("api_key_env names %s, which is not set: export %s or remove api_key_env", m.APIKeyEnv, m.APIKeyEnv)
			}
		}
		c, err := openai.New(openai.Config{
			BaseURL:      m.BaseURL,
			ModelID:      m.ModelID,
			APIKey:       key,
			Timeout:      m.Timeout,
			MaxIdleConns: max(m.MaxConcurrency, cfg.Workers.Concurrency),
		})
		if err != nil {
			return model, err
		}
		model.Client = c
	case config.ProviderBedrock:
		c, err := bedrock.New(ctx, bedrock.Config{
			ModelID:      m.ModelID,
			API:          m.API,
			Region:       m.Region,
			Endpoint:     config.AWSEndpoint(cfg, "models."+m.Name),
			Timeout:      m.Timeout,
			MaxIdleConns: max(m.MaxConcurrency, cfg.Workers.Concurrency),
			AWS:          a.aws.shared(ctx),
		})
		if err != nil {
			return model, err
		}
		model.Client = c
	default:
		return model, fmt.Errorf("provider %q is not available in this build (use sim, openai or bedrock)", m.Provider)
	}
	return model, nil
}
