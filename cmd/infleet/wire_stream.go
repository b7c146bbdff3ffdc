package main

import (
	"context"
	"net"
	"os"

	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
)

// streamFrom is the base URL other processes reach this one's stream relay route at, recorded
// with the claim of each streaming job its workers run; "" when streaming.relay_key is unset.
func (a *app) streamFrom() string {
	if a.cfg.Streaming.RelayKey == "" {
		return ""
	}
	if a.cfg.Streaming.AdvertiseURL != "" {
		return a.cfg.Streaming.AdvertiseURL
	}
	scheme := "http://"
	if a.cfg.HTTP.TLSCertFile != "" {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(a.cfg.Addr)
	if err != nil {
		return scheme + a.cfg.Addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return scheme + net.JoinHostPort(host, port)
}

// deltaFeed is where the API of a process with roles r reads the answers of streaming jobs:
// with streaming.relay_key, from whichever process streams the job (this one's Hub when it is
// this one); without, from this process's Hub alone.
func (a *app) deltaFeed(r roles) (pipeline.DeltaFeed, error) {
	if a.cfg.Streaming.RelayKey == "" {
		return a.hub, nil
	}
	self := ""
	if r.workers {
		self = a.streamFrom()
	}
	return handlers.NewStreamRelay(handlers.StreamRelayConfig{
		Key:   a.cfg.Streaming.RelayKey,
		Self:  self,
		Local: a.hub,
		Locate: func(ctx context.Context, id string) (string, bool, error) {
			rec, err := a.store.Get(ctx, id)
			return rec.StreamFrom, rec.Status.Terminal(), err
		},
		Logger: a.log.With().Str("component", "stream_relay").Logger(),
	})
}
