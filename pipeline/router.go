package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/infleet/infleet/messages"
)

// Model is a configured model: the name jobs and routes use, the provider's model id and the
// client that reaches it.
type Model struct {
	Name    string
	ModelID string
	Client  ModelClient
}

// ModelPicker chooses the model for a job. Implementations are safe for concurrent use; a
// reloadable one may change its answer between calls.
type ModelPicker interface {
	// Pick returns the model to call for job; an error is a PermanentError when no model can
	// serve it.
	Pick(job *messages.Job) (Model, error)
}

// RouteDefault is the route key used for tasks with no route of their own.
const RouteDefault = "default"

// Router picks the model for a job: the job's own model when it names a configured one, else
// the route of its task, else the default route. It is immutable and safe for concurrent use.
type Router struct {
	models map[string]Model
	routes map[string]string
}

// NewRouter checks that every route names a configured model and that a default route exists.
func NewRouter(models []Model, routes map[string]string) (*Router, error) {
	r := &Router{models: map[string]Model{}, routes: map[string]string{}}
	var errs []error
	for _, m := range models {
		if m.Client == nil {
			errs = append(errs, fmt.Errorf("model %q has no client", m.Name))
			continue
		}
		r.models[m.Name] = m
	}
	for task, name := range routes {
		if _, ok := r.models[name]; !ok {
			errs = append(errs, fmt.Errorf("route %q names model %q, which is not configured (configured: %s)", task, name, r.names()))
		}
		r.routes[task] = name
	}
	if _, ok := r.routes[RouteDefault]; !ok {
		errs = append(errs, fmt.Errorf("no default route (set routes.default to one of: %s)", r.names()))
	}
	return r, errors.Join(errs...)
}

// Pick returns the model for job. An unknown job.Model is a PermanentError (no_model).
func (r *Router) Pick(job *messages.Job) (Model, error) {
	if job.Model != "" {
		m, ok := r.models[job.Model]
		if !ok {
			return Model{}, Permanent(messages.ErrCodeNoModel,
				fmt.Errorf("model %q is not configured (use one of: %s)", job.Model, r.names()))
		}
		return m, nil
	}
	name, ok := r.routes[job.Task]
	if !ok {
		name = r.routes[RouteDefault]
	}
	return r.models[name], nil
}

// Has reports whether a model of that name is configured.
func (r *Router) Has(name string) bool {
	_, ok := r.models[name]
	return ok
}

func (r *Router) names() string {
	names := make([]string, 0, len(r.models))
	for n := range r.models {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
