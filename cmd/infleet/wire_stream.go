package main

import (
	"github.com/infleet/infleet/pipeline"
)

// deltaFeed is where the API of a process with roles r reads the answers of streaming jobs:
// the process's Hub, which the workers of this process write to.
func (a *app) deltaFeed(r roles) pipeline.DeltaFeed {
	return a.hub
}
