package pipeline

import (
	"context"
	"errors"
	"sync"
)

// Notifiers delivers each event to every sink in it (webhook, SNS, EventBridge, a topic) at
// once. Notify returns when every sink has answered; its error joins the sinks' errors, so a
// sink that fails never keeps the event from the others. Safe for concurrent use when its sinks
// are; nil entries are skipped.
type Notifiers []Notifier

// Notify implements Notifier.
func (ns Notifiers) Notify(ctx context.Context, n Notification) error {
	switch len(ns) {
	case 0:
		return nil
	case 1:
		if ns[0] == nil {
			return nil
		}
		return ns[0].Notify(ctx, n)
	}
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, s := range ns {
		if s == nil {
			continue
		}
		wg.Go(func() { errs[i] = s.Notify(ctx, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
